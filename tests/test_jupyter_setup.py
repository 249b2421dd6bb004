import json
import sys

from theorylab import jupyter_setup


def test_configure_writes_settings_and_kernel_and_keeps_existing_keys(tmp_path):
    lab = tmp_path / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json"
    lab.parent.mkdir(parents=True)
    lab.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))

    server, lab_written, page, kernel = jupyter_setup.configure(tmp_path)

    assert json.loads(server.read_text())["ServerApp"]["allow_root"] is True
    extensions = json.loads(server.read_text())["ServerApp"]["jpserver_extensions"]
    assert extensions["nbgrader.server_extensions.formgrader"] is False
    assert json.loads(page.read_text())["disabledExtensions"] == {"@jupyter/nbgrader": True}
    overrides = json.loads(lab_written.read_text())
    assert overrides["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
    spec = json.loads((kernel / "kernel.json").read_text())
    assert kernel.name == "python3" and spec["display_name"] == "Python 3 (theorylab)"
    assert spec["argv"][0] == sys.executable


def test_configure_is_idempotent(tmp_path):
    first = [p.read_text() if p.is_file() else (p / "kernel.json").read_text()
             for p in jupyter_setup.configure(tmp_path)]
    second = [p.read_text() if p.is_file() else (p / "kernel.json").read_text()
              for p in jupyter_setup.configure(tmp_path)]
    assert first == second


def test_jupyterlab_renders_myst_and_opens_jupytext_notebooks():
    """jupyterlab-myst (math, directives, cross-references and dropdowns in Markdown cells) and the
    Jupytext viewer are installed, enabled and compatible with this JupyterLab."""
    import subprocess
    from pathlib import Path

    jupyter = Path(sys.executable).parent / "jupyter"
    listing = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True,
                             timeout=120)
    text = listing.stdout + listing.stderr
    assert "not compatible" not in text, text
    for extension in ("jupyterlab-myst", "jupyterlab-jupytext"):
        line = next((line for line in text.splitlines() if extension in line), "")
        assert "enabled" in line and "OK" in line, f"{extension}: {line or 'not installed'}"
