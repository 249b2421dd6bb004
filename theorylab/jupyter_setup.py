"""Configure the Jupyter installation of this Python environment for the book.

    python -m theorylab.jupyter_setup

Run by ``make`` after installing (and by Binder's ``postBuild``). It writes, under ``sys.prefix``:

* ``etc/jupyter/jupyter_server_config.json``: ``allow_root``, since some machines (CI, containers) run
  everything as root and Jupyter servers refuse to start as root otherwise; the contents manager
  :class:`theorylab.jupyter_contents.BookContentsManager` (Jupytext's, opening a chapter with what the
  book hides collapsed);
* ``etc/jupyter/labconfig/default_setting_overrides.json``: JupyterLab opens ``.md`` files with the
  Jupytext Notebook viewer, so the chapters open as notebooks; no news pop-up;
* ``etc/jupyter/labconfig/page_config.json`` and the server config: nbgrader's JupyterLab and server
  extensions (installed for ``theorylab assignments export``) are turned off, so a learner's JupyterLab
  has no course-management menus;
* the kernel spec ``python3`` with the display name "Python 3 (theorylab)": the chapters ask for
  ``python3``, and in this environment that is theorylab's Python.

Existing settings in those files are kept; only these keys are set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (theorylab)"

NBGRADER_SERVER_EXTENSIONS = ("formgrader", "validate_assignment", "assignment_list", "course_list")
SERVER_CONFIG = {"ServerApp": {
    "allow_root": True,
    "contents_manager_class": "theorylab.jupyter_contents.BookContentsManager",
    "jpserver_extensions": {f"nbgrader.server_extensions.{name}": False
                            for name in NBGRADER_SERVER_EXTENSIONS}}}
PAGE_CONFIG = {"disabledExtensions": {"@jupyter/nbgrader": True}}
LAB_OVERRIDES = {
    "@jupyterlab/docmanager-extension:plugin": {
        "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _merge_json(path: Path, settings: dict) -> None:
    current = json.loads(path.read_text()) if path.exists() else {}
    for section, values in settings.items():
        current.setdefault(section, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")


def configure(prefix: str | Path = sys.prefix) -> list[Path]:
    """Write the settings above under ``prefix``; returns the paths written."""
    from ipykernel.kernelspec import install

    etc = Path(prefix) / "etc" / "jupyter"
    server, lab = etc / "jupyter_server_config.json", etc / "labconfig" / "default_setting_overrides.json"
    page = etc / "labconfig" / "page_config.json"
    _merge_json(server, SERVER_CONFIG)
    _merge_json(lab, LAB_OVERRIDES)
    _merge_json(page, PAGE_CONFIG)
    kernel = install(prefix=str(prefix), kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME)
    return [server, lab, page, Path(kernel)]


def main() -> int:
    for path in configure():
        print(f"theorylab.jupyter_setup: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
