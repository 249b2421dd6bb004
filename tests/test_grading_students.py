"""The grader on every chapter of the book: every chapter's untouched student notebook gets 0 and
runs to the end; one chapter partly answered and tampered with.

Each grading executes a whole chapter, so these tests live in their own modules, which
`make test`'s two workers (``--dist loadfile``) run in parallel with each other and with the rest.
"""

import nbformat
import pytest
from test_assignments import BOOK, CHAPTERS, code_cells, solution_cells, write

from theorylab import assignments


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("released")
    assignments.release(assignments.find_chapters(BOOK), out)
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_student_zero_and_runs_to_the_end(released, chapter):
    report = assignments.grade(released / "student" / f"{chapter}.ipynb", book=BOOK, chapter=chapter)
    assert all(q.points == 0 for q in report.questions), assignments.format_report(report)
    assert report.cells_run == report.cells_total
    assert report.notes == [], report.notes          # in particular, no check in the one-piece format


# One chapter is enough here: that every chapter's solutions pass is the instructor test, and the
# tampering rules do not depend on the chapter (the mini book tests them too); each chapter graded is
# a whole chapter executed.
@pytest.mark.parametrize("chapter", CHAPTERS[:1])
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
    report = assignments.grade(path, book=BOOK, chapter=chapter)
    by = {q.exercise: q for q in report.questions}
    assert by[first].points == by[first].max_points > 0, assignments.format_report(report)
    assert by[questions[1]].points == 0
    assert by[third].points == 0 and "edited or deleted" in by[third].reason
    assert report.total == by[first].max_points
    assert path.read_bytes() == before
