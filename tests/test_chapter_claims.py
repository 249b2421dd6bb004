"""The claims a chapter made in the test run's one execution of it (nbval's, shared through the root
conftest's ``chapter_claims``): every claim passed, ids are unique, and a chapter that states how many
claims it makes (``N_CLAIMS = <n>``, used for its Bonferroni thresholds) states the number it makes.

A typed count is what a released notebook can use (it cannot read the book's source); this test keeps
it true."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from theorylab import chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [path.name for path in chapters.find_chapters(ROOT / "book")]
TYPED_COUNT = re.compile(r"^N_CLAIMS\s*=\s*(\d+)\b", re.M)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_claims_pass_are_unique_and_counted_as_the_chapter_says(chapter, chapter_claims):
    claims = chapter_claims(ROOT / "book" / chapter)
    assert claims, f"{chapter} made no claim"
    failed = [c["id"] for c in claims if not c["passed"]]
    assert not failed, f"{chapter}: failed claims {failed}"
    repeated = [name for name, count in Counter(c["id"] for c in claims).items() if count > 1]
    assert not repeated, f"{chapter}: claim ids made more than once: {repeated}"
    typed = TYPED_COUNT.search((ROOT / "book" / chapter).read_text(encoding="utf-8"))
    if typed:
        assert int(typed.group(1)) == len(claims), (
            f"{chapter} says N_CLAIMS = {typed.group(1)} but made {len(claims)} claims at this scale")
