"""The grader end to end on a student notebook of the real book: partly answered, partly untouched,
one check tampered with.

That every chapter's untouched student notebook runs to the end and scores 0 is checked statically for
every chapter (tests/test_assignments.py: the stubs break no cell outside the exercises and every check
reads the student's answer), and end to end here on one chapter; that every chapter's solutions get
full marks is tests/test_grading_instructor.py. Each grading executes a whole chapter, so this test
lives in its own module, which `make test`'s two workers (``--dist loadfile``) run in parallel with the
rest.
"""

import nbformat
import pytest
from test_assignments import BOOK, CHAPTERS, code_cells, solution_cells, write

from theorylab import assignments

#: One chapter is enough: the tampering rules do not depend on the chapter (the mini book tests them
#: too), and each chapter graded is a whole chapter executed; this one runs fastest (about 30 s).
END_TO_END = "02-jepa-implicit-bias"


@pytest.mark.parametrize("chapter", [END_TO_END])
def test_chapter_partial_untouched_and_tampered(released, chapter, tmp_path):
    """Question 1 answered right, question 2 untouched (the stub), question 3 answered right but its
    visible test edited: exactly question 1's points; and the notebook runs to the end, no cell outside
    the checks raising."""
    assert chapter in CHAPTERS, f"{chapter} is not a chapter with exercises any more: choose another"
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
    assert all(q.points == 0 for q in report.questions if q.exercise != first)
    assert report.total == by[first].max_points
    ran_cleanly = report.cells_run == report.cells_total and report.cell_errors == []
    assert ran_cleanly, assignments.format_report(report)
    assert report.notes == [], report.notes          # in particular, no check in the one-piece format
    assert path.read_bytes() == before
