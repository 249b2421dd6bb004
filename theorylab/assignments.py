"""Course assignments from the chapters' exercises: student and instructor notebooks, and a grader.

The marking convention lives in the chapter sources (``book/NN-*.md``), as cell tags:

* ``solution``: a code cell that answers an exercise (becomes a stub in the student version);
* ``exercise-test``: a check the student sees; ``exercise-hidden-test``: a check only the grader runs;
* ``exercise=<label>`` names the exercise (the label of its MyST ``{exercise}``) and ``points=<n>``
  what a passing check is worth.

In nbgrader's terms a ``solution`` cell is an autograded-answer cell whose body sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION``; an ``exercise-test`` cell is an autograder-tests cell
with ``points``; an ``exercise-hidden-test`` cell is the part of such a cell between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

The grader never trusts the submission's tests: it takes every test from the chapter source, checks
that each visible test is still in the submission word for word (an edited or deleted test gives its
exercise no credit), runs the submission with the original tests in a fresh kernel under a time
limit, and scores each test cell by whether it raised.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jupytext
import nbformat

from . import chapters

SOLUTION, TEST, HIDDEN = "solution", "exercise-test", "exercise-hidden-test"
METADATA_KEY = "theorylab"


class AssignmentError(ValueError):
    """A chapter or submission that cannot be released or graded (the message says why)."""


# ----------------------------------------------------------------------------------------------
# Reading the convention
# ----------------------------------------------------------------------------------------------

def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _tag_value(cell, key: str) -> str | None:
    for tag in _tags(cell):
        if tag.startswith(key + "="):
            return tag.split("=", 1)[1]
    return None


def cell_kind(cell) -> str | None:
    """``"solution"``, ``"exercise-test"``, ``"exercise-hidden-test"`` or None."""
    tags = _tags(cell)
    for kind in (HIDDEN, TEST, SOLUTION):
        if kind in tags:
            return kind
    return None


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


@dataclass
class TestCell:
    exercise: str
    kind: str          # TEST or HIDDEN
    points: int
    source: str
    index: int         # position among the chapter's code cells


@dataclass
class Exercise:
    label: str
    tests: list[TestCell] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(t.points for t in self.tests)


def read_chapter(path: Path):
    """The chapter as a notebook plus its exercises (in order), validating the convention."""
    path = Path(path)
    if not path.exists():
        raise AssignmentError(f"no chapter at {path}")
    nb = jupytext.read(path)
    exercises: OrderedDict[str, Exercise] = OrderedDict()
    code_index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kind = cell_kind(cell)
        if kind in (TEST, HIDDEN):
            label = _tag_value(cell, "exercise")
            points = _tag_value(cell, "points")
            if not label or points is None or not points.isdigit():
                raise AssignmentError(f"{path.name}: a {kind} cell needs tags exercise=<label> and "
                                      f"points=<n>; cell starts {cell.source[:60]!r}")
            exercises.setdefault(label, Exercise(label)).tests.append(
                TestCell(label, kind, int(points), cell.source, code_index))
        code_index += 1
    return nb, list(exercises.values())


# ----------------------------------------------------------------------------------------------
# Release
# ----------------------------------------------------------------------------------------------

def stub_source(source: str, exercise: str = "") -> str:
    """A solution cell turned into a stub: every top-level function keeps its signature and
    docstring and raises ``NotImplementedError``; every top-level assignment becomes ``name = None``."""
    tree = ast.parse(source)
    lines = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            header = ast.get_source_segment(source, node).split("\n")
            signature = []
            for line in header:          # the def line(s), up to the closing colon
                signature.append(line)
                if line.rstrip().endswith(":"):
                    break
            lines.extend(signature)
            docstring = ast.get_docstring(node)
            if docstring:
                lines.append(f'    """{docstring}"""')
            lines.append(f'    raise NotImplementedError("your answer to {exercise or "this exercise"}")')
            lines.append("")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                lines.append(f"{ast.unparse(target)} = None  # your answer to {exercise or 'this exercise'}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            lines.append(ast.get_source_segment(source, node))
    return "\n".join(lines).rstrip() + "\n"


def _exercise_of_solution(cell, cells, position) -> str:
    label = _tag_value(cell, "exercise")
    if label:
        return label
    for later in cells[position + 1:]:   # the tests that follow a solution name its exercise
        if later.cell_type == "code" and cell_kind(later) in (TEST, HIDDEN):
            return _tag_value(later, "exercise") or ""
    return ""


def _to_notebook(nb, chapter: str, *, student: bool):
    out = copy.deepcopy(nb)
    cells = []
    for position, cell in enumerate(out.cells):
        kind = cell_kind(cell) if cell.cell_type == "code" else None
        if student and kind == HIDDEN:
            continue
        if kind is not None:
            cell.metadata[METADATA_KEY] = {"kind": kind,
                                           "exercise": _exercise_of_solution(cell, out.cells, position)}
        if student and kind == SOLUTION:
            cell.source = stub_source(cell.source, cell.metadata[METADATA_KEY]["exercise"])
        if student and cell.cell_type == "markdown":
            cell.source = _strip_solution_blocks(cell.source)
        cells.append(cell)
    out.cells = cells
    out.metadata.pop("jupytext", None)
    out.metadata[METADATA_KEY] = {"chapter": chapter, "version": "student" if student else "instructor"}
    out.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                           "language": "python"})
    nbformat.validator.normalize(out)
    return out


_SOLUTION_BLOCK = re.compile(r":::\{solution\}.*?\n:::\s*", re.S)


def _strip_solution_blocks(markdown: str) -> str:
    """Remove MyST ``{solution}`` blocks (the written answers) from a markdown cell."""
    return _SOLUTION_BLOCK.sub("", markdown)


def find_chapters(book: Path, names: list[str] | None = None) -> list[Path]:
    try:
        return chapters.find_chapters(book, names)
    except ValueError as exc:
        raise AssignmentError(str(exc)) from None


def release(chapter_paths: list[Path], out: Path) -> list[dict]:
    """Write ``OUT/student/<chapter>.ipynb`` and ``OUT/instructor/<chapter>.ipynb`` for each chapter
    that has exercises; returns one summary per chapter (exercises and their points)."""
    out = Path(out)
    summaries = []
    for path in chapter_paths:
        nb, exercises = read_chapter(path)
        if not exercises:
            continue
        for version in ("student", "instructor"):
            folder = out / version
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(_to_notebook(nb, path.stem, student=version == "student"),
                           folder / f"{path.stem}.ipynb")
        summaries.append({"chapter": path.stem,
                          "questions": [{"exercise": e.label, "points": e.points,
                                         "visible": sum(t.points for t in e.tests if t.kind == TEST),
                                         "hidden": sum(t.points for t in e.tests if t.kind == HIDDEN)}
                                        for e in exercises]})
    return summaries


# ----------------------------------------------------------------------------------------------
# Grading
# ----------------------------------------------------------------------------------------------

@dataclass
class TestResult:
    kind: str
    points: int
    passed: bool
    reason: str = ""


@dataclass
class QuestionResult:
    exercise: str
    max_points: int
    points: int = 0
    reason: str = ""
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class Report:
    chapter: str
    submission: str
    questions: list[QuestionResult]
    seconds: float = 0.0
    cells_run: int = 0
    cells_total: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(q.points for q in self.questions)

    @property
    def max_total(self) -> int:
        return sum(q.max_points for q in self.questions)

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total, "max_total": self.max_total}


def read_submission(path: Path):
    """Read a submitted notebook (never modified); a clear :class:`AssignmentError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise AssignmentError(f"submission {path} does not exist or is not a file")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for non-JSON or non-notebook input
        raise AssignmentError(f"submission {path} is not a readable Jupyter notebook "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(nb.get("cells"), list):
        raise AssignmentError(f"submission {path} is not a Jupyter notebook (no list of cells)")
    return nb


def grade(submission: Path, *, book: Path = Path("book"), chapter: str | None = None,
          timeout: int = 600, cell_timeout: int = 300) -> Report:
    """Grade ``submission`` against the chapter's tests; see the module docstring for the rules.

    ``chapter`` defaults to the one recorded in the notebook by :func:`release`; ``timeout`` bounds the
    whole run and ``cell_timeout`` each cell, in seconds.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    original_nb = read_submission(submission)
    nb = copy.deepcopy(original_nb)
    chapter = chapter or nb.get("metadata", {}).get(METADATA_KEY, {}).get("chapter")
    if not chapter:
        raise AssignmentError(f"{submission} does not say which chapter it answers; pass --chapter")
    paths = find_chapters(book, [chapter])
    _, exercises = read_chapter(paths[0])
    if not exercises:
        raise AssignmentError(f"chapter {chapter} has no exercises to grade")

    # The run: the submission's code cells, in order, with each exercise's hidden tests inserted
    # after its last visible test. ``plan`` keeps (exercise, test, cell object) to score afterwards.
    run_cells = [copy.deepcopy(c) for c in nb.cells if c.get("cell_type") == "code"]
    for cell in run_cells:
        cell["outputs"], cell["execution_count"] = [], None
    questions, plan, used = [], [], set()
    for exercise in exercises:
        question = QuestionResult(exercise.label, exercise.points)
        questions.append(question)
        matched = []
        for test in exercise.tests:
            if test.kind != TEST:
                continue
            hit = next((c for c in run_cells if id(c) not in used
                        and _normalise(c.get("source", "")) == _normalise(test.source)), None)
            if hit is None:
                question.reason = "a visible test cell was edited or deleted: no credit for this exercise"
                break
            used.add(id(hit))
            matched.append((test, hit))
        if question.reason:
            continue
        anchor = matched[-1][1] if matched else None
        plan.extend((exercise.label, test, cell) for test, cell in matched)
        for test in exercise.tests:
            if test.kind == HIDDEN:
                cell = nbformat.v4.new_code_cell(test.source)
                position = run_cells.index(anchor) + 1 if anchor is not None else len(run_cells)
                run_cells.insert(position, cell)
                anchor = cell
                plan.append((exercise.label, test, cell))

    run_nb = nbformat.v4.new_notebook(cells=run_cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    client = NotebookClient(run_nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(Path(book).resolve())}})
    report = Report(chapter, str(submission), questions)
    start = time.perf_counter()
    failure = ""
    try:
        # A fresh kernel that runs the chapter as a reader does: the torch path on a CPU, never
        # Triton's (slow) interpreter even if the grading process has it switched on.
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        with client.setup_kernel(env=env):
            for index, cell in enumerate(run_nb.cells):
                remaining = timeout - (time.perf_counter() - start)
                if remaining <= 0:
                    raise CellTimeoutError("out of time")
                client.timeout = max(1, int(min(cell_timeout, remaining)))
                client.execute_cell(cell, index)
    except CellTimeoutError:
        failure = f"the submission ran past the time limit ({timeout} s in all, {cell_timeout} s per cell)"
    except DeadKernelError:
        failure = "the kernel died while running the submission"
    report.seconds = time.perf_counter() - start
    report.cells_total = len(run_nb.cells)
    report.cells_run = sum(c.get("execution_count") is not None for c in run_nb.cells)
    if failure:
        report.notes.append(failure)

    by_label = {q.exercise: q for q in questions}
    for label, test, cell in plan:
        ran = cell.get("execution_count") is not None
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not ran:
            result = TestResult(test.kind, test.points, False, failure or "not run")
        elif errors:
            message = f"{errors[0]['ename']}: {errors[0]['evalue']}"
            result = TestResult(test.kind, test.points, False, message[:300])
        else:
            result = TestResult(test.kind, test.points, True)
        by_label[label].tests.append(result)
    for question in questions:
        if not question.reason:
            question.points = sum(t.points for t in question.tests if t.passed)
    if original_nb != read_submission(submission):   # paranoia: the file must be untouched
        raise AssignmentError(f"{submission} changed while it was graded")
    return report


def format_report(report: Report) -> str:
    lines = [f"chapter {report.chapter}: {report.submission}"]
    for q in report.questions:
        detail = q.reason or ", ".join(
            f"{'hidden' if t.kind == HIDDEN else 'visible'} {'pass' if t.passed else 'fail'}"
            + ("" if t.passed else f" ({t.reason})") for t in q.tests)
        lines.append(f"  {q.exercise:<28} {q.points:>3} / {q.max_points:<3} {detail}")
    lines.append(f"  ran {report.cells_run} of {report.cells_total} code cells in {report.seconds:.1f} s")
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.append(f"  total {report.total} / {report.max_total}")
    return "\n".join(lines)


def write_report(report: Report, path: Path) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
