"""Root pytest configuration.

* Turns on Triton's CPU interpreter before any kernel is defined, so the kernel tests run the real
  ``@triton.jit`` code on the CPU (``@triton.jit`` reads ``TRITON_INTERPRET`` at decoration time);
  with ``THEORYLAB_KERNEL_DEVICE=cuda`` (``make gpu-check``) the kernel tests run compiled on the GPU.
* Collects the book's chapters, jupytext MyST notebooks (``book/*.md``), as nbval notebooks: nbval
  itself only collects ``.ipynb``. This hook must live here: a ``tests/conftest.py`` never sees
  ``book/``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

# ``make gpu-check`` runs the kernel tests on a GPU instead: THEORYLAB_KERNEL_DEVICE=cuda, no interpreter.
if os.environ.get("THEORYLAB_KERNEL_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import jupytext  # noqa: E402
import nbval.plugin  # noqa: E402


def is_myst_notebook(path) -> bool:
    """True for a Markdown file whose front matter declares a jupytext MyST notebook."""
    if path.suffix != ".md":
        return False
    with open(path, encoding="utf-8") as fh:
        head = fh.read(2000)
    return head.startswith("---") and "format_name: myst" in head


@contextmanager
def _without(variable: str):
    saved = os.environ.pop(variable, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[variable] = saved


class MystNotebookFile(nbval.plugin.IPyNbFile):
    """nbval's notebook collector reading a jupytext MyST file instead of an ``.ipynb``."""

    def collect(self):
        original = nbval.plugin.nbformat.read
        nbval.plugin.nbformat.read = lambda path, as_version=4: jupytext.read(path, as_version)
        try:
            yield from super().collect()
        finally:
            nbval.plugin.nbformat.read = original

    def setup(self):
        # Chapters run as a reader runs them: the torch path on a CPU, not the Triton interpreter.
        with _without("TRITON_INTERPRET"):
            super().setup()


def pytest_collect_file(file_path, parent):
    option = parent.config.option
    if (option.nbval or option.nbval_lax) and is_myst_notebook(file_path):
        return MystNotebookFile.from_parent(parent, path=file_path)
    return None
