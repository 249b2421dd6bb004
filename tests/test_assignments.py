"""Assignments: release and grading.

Behaviour on a tiny book first (fast), then the required matrix on every chapter of the real book:
instructor full marks, untouched student zero (running to the end), one right + one wrong answer, a
tampered test, and files that are not notebooks.
"""

import copy
import json
import textwrap
from pathlib import Path

import nbformat
import pytest
from myst_text import MYST_HEADER

from theorylab import assignments, cli
from theorylab.assignments import AssignmentError

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = [p.stem for p in assignments.find_chapters(BOOK) if assignments.read_chapter(p)[1]]

MINI = MYST_HEADER + textwrap.dedent('''\

    # Mini

    ```{code-cell} ipython3
    base = 10
    ```

    :::{exercise} Add
    :label: ex-add
    :::

    :::{solution} ex-add
    :class: dropdown
    Add them.
    :::

    ```{code-cell} ipython3
    :tags: [solution]

    def add(a, b):
        """Return a + b."""
        return a + b
    ```

    ```{code-cell} ipython3
    :tags: [exercise-test, exercise=ex-add, points=1]

    assert add(1, 2) == 3
    ```

    ```{code-cell} ipython3
    :tags: [exercise-hidden-test, exercise=ex-add, points=2]

    assert add(base, -4) == 6
    ```

    ```{code-cell} ipython3
    :tags: [solution]

    answer = base * 2
    ```

    ```{code-cell} ipython3
    :tags: [exercise-test, exercise=ex-double, points=2]

    assert answer == 20
    ```

    ```{code-cell} ipython3
    print("the end")
    ```
    ''')


@pytest.fixture
def mini(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-mini.md").write_text(MINI)
    out = tmp_path / "out"
    assignments.release(assignments.find_chapters(book), out)
    return book, out


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def write(nb, path):
    nbformat.write(nb, path)
    return path


def solution_cells(nb):
    return [c for c in code_cells(nb) if c.metadata.get("theorylab", {}).get("kind") == "solution"]


def test_release_writes_stubs_and_drops_hidden_tests(mini):
    _, out = mini
    student = nbformat.read(out / "student" / "01-mini.ipynb", 4)
    instructor = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    sources = "\n".join(c.source for c in student.cells)
    assert "raise NotImplementedError" in sources and "return a + b" not in sources
    assert '"""Return a + b."""' in sources and "answer = None" in sources
    assert "add(base, -4)" not in sources and "Add them." not in sources
    assert "add(base, -4)" in "\n".join(c.source for c in instructor.cells)
    assert student.metadata["theorylab"]["chapter"] == "01-mini"


def test_mini_grades(mini, tmp_path):
    book, out = mini
    full = assignments.grade(out / "instructor" / "01-mini.ipynb", book=book)
    assert (full.total, full.max_total) == (5, 5)
    zero = assignments.grade(out / "student" / "01-mini.ipynb", book=book)
    assert zero.total == 0 and zero.cells_run == zero.cells_total
    assert all(q.points == 0 for q in zero.questions)


def test_errors_timeouts_and_untouched_files(mini, tmp_path):
    book, out = mini
    nb = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    crashing = copy.deepcopy(nb)
    solution_cells(crashing)[0].source = "def add(a, b):\n    return a + b\nraise RuntimeError('oops')\n"
    path = write(crashing, tmp_path / "crash.ipynb")
    before = path.read_bytes()
    report = assignments.grade(path, book=book)
    assert report.total == 5 and path.read_bytes() == before  # an error in a student cell is not fatal

    slow = copy.deepcopy(nb)
    solution_cells(slow)[1].source = "import time\ntime.sleep(30)\nanswer = 20\n"
    report = assignments.grade(write(slow, tmp_path / "slow.ipynb"), book=book, timeout=2)
    scores = {q.exercise: q.points for q in report.questions}
    assert scores == {"ex-add": 3, "ex-double": 0}
    assert any("time limit" in note for note in report.notes)


def test_tampered_and_deleted_tests_get_no_credit(mini, tmp_path):
    book, out = mini
    nb = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    edited = copy.deepcopy(nb)
    for cell in code_cells(edited):
        if cell.source.startswith("assert answer"):
            cell.source = "assert True"
    report = assignments.grade(write(edited, tmp_path / "edited.ipynb"), book=book)
    by = {q.exercise: q for q in report.questions}
    assert by["ex-double"].points == 0 and "edited or deleted" in by["ex-double"].reason
    assert by["ex-add"].points == 3
    deleted = copy.deepcopy(nb)
    deleted.cells = [c for c in deleted.cells if "add(1, 2)" not in c.source]
    report = assignments.grade(write(deleted, tmp_path / "deleted.ipynb"), book=book)
    assert {q.exercise: q.points for q in report.questions} == {"ex-add": 0, "ex-double": 2}


def test_not_a_notebook(mini, tmp_path, capsys):
    book, _ = mini
    (tmp_path / "essay.txt").write_text("my answers are in my head")
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    for name in ("essay.txt", "broken.ipynb", "missing.ipynb"):
        with pytest.raises(AssignmentError, match="not a readable Jupyter notebook|does not exist"):
            assignments.grade(tmp_path / name, book=book)
    assert cli.main(["assignments", "grade", str(tmp_path / "broken.ipynb"), "--book", str(book)]) == 2
    assert "not a readable Jupyter notebook" in capsys.readouterr().err


def test_cli_release_and_grade_write_a_report(mini, tmp_path, capsys):
    book, _ = mini
    out = tmp_path / "cli"
    assert cli.main(["assignments", "release", "--book", str(book), "--out", str(out)]) == 0
    report_path = tmp_path / "report.json"
    assert cli.main(["assignments", "grade", str(out / "instructor" / "01-mini.ipynb"), "--book", str(book),
                     "--report", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["total"] == 5
    assert "total 5 / 5" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# Every chapter of the book
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("released")
    assignments.release(assignments.find_chapters(BOOK), out)
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_instructor_full_marks(released, chapter):
    report = assignments.grade(released / "instructor" / f"{chapter}.ipynb", book=BOOK)
    assert report.total == report.max_total > 0, assignments.format_report(report)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_student_zero_and_runs_to_the_end(released, chapter):
    report = assignments.grade(released / "student" / f"{chapter}.ipynb", book=BOOK)
    assert all(q.points == 0 for q in report.questions), assignments.format_report(report)
    assert report.cells_run == report.cells_total and not report.notes


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_partial_and_tampered(released, chapter, tmp_path):
    """Question 1 answered right, question 2 wrong (still the stub), question 3 answered right but
    its visible test edited: exactly question 1's points."""
    student = nbformat.read(released / "student" / f"{chapter}.ipynb", 4)
    instructor = nbformat.read(released / "instructor" / f"{chapter}.ipynb", 4)
    answers = {c.metadata["theorylab"]["exercise"]: c.source for c in solution_cells(instructor)}
    questions = [q.label for q in assignments.read_chapter(BOOK / f"{chapter}.md")[1]]
    first, _, third = questions[:3]
    for cell in solution_cells(student):
        if cell.metadata["theorylab"]["exercise"] in (first, third):
            cell.source = answers[cell.metadata["theorylab"]["exercise"]]
    for cell in code_cells(student):
        meta = cell.metadata.get("theorylab", {})
        if meta.get("kind") == "exercise-test" and meta.get("exercise") == third:
            cell.source = cell.source + "\nassert True  # student's edit\n"
    path = write(student, tmp_path / "submission.ipynb")
    before = path.read_bytes()
    report = assignments.grade(path, book=BOOK)
    by = {q.exercise: q for q in report.questions}
    assert by[first].points == by[first].max_points > 0, assignments.format_report(report)
    assert by[questions[1]].points == 0
    assert by[third].points == 0 and "edited or deleted" in by[third].reason
    assert report.total == by[first].max_points
    assert path.read_bytes() == before
