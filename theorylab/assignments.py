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

Every check cell has two halves, split by a line starting with ``# -- check`` (see
:mod:`theorylab.answers`): the first calls the student's code and ends with
``answers = collect(name=value, ...)``; the second compares ``answers`` with the expected values.

The grader never trusts the submission: it takes every check from the chapter source (read from
``--book``, a folder the student's kernel is not told about), checks that each visible check is still
in the submission word for word (an edited or deleted check gives its exercise no credit), and runs
the submission with the original checks in a fresh kernel under a time limit, in an empty temporary
folder with a whitelisted environment, killing every process it started when grading ends
(:mod:`theorylab.sandbox`). Only the first half of each check runs in the student's kernel; its
``answers`` are saved as plain numbers and arrays, and the second half runs in the grader's own
process. A check passes only if its first half ran to completion without raising and its second half
passed; the check running when the kernel died or the time ran out fails, and every later check is
"not run".
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jupytext
import nbformat

from . import __version__, answers, chapters, sandbox

SOLUTION, TEST, HIDDEN = "solution", "exercise-test", "exercise-hidden-test"
METADATA_KEY = "theorylab"
#: The line that ends the part of a check that runs in the student's kernel.
CHECK_LINE = re.compile(r"^# -- check\b.*$", re.M)
#: What the grader keeps of a kernel-side error message, and of any reason in the report.
MAX_REASON = 300


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

    @property
    def two_halves(self) -> bool:
        """False for a check in the older one-piece format, which runs whole in the student's kernel
        (and so is not protected against tampering there)."""
        return CHECK_LINE.search(self.source) is not None

    @property
    def collect_source(self) -> str:
        """The half that runs in the student's kernel (ends with ``answers = collect(...)``)."""
        return CHECK_LINE.split(self.source, maxsplit=1)[0].rstrip() + "\n"

    @property
    def verify_source(self) -> str:
        """The half that runs in the grader's own process, on ``answers``."""
        return CHECK_LINE.split(self.source, maxsplit=1)[1].lstrip("\n")


def split_check(source: str, where: str) -> None:
    """Validate the two halves of a check cell; :class:`AssignmentError` naming ``where`` otherwise."""
    parts = CHECK_LINE.split(source, maxsplit=1)
    if len(parts) != 2:
        raise AssignmentError(f"{where}: a check cell needs a line '# -- check' between the code that "
                              "collects the answers and the code that checks them")
    try:
        first, second = ast.parse(parts[0]), ast.parse(parts[1])
    except SyntaxError as exc:
        raise AssignmentError(f"{where}: the check does not parse ({exc.msg}, line {exc.lineno})") from None
    assigns = [n for n in first.body if isinstance(n, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == "answers" for t in n.targets)]
    if not assigns:
        raise AssignmentError(f"{where}: the first half of a check must set answers = collect(...)")
    if not any(isinstance(n, ast.Assert) for n in ast.walk(second)):
        raise AssignmentError(f"{where}: the second half of a check must assert something")


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
            if CHECK_LINE.search(cell.source):
                split_check(cell.source, f"{path.name}, check of {label}")
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


def _parse_cell(source: str) -> ast.Module:
    """A code cell's syntax tree; IPython's ``%magic`` and ``!shell`` lines are left out."""
    kept = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return ast.parse("\n".join(kept))


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at top level (functions, classes, assignments, imports, loop targets)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For)
                       else [])
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def student_version_problems(nb) -> list[str]:
    """What would go wrong in the student version of chapter notebook ``nb`` (empty when nothing).

    The student version replaces every solution cell by a stub (:func:`stub_source`: functions raise
    ``NotImplementedError``, answers are ``None``), so an untouched student notebook runs to the end
    and scores 0 exactly when

    * no cell outside the exercises uses a name whose latest definition is a solution cell's answer
      (that cell would fail in the student's notebook), and
    * the part of every check that runs in the student's kernel uses at least one name its
      exercise's solution defines (a check that reads none of the student's answers cannot fail on a
      stub, or pass on a right answer).

    Imports in a solution cell are kept by the stub and do not count as answers.
    """
    problems, answered, by_exercise = [], {}, {}
    cells = nb.cells
    for position, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        kind = cell_kind(cell)
        tree = _parse_cell(cell.source)
        if kind == SOLUTION:
            label = _exercise_of_solution(cell, cells, position)
            names = _defined_names(ast.Module(body=[n for n in tree.body if not isinstance(
                n, ast.Import | ast.ImportFrom)], type_ignores=[]))
            by_exercise.setdefault(label, set()).update(names)
            answered.update(dict.fromkeys(names, label))
            continue
        if kind in (TEST, HIDDEN):
            label = _tag_value(cell, "exercise") or ""
            source = CHECK_LINE.split(cell.source, maxsplit=1)[0]
            if not _used_names(_parse_cell(source)) & by_exercise.get(label, set()):
                problems.append(f"a check of {label} does not use any name its solution defines "
                                f"({', '.join(sorted(by_exercise.get(label, set()))) or 'none'}): it "
                                "cannot tell a stub from an answer")
            continue
        used = {}
        for statement in tree.body:         # in order: a name bound again before its use is not an answer
            used.update({name: answered[name] for name in _used_names(statement) if name in answered})
            for name in _defined_names(ast.Module(body=[statement], type_ignores=[])):
                answered.pop(name, None)
        if used:
            start = " ".join(cell.source.split())[:60]
            problems.append(f"the cell starting {start!r} uses {', '.join(sorted(used))}, the answer to "
                            f"{', '.join(sorted(set(used.values())))}: in the student's notebook it would "
                            "fail on the stub")
    return problems


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
        if student and kind == TEST:
            # Locked as nbgrader locks its test cells (JupyterLab honours both keys); the grader's
            # "edited check" rule applies whatever the notebook's metadata says.
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
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


MANIFEST = "manifest.json"


def release(chapter_paths: list[Path], out: Path, *, due: str | None = None) -> list[dict]:
    """Write ``OUT/student/<chapter>.ipynb`` and ``OUT/instructor/<chapter>.ipynb`` for each chapter
    that has exercises; returns one summary per chapter (exercises and their points).

    The release also keeps what it was made from: ``OUT/source/<chapter>.md`` (the chapter as released)
    and ``OUT/manifest.json`` (each chapter's source hash, questions and points, the grader version and
    ``due``, an ISO 8601 date-time, if given). ``theorylab assignments grade --release OUT`` grades
    against that copy, so that editing the book after a release changes nobody's grade.
    """
    out = Path(out)
    if due is not None:
        parse_due(due)
    summaries = []
    for path in chapter_paths:
        nb, exercises = read_chapter(path)
        if not exercises:
            continue
        problems = student_version_problems(nb)
        if problems:
            raise AssignmentError(f"{path.name}: the student version would not work: " + "; ".join(problems))
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
        (out / "source").mkdir(parents=True, exist_ok=True)
        source = path.read_bytes()
        (out / "source" / path.name).write_bytes(source)
        summaries[-1].update(source=f"source/{path.name}", sha256=hashlib.sha256(source).hexdigest(),
                             points=sum(q["points"] for q in summaries[-1]["questions"]))
    manifest = out / MANIFEST
    previous = json.loads(manifest.read_text()) if manifest.is_file() else {"chapters": []}
    kept = [c for c in previous.get("chapters", []) if c["chapter"] not in {s["chapter"] for s in summaries}]
    manifest.write_text(json.dumps({
        "grader_version": grader_version(), "released": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "due": due, "chapters": kept + summaries}, indent=1), encoding="utf-8")
    return summaries


def parse_due(text: str):
    """An ISO 8601 date-time (``2027-01-15T23:59``, optionally with a UTC offset; without one, the
    machine's local time) as an aware datetime; :class:`AssignmentError` naming the value otherwise."""
    from datetime import datetime

    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise AssignmentError("due must be an ISO 8601 date-time such as 2027-01-15T23:59, "
                              f"got {text!r}") from None
    return value if value.tzinfo else value.astimezone()


def read_manifest(release_dir: Path) -> dict:
    """The release's manifest, with each chapter's source checked against its recorded hash."""
    path = Path(release_dir) / MANIFEST
    if not path.is_file():
        raise AssignmentError(f"{release_dir} is not a release folder (no {MANIFEST}); "
                              "make one with `theorylab assignments release`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for chapter in manifest.get("chapters", []):
        source = Path(release_dir) / chapter["source"]
        if not source.is_file() or hashlib.sha256(source.read_bytes()).hexdigest() != chapter["sha256"]:
            raise AssignmentError(f"{source} is missing or differs from the release ({MANIFEST} records "
                                  f"sha256 {chapter['sha256'][:12]}…)")
    return manifest


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
    #: Cells outside the checks that raised, as "code cell N raised NameError" (N counts the
    #: submission's code cells from 1).
    cell_errors: list[str] = field(default_factory=list)
    chapter_sha256: str = ""
    grader_version: str = ""

    @property
    def total(self) -> int:
        return sum(q.points for q in self.questions)

    @property
    def max_total(self) -> int:
        return sum(q.max_points for q in self.questions)

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total, "max_total": self.max_total}


def grader_version() -> str:
    """The package version and a hash of the grading code, recorded in every report."""
    digest = hashlib.sha256()
    for module in (__file__, answers.__file__, sandbox.__file__, Path(__file__).with_name("verify.py")):
        digest.update(Path(module).read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


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


def _error_name(output) -> str:
    """The exception's class name as the kernel reported it, reduced to a short identifier (the
    message is the student's text and may carry anything: it is not kept)."""
    name = str(output.get("ename", "Exception"))
    name = re.sub(r"[^A-Za-z0-9_.]", "", name)[:60]
    return name or "an exception"


@dataclass
class _Check:
    """One check in the run: its test, the cell that runs its first half, and the answers file."""
    exercise: str
    test: TestCell
    cell: dict
    answers_file: str


def _collect_cell(test: TestCell, answers_file: str):
    if not test.two_halves:
        return nbformat.v4.new_code_cell(test.source)
    dump = (f"\nimport theorylab.answers as _theorylab_answers\n"
            f"_theorylab_answers.dump(answers, {answers_file!r})\n")
    return nbformat.v4.new_code_cell(test.collect_source + dump)


def _make_client(nb, cell_timeout: int, folder: Path, limits: dict):
    """An nbclient that keeps only error outputs (capped): printed output is counted, not stored."""
    from nbclient import NotebookClient

    from .execution import IpcKernelManager

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "stream":     # printed text; a chapter's figures are not "printed"
                limits["bytes"] += len(str(content.get("text", "")))
            if msg["msg_type"] == "error":
                out = nbformat.v4.new_output("error", ename=str(content.get("ename", ""))[:200],
                                             evalue="", traceback=[])
                outs.append(out)
                return out
            return None

    # IPC transport: the kernel talks to the grader over Unix sockets, not TCP ports on the machine
    # (and ipykernel has nothing to warn about).
    return CappedClient(nb, kernel_manager_class=IpcKernelManager, timeout=cell_timeout,
                        kernel_name="python3", allow_errors=True, startup_timeout=180,
                        resources={"metadata": {"path": str(folder)}})


def verify_answers(items: list[tuple[TestCell, dict]], timeout: int = 900) -> list[tuple[bool, str]]:
    """(passed, reason) for each of ``items`` (test, answers): its second half run in a new Python process
    (:mod:`theorylab.verify`), with this process's environment less ``TRITON_INTERPRET`` (the checks
    compute as a reader's run does); every check fails with the reason if that process cannot finish."""
    import subprocess
    import sys

    if not items:
        return []
    with tempfile.TemporaryDirectory(prefix="theorylab-verify-") as folder:
        job = []
        for k, (test, values) in enumerate(items):
            path = os.path.join(folder, f"answers-{k}.json")
            answers.dump(values, path)
            job.append({"name": test.exercise, "source": test.verify_source, "answers": path})
        job_path, results_path = os.path.join(folder, "job.json"), os.path.join(folder, "results.json")
        with open(job_path, "w", encoding="utf-8") as fh:
            json.dump(job, fh)
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        try:
            done = subprocess.run([sys.executable, "-m", "theorylab.verify", job_path, results_path], env=env,
                                  cwd=folder, capture_output=True, text=True, timeout=timeout)
            if done.returncode == 0:
                with open(results_path, encoding="utf-8") as fh:
                    return [(bool(p), str(r)) for p, r in json.load(fh)]
            reason = f"the grader could not run its checks (exit {done.returncode})"
        except subprocess.TimeoutExpired:
            reason = f"the grader's checks ran past {timeout} s"
    return [(False, reason)] * len(items)


def grade(submission: Path, *, chapter: str, book: Path = Path("book"), timeout: int = 600,
          cell_timeout: int = 300) -> Report:
    """Grade ``submission`` against chapter ``chapter`` of ``book``; see the module docstring.

    ``chapter`` is required (a submission's own metadata is not trusted; if it names another chapter,
    that is an error); ``timeout`` bounds the whole run and ``cell_timeout`` each cell, in seconds.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    original_bytes = Path(submission).read_bytes() if Path(submission).is_file() else None
    nb = copy.deepcopy(read_submission(submission))
    if not chapter:
        raise AssignmentError("say which chapter the submission answers (--chapter)")
    paths = find_chapters(book, [chapter])
    claimed = nb.get("metadata", {}).get(METADATA_KEY, {}).get("chapter")
    if claimed and claimed != paths[0].stem:
        raise AssignmentError(f"{submission} was released for chapter {claimed}, not {paths[0].stem}")
    chapter_bytes = paths[0].read_bytes()
    _, exercises = read_chapter(paths[0])
    if not exercises:
        raise AssignmentError(f"chapter {chapter} has no exercises to grade")

    # The run: the submission's code cells in order; each visible check replaced by the first half of
    # the book's version of it, and each exercise's hidden checks inserted after its last visible one.
    run_cells = [copy.deepcopy(c) for c in nb.cells if c.get("cell_type") == "code"]
    for cell in run_cells:
        cell["outputs"], cell["execution_count"] = [], None
    submitted = {id(cell): number for number, cell in enumerate(run_cells, start=1)}
    questions, checks, used = [], [], set()
    for exercise in exercises:
        question = QuestionResult(exercise.label, exercise.points)
        questions.append(question)
        matched = []
        for test in exercise.tests:
            if test.kind != TEST:
                continue
            hit = next((i for i, c in enumerate(run_cells) if i not in used
                        and _normalise(c.get("source", "")) == _normalise(test.source)), None)
            if hit is None:
                question.reason = "a visible check was edited or deleted: no credit for this exercise"
                break
            used.add(hit)
            matched.append((test, hit))
        if question.reason:
            continue
        for test, position in matched:
            name = f"answers-{secrets.token_hex(8)}.json"
            run_cells[position] = _collect_cell(test, name)
            checks.append(_Check(exercise.label, test, run_cells[position], name))
        anchor = run_cells[matched[-1][1]] if matched else None
        for test in exercise.tests:
            if test.kind == HIDDEN:
                name = f"answers-{secrets.token_hex(8)}.json"
                cell = _collect_cell(test, name)
                position = _index(run_cells, anchor) + 1 if anchor is not None else len(run_cells)
                run_cells.insert(position, cell)
                anchor = cell
                checks.append(_Check(exercise.label, test, cell, name))

    run_nb = nbformat.v4.new_notebook(cells=run_cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    report = Report(paths[0].stem, str(submission), questions,
                    chapter_sha256=hashlib.sha256(chapter_bytes).hexdigest(), grader_version=grader_version())
    completed: set[int] = set()
    stopped_at, failure, limits, collected = None, "", {"bytes": 0}, {}
    start = time.perf_counter()
    with sandbox.reaping() as reaped, sandbox.isolated_folder() as folder:
        client = _make_client(run_nb, cell_timeout, folder, limits)
        try:
            with client.setup_kernel(env=sandbox.kernel_environment(folder)):
                for index, cell in enumerate(run_nb.cells):
                    remaining = timeout - (time.perf_counter() - start)
                    if remaining <= 0:
                        stopped_at = index
                        raise CellTimeoutError("out of time")
                    client.timeout = max(1, int(min(cell_timeout, remaining)))
                    stopped_at = index
                    client.execute_cell(cell, index)
                    completed.add(index)
                    stopped_at = None
        except CellTimeoutError:
            failure = f"ran past the time limit ({timeout} s in all, {cell_timeout} s per cell)"
        except DeadKernelError:
            failure = "the kernel died"
        # Read the answers now, before the folder goes: only files of checks that completed.
        for check in checks:
            index = _index(run_nb.cells, check.cell)
            path = folder / check.answers_file
            if index in completed and path.is_file() and not path.is_symlink():
                try:
                    collected[check.answers_file] = answers.load(str(path))
                except (OSError, ValueError) as exc:
                    collected[check.answers_file] = exc
    report.notes.extend(reaped)
    check_cells = {id(check.cell) for check in checks}
    for cell in run_nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and id(cell) not in check_cells and id(cell) in submitted:
            report.cell_errors.append(f"code cell {submitted[id(cell)]} raised {_error_name(errors[0])}")
    report.seconds = time.perf_counter() - start
    report.cells_total = len(run_nb.cells)
    report.cells_run = len(completed)
    if failure:
        report.notes.append(f"the submission stopped: {failure}")
    if limits["bytes"] > 1_000_000:
        report.notes.append(f"the submission printed {limits['bytes'] / 1e6:.0f} MB (not kept by the grader)")

    legacy = sum(not check.test.two_halves for check in checks)
    if legacy:
        report.notes.append(f"{legacy} check(s) of this chapter are in the older one-piece format and ran "
                            "whole in the student's kernel: they are not protected against tampering")
    by_label = {q.exercise: q for q in questions}
    to_verify = [check for check in checks if check.test.two_halves
                 and _index(run_nb.cells, check.cell) in completed
                 and not any(o.get("output_type") == "error" for o in check.cell.get("outputs", []))
                 and isinstance(collected.get(check.answers_file), dict)]
    verdicts = dict(zip((id(c) for c in to_verify), verify_answers(
        [(c.test, collected[c.answers_file]) for c in to_verify]), strict=True))
    for check in checks:
        index = _index(run_nb.cells, check.cell)
        errors = [o for o in check.cell.get("outputs", []) if o.get("output_type") == "error"]
        if index not in completed:
            reason = (f"{failure} during this check" if index == stopped_at and failure
                      else f"not run ({failure} earlier)" if failure else "not run")
            result = TestResult(check.test.kind, check.test.points, False, reason)
        elif errors and not check.test.two_halves:
            result = TestResult(check.test.kind, check.test.points, False,
                                f"the check failed ({_error_name(errors[0])})")
        elif not check.test.two_halves:
            result = TestResult(check.test.kind, check.test.points, True)
        elif errors:
            result = TestResult(check.test.kind, check.test.points, False,
                                f"your code raised {_error_name(errors[0])}")
        elif not isinstance(collected.get(check.answers_file), dict):
            result = TestResult(check.test.kind, check.test.points, False,
                                "the answers could not be read back (were they numbers or arrays?)")
        else:
            passed, reason = verdicts[id(check)]
            result = TestResult(check.test.kind, check.test.points, passed, reason)
        by_label[check.exercise].tests.append(result)
    for question in questions:
        if not question.reason:
            question.points = sum(t.points for t in question.tests if t.passed)
    if original_bytes is not None and Path(submission).read_bytes() != original_bytes:
        report.notes.append("the submission file changed while it was graded (the first reading was graded)")
    return report


def _index(cells, cell) -> int:
    return next(i for i, c in enumerate(cells) if c is cell)


def format_report(report: Report) -> str:
    lines = [f"chapter {report.chapter}: {report.submission}"]
    for q in report.questions:
        detail = q.reason or ", ".join(
            f"{'hidden' if t.kind == HIDDEN else 'visible'} {'pass' if t.passed else 'fail'}"
            + ("" if t.passed else f" ({t.reason})") for t in q.tests)
        lines.append(f"  {q.exercise:<28} {q.points:>3} / {q.max_points:<3} {detail}")
    lines.append(f"  ran {report.cells_run} of {report.cells_total} code cells in {report.seconds:.1f} s")
    lines.extend(f"  error: {error}" for error in report.cell_errors)
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.append(f"  total {report.total} / {report.max_total}")
    return "\n".join(lines)


def write_report(report: Report, path: Path) -> None:
    """Write the report as JSON atomically: a new file in the target's folder renamed over the target,
    so a symlink planted at ``path`` is replaced, never followed."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=".grade-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report.to_dict(), fh, indent=1)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
