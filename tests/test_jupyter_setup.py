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


def test_the_server_opens_notebooks_with_the_contents_manager_that_collapses_as_the_book_does(tmp_path):
    server, *_ = jupyter_setup.configure(tmp_path)
    manager = json.loads(server.read_text())["ServerApp"]["contents_manager_class"]
    module, name = manager.rsplit(".", 1)
    import importlib

    assert importlib.import_module(module).__dict__[name] is BookContentsManager


# ---- theorylab.jupyter_contents ---------------------------------------------------------------

import asyncio  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import nbformat  # noqa: E402

from theorylab.jupyter_contents import BookContentsManager  # noqa: E402

BOOK = Path(__file__).resolve().parents[1] / "book"


def _open(root: Path, path: str) -> tuple[BookContentsManager, dict]:
    manager = BookContentsManager(root_dir=str(root))
    return manager, asyncio.run(manager.get(path))


def _hidden(cell, flag="source_hidden") -> bool:
    return bool(cell["metadata"].get("jupyter", {}).get(flag))


def test_a_chapter_opens_with_what_the_book_hides_collapsed_and_saves_unchanged(tmp_path):
    chapter = next(p for p in sorted(BOOK.glob("0*.md")))
    shutil.copy(chapter, tmp_path / chapter.name)
    manager, model = _open(tmp_path, chapter.name)
    cells = model["content"]["cells"]
    by_tag = {tag: [c for c in cells if tag in c["metadata"].get("tags", [])]
              for tag in ("hide-input", "remove-input", "solution", "remove-cell")}
    assert all(by_tag.values()), {tag: len(found) for tag, found in by_tag.items()}
    assert all(_hidden(c) for found in by_tag.values() for c in found)
    assert all(_hidden(c, "outputs_hidden") for c in by_tag["remove-cell"])
    untagged = [c for c in cells if c["cell_type"] == "code" and not c["metadata"].get("tags")]
    assert untagged and not any(_hidden(c) for c in untagged)       # the story's code stays in view

    before = _without_version((tmp_path / chapter.name).read_text())
    asyncio.run(manager.save(model, chapter.name))                  # as JupyterLab saves what it opened
    assert _without_version((tmp_path / chapter.name).read_text()) == before


def _without_version(text: str) -> str:
    """The file without the version of Jupytext that last wrote it (Jupytext writes its own)."""
    return "\n".join(line for line in text.splitlines() if "jupytext_version:" not in line)


def test_a_student_notebook_keeps_its_stubs_in_view(tmp_path):
    from theorylab import assignments

    chapter = assignments.find_chapters(BOOK, ["01"])
    assignments.release(chapter, tmp_path)
    name = f"student/{chapter[0].stem}.ipynb"
    _, model = _open(tmp_path, name)
    stubs = [c for c in model["content"]["cells"] if "solution" in c["metadata"].get("tags", [])]
    hidden = [c for c in model["content"]["cells"]
              if "hide-input" in c["metadata"].get("tags", []) and c not in stubs]
    assert stubs and not any(_hidden(c) for c in stubs)
    assert hidden and all(_hidden(c) for c in hidden)
    assert nbformat.validate(nbformat.from_dict(model["content"])) is None
