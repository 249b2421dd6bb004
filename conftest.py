"""Root pytest configuration.

* Turns on Triton's CPU interpreter before any kernel is defined, so the kernel tests run the real
  ``@triton.jit`` code on the CPU (``@triton.jit`` reads ``TRITON_INTERPRET`` at decoration time);
  with ``THEORYLAB_KERNEL_DEVICE=cuda`` (``make gpu-check``) the kernel tests run compiled on the GPU.
* Shares each chapter's execution: nbval's run of a chapter, once every cell passed, is saved as an
  executed notebook under ``_build/test-executions/`` keyed by the chapter's source, theorylab's
  and the kernels' sources and the run's knobs; the book's content build (tests/test_book.py) uses it
  through the ``executed_chapter`` fixture instead of executing the chapter again, waiting for nbval's
  run of that chapter if it is under way and executing the chapter itself if none is saved. The run
  also records the answers each exercise check collected (``chapter_answers``: the grader's tests
  check the book's solutions on them, tests/test_grading_instructor.py) and the claims it made
  (``chapter_claims``: tests/test_chapter_claims.py).
* Under pytest-xdist (``make test`` runs two workers on two cores), keeps each worker and every kernel
  it starts to one torch/BLAS thread (two processes with two threads each on two cores made torch ten
  times slower); ``--dist loadfile`` keeps a notebook's cells, and a module's tests with their
  module-scoped fixtures, in one worker (the grader's chapter runs are split over two modules,
  test_grading_instructor and test_grading_students, so that they run in parallel).
* Collects the book's chapters, jupytext MyST notebooks (``book/*.md``), as nbval notebooks: nbval
  itself only collects ``.ipynb``. This hook must live here: a ``tests/conftest.py`` never sees
  ``book/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

# ``make gpu-check`` runs the kernel tests on a GPU instead: THEORYLAB_KERNEL_DEVICE=cuda, no interpreter.
if os.environ.get("THEORYLAB_KERNEL_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Chapters run as `make book` builds them: no progress bars among the outputs (shared executions).
os.environ.setdefault("THEORYLAB_PROGRESS", "0")

if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

import jupytext  # noqa: E402
import nbformat  # noqa: E402
import nbval.plugin  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXECUTIONS = ROOT / "_build" / "test-executions"
#: Environment variables that change what a chapter computes or shows.
EXECUTION_KNOBS = ("THEORYLAB_SEED", "THEORYLAB_SCALE", "THEORYLAB_DEVICE", "THEORYLAB_PROGRESS")
ANSWERS_LOG = "THEORYLAB_ANSWERS_LOG"     # = theorylab.answers.LOG_VARIABLE (test_shared_executions)
CLAIMS_LOG = "THEORYLAB_CLAIMS_FILE"      # theorylab.claims appends each claim's record to it


def execution_key(chapter: Path) -> str:
    """Identifies one execution of ``chapter``: its source, every source file of theorylab and of the
    kernels, and the knobs. Two runs with the same key produce the same notebook."""
    digest = hashlib.sha256(Path(chapter).read_bytes())
    for source in sorted([*(ROOT / "theorylab").rglob("*.py"), *(ROOT / "kernels").rglob("*.py")]):
        digest.update(source.relative_to(ROOT).as_posix().encode())
        digest.update(source.read_bytes())
    for knob in EXECUTION_KNOBS:
        digest.update(f"{knob}={os.environ.get(knob, '')}".encode())
    return digest.hexdigest()[:20]


@contextmanager
def chapter_lock(stem: str):
    """Held while a chapter is being executed for the shared cache (by nbval or by a consumer)."""
    EXECUTIONS.mkdir(parents=True, exist_ok=True)
    with open(EXECUTIONS / f"{stem}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def saved_execution(chapter: Path) -> Path:
    return EXECUTIONS / f"{chapter.stem}-{execution_key(chapter)}.ipynb"


def saved_answers(chapter: Path) -> Path:
    """The answers the chapter's exercise checks collected in the saved execution (one per line, in
    the order the checks ran; see ``theorylab.answers.LOG_VARIABLE``)."""
    return saved_execution(chapter).with_suffix(".answers.jsonl")


def saved_claims(chapter: Path) -> Path:
    """The claims the saved execution made (one JSON record per line, ``THEORYLAB_CLAIMS_FILE``)."""
    return saved_execution(chapter).with_suffix(".claims.jsonl")


#: What a run of a chapter records besides its notebook: environment variable -> (name, saved file).
RUN_LOGS = {ANSWERS_LOG: ("answers", saved_answers), CLAIMS_LOG: ("claims", saved_claims)}


def run_logs(chapter: Path) -> dict[str, Path]:
    """Fresh (empty) files for a run of ``chapter`` under way to append to, by environment variable."""
    EXECUTIONS.mkdir(parents=True, exist_ok=True)
    logs = {}
    for variable, (name, _) in RUN_LOGS.items():
        path = EXECUTIONS / f"{Path(chapter).stem}.{name}.partial"
        path.unlink(missing_ok=True)
        path.touch()
        logs[variable] = path
    return logs


def save_execution(nb, chapter: Path, logs: dict[str, Path]) -> None:
    """Save an executed notebook of ``chapter`` and the logs its run wrote (see ``run_logs``)."""
    path = saved_execution(chapter)
    for pattern in ("*.ipynb", "*.answers.jsonl", "*.claims.jsonl"):
        for old in EXECUTIONS.glob(f"{chapter.stem}-{pattern}"):
            old.unlink()
    nb.metadata.pop("jupytext", None)       # mystmd warns about jupytext's keys in an .ipynb
    partial = path.with_suffix(".partial")
    nbformat.write(nb, str(partial))
    for variable, log in logs.items():
        Path(log).replace(RUN_LOGS[variable][1](chapter))
    partial.replace(path)


def is_myst_notebook(path) -> bool:
    """True for a Markdown file whose front matter declares a jupytext MyST notebook."""
    if path.suffix != ".md":
        return False
    with open(path, encoding="utf-8") as fh:
        head = fh.read(2000)
    return head.startswith("---") and "format_name: myst" in head


@contextmanager
def _setting(variable: str, value: str | None):
    """``variable`` set to ``value`` (removed for None) in this process's environment, as a kernel
    started inside inherits it; restored afterwards."""
    saved = os.environ.pop(variable, None)
    if value is not None:
        os.environ[variable] = value
    try:
        yield
    finally:
        os.environ.pop(variable, None)
        if saved is not None:
            os.environ[variable] = saved


def _without(variable: str):
    return _setting(variable, None)


class MystNotebookFile(nbval.plugin.IPyNbFile):
    """nbval's notebook collector reading a jupytext MyST file instead of an ``.ipynb``; a run in which
    every cell passed is saved for the other consumers (see ``executed_chapter``)."""

    def collect(self):
        original = nbval.plugin.nbformat.read
        nbval.plugin.nbformat.read = lambda path, as_version=4: jupytext.read(path, as_version)
        self._cells = []
        try:
            for item in super().collect():
                self._cells.append(item)
                yield item
        finally:
            nbval.plugin.nbformat.read = original

    def setup(self):
        self._lock = chapter_lock(self.path.stem)
        self._lock.__enter__()
        # Chapters run as a reader runs them: the torch path on a CPU, not the Triton interpreter. The
        # kernel records the answers of the chapter's exercise checks (the grader's tests reuse them).
        self._logs = run_logs(self.path)
        with _without("TRITON_INTERPRET"), _setting(ANSWERS_LOG, str(self._logs[ANSWERS_LOG])), \
                _setting(CLAIMS_LOG, str(self._logs[CLAIMS_LOG])):
            super().setup()

    def teardown(self):
        try:
            super().teardown()
            cells = getattr(self, "_cells", [])
            ran = [c for c in cells if c.test_outputs is not None]
            errors = any(o.get("output_type") == "error" for c in ran for o in c.test_outputs)
            if cells and len(ran) == len(cells) and not errors:
                for count, item in enumerate(cells, start=1):
                    item.cell.outputs = [nbformat.from_dict(dict(o)) for o in item.test_outputs]
                    for output in item.cell.outputs:
                        if output.get("output_type") == "execute_result":
                            output["execution_count"] = count
                    item.cell.execution_count = count
                save_execution(self.nb, self.path, self._logs)
        finally:
            if getattr(self, "_lock", None) is not None:
                self._lock.__exit__(None, None, None)
                self._lock = None


@pytest.fixture(scope="session")
def executed_chapter():
    """``executed_chapter(path)``: the executed notebook of a chapter, shared with nbval's run of it
    (waits for that run if it holds the chapter's lock; executes the chapter if nothing is saved)."""
    def get(chapter: Path) -> Path:
        chapter = Path(chapter)
        with chapter_lock(chapter.stem):
            path = saved_execution(chapter)
            if not path.exists():
                import tempfile

                from theorylab.reproduce import execute_chapter

                logs = run_logs(chapter)
                with tempfile.TemporaryDirectory() as out, _without("TRITON_INTERPRET"), \
                        _setting(ANSWERS_LOG, str(logs[ANSWERS_LOG])):
                    run = execute_chapter(chapter, Path(out), timeout=900)   # records its own claims
                    assert not run.errors, f"{chapter.name}: {run.errors}"
                    logs[CLAIMS_LOG].write_text("".join(json.dumps(c) + "\n" for c in run.claims))
                    save_execution(nbformat.read(run.notebook, as_version=4), chapter, logs)
            return path
    return get


@pytest.fixture(scope="session")
def chapter_answers(executed_chapter):
    """``chapter_answers(path)``: the answers ``[{name: value}, ...]`` the chapter's exercise checks
    collected, in order, in the shared execution of the chapter (``executed_chapter``)."""
    from theorylab.answers import read_log

    def get(chapter: Path) -> list[dict]:
        executed_chapter(chapter)
        return read_log(saved_answers(Path(chapter)))
    return get


@pytest.fixture(scope="session")
def chapter_claims(executed_chapter):
    """``chapter_claims(path)``: the records of the claims the shared execution of the chapter made,
    in order (``theorylab.claims``' ``THEORYLAB_CLAIMS_FILE`` format)."""
    def get(chapter: Path) -> list[dict]:
        executed_chapter(chapter)
        with open(saved_claims(Path(chapter)), encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    return get


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Every chapter of the book released (``theorylab assignments release``) into a fresh folder (the
    grading tests)."""
    from theorylab import assignments

    out = tmp_path_factory.mktemp("released")
    assignments.release(assignments.find_chapters(ROOT / "book"), out)
    return out


def pytest_collect_file(file_path, parent):
    option = parent.config.option
    if (option.nbval or option.nbval_lax) and is_myst_notebook(file_path):
        return MystNotebookFile.from_parent(parent, path=file_path)
    return None


#: Run first: the longest group (every chapter in a browser), so that it does not finish last alone.
FIRST_MODULES = ("test_browser.py",)
#: Run last: consumers of the chapters' shared executions, once nbval has saved them.
LAST_MODULES = ("test_grading_instructor.py", "test_chapter_claims.py", "test_book.py")


def _order(item) -> int:
    if item.path.name in FIRST_MODULES:
        return 0
    if isinstance(item.parent, MystNotebookFile):
        return 1
    return 3 if item.path.name in LAST_MODULES else 2


def pytest_collection_modifyitems(config, items):
    """Order the items: the browser first, then the notebooks, the book's build last (``make test``
    runs ``--dist loadfile``, which hands out whole files in this order)."""
    items.sort(key=_order)   # stable: the order within each class is kept
