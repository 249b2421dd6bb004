"""Root pytest configuration.

* Turns on Triton's CPU interpreter before any kernel is defined, so the kernel tests run the real
  ``@triton.jit`` code on the CPU (``@triton.jit`` reads ``TRITON_INTERPRET`` at decoration time);
  with ``THEORYLAB_KERNEL_DEVICE=cuda`` (``make gpu-check``) the kernel tests run compiled on the GPU.
* Under pytest-xdist (``make test`` runs two workers on two cores), keeps each worker and every kernel
  it starts to one torch/BLAS thread (two processes with two threads each on two cores made torch ten
  times slower), and keeps together what must run in one process: the cells of a notebook, and the
  tests of a module that share an expensive module-scoped fixture (everything but the grader's
  per-chapter runs, which are independent and are spread over the workers).
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

if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

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


#: Test modules whose tests are spread over the workers one by one (no shared module-scoped work).
SPREAD_MODULES = ("test_assignments.py",)


def pytest_collection_modifyitems(config, items):
    """Group items for ``--dist loadgroup``: one group per notebook and per test module, except the
    modules in ``SPREAD_MODULES``, whose tests go to whichever worker is free."""
    import pytest

    for item in items:
        if item.path.name not in SPREAD_MODULES:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
