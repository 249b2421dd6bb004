"""The chapters' code is linted like the library's: pyflakes (undefined or unused names, f-strings
without placeholders…) and bugbear (zip without strict=, loop variables that shadow…), on the code a
reader runs. A check's second half runs in the grader's own process, so it is linted as a program of
its own (its re-imports are not redefinitions). Notebook idioms are allowed: a bare expression that
displays a value (B018) and imports below the first cell (E402)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from theorylab import assignments, chapters

ROOT = Path(__file__).resolve().parents[1]
RUFF = [sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "110",
        "--select", "F,E9,B", "--ignore", "B018", "--output-format", "concise"]
CHAPTERS = [path.name for path in chapters.find_chapters(ROOT / "book")]


def ruff(source: str, name: str) -> list[str]:
    done = subprocess.run([*RUFF, "--stdin-filename", name, "-"], input=source, capture_output=True,
                          text=True, timeout=120)
    return [line for line in done.stdout.splitlines() if line.startswith(name)]


def programs(path: Path) -> tuple[str, list[str]]:
    """The chapter's code as the reader's kernel runs it (checks' first halves in place), and the
    checks' second halves, each on its own."""
    nb = jupytext.read(path)
    main, halves = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        source = "\n".join(lines)
        if assignments.CHECK_LINE.search(source):
            first, second = assignments.CHECK_LINE.split(source, maxsplit=1)
            main.append(first)
            halves.append("answers: dict = {}  # given by the grader\n" + second)
        else:
            main.append(source)
    return "\n\n".join(main) + "\n", halves


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_code_is_clean(chapter):
    main, halves = programs(ROOT / "book" / chapter)
    problems = ruff(main, f"{Path(chapter).stem}.py")
    for k, half in enumerate(halves):
        problems += ruff(half, f"{Path(chapter).stem}-check-{k + 1}.py")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_proofs_are_not_numbered(chapter):
    """A proof belongs to the result above it: the book titles it "Proof", not "Proof 3" (mystmd numbers
    every ``prf:`` block unless told not to)."""
    lines = (ROOT / "book" / chapter).read_text(encoding="utf-8").splitlines()
    numbered = [number for number, line in enumerate(lines, start=1) if line.strip() == ":::{prf:proof}"
                and not any(option.strip() in (":nonumber:", ":enumerated: false")
                            for option in lines[number:number + 4] if option.strip().startswith(":"))]
    assert not numbered, f"proofs without :nonumber: at lines {numbered}"
