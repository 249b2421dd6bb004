"""The grader on every chapter of the book: the book's solutions earn full marks.

For every chapter, the grader's own checks (the second halves, in a fresh process, as ``grade`` runs
them) are applied to the answers the book's solutions gave in the test run's one execution of the
chapter (nbval's, shared through the root conftest's ``chapter_answers``), and the released
instructor notebook is checked to hold exactly the book's code. One chapter is also graded end to end,
its instructor notebook executed by the grader (chapter 1 is graded end to end in
test_grading_students, partly answered and tampered with; every chapter's student notebook is too).
"""

import nbformat
import pytest
from test_assignments import BOOK, CHAPTERS, code_cells

from theorylab import assignments


def _checks_in_order(chapter: str) -> list[assignments.TestCell]:
    _, exercises = assignments.read_chapter(BOOK / f"{chapter}.md")
    return sorted((test for exercise in exercises for test in exercise.tests), key=lambda test: test.index)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_book_solutions_pass_every_check_in_the_graders_process(chapter, chapter_answers):
    checks = _checks_in_order(chapter)
    assert checks and all(check.two_halves for check in checks)
    collected = chapter_answers(BOOK / f"{chapter}.md")
    assert len(collected) == len(checks), (
        f"{len(collected)} answers collected for {len(checks)} checks: a check cell must call collect() once")
    verdicts = assignments.verify_answers(list(zip(checks, collected, strict=True)))
    failed = [f"{check.exercise} ({check.kind}, cell {check.index}): {reason}"
              for check, (passed, reason) in zip(checks, verdicts, strict=True) if not passed]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_instructor_notebook_holds_the_books_code(released, chapter):
    book, _ = assignments.read_chapter(BOOK / f"{chapter}.md")
    instructor = nbformat.read(released / "instructor" / f"{chapter}.ipynb", 4)
    assert [c.source for c in code_cells(instructor)] == [c.source for c in code_cells(book)]


# End to end for one chapter: the one the grader runs fastest (see the module docstring).
@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c.startswith("02-")])
def test_chapter_instructor_full_marks(released, chapter):
    report = assignments.grade(released / "instructor" / f"{chapter}.ipynb", book=BOOK, chapter=chapter)
    assert report.total == report.max_total > 0, assignments.format_report(report)
