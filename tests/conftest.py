"""Fixtures shared by the test modules (the root conftest.py holds the chapters' shared executions)."""

import pytest
from test_assignments import BOOK

from theorylab import assignments


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Every chapter of the book released (``theorylab assignments release``) into a fresh folder."""
    out = tmp_path_factory.mktemp("released")
    assignments.release(assignments.find_chapters(BOOK), out)
    return out
