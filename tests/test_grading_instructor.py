"""The grader on every chapter of the book: the instructor notebook of every chapter gets full marks.

Each grading executes a whole chapter, so these tests live in their own modules, which
`make test`'s two workers (``--dist loadfile``) run in parallel with each other and with the rest.
"""

import pytest
from test_assignments import BOOK, CHAPTERS

from theorylab import assignments


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("released")
    assignments.release(assignments.find_chapters(BOOK), out)
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_instructor_full_marks(released, chapter):
    report = assignments.grade(released / "instructor" / f"{chapter}.ipynb", book=BOOK, chapter=chapter)
    assert report.total == report.max_total > 0, assignments.format_report(report)
