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


CHECKS = {"check", "check_at_most", "check_at_least"}


def builtin_extremes_in_claims(source: str) -> list[str]:
    """Calls of Python's ``max``/``min`` (without ``key=``) whose value a claim checks: inside a check's
    numbers, or assigned to a name that a check's numbers use. Python's ``max(0.0, nan)`` is ``0.0``, so a
    NaN from a diverged run can vanish there and the claim pass; ``claims.largest``/``smallest`` keep it.

    What it does not see: a value two assignments away from the check, checks called as attributes
    (``claims.check``), reductions inside helper functions, ``sorted(...)[-1]``, ``np.nanmax``,
    ``if x > worst`` accumulators, and counts of comparisons (``(x > t).sum()`` counts a NaN as passing
    ``≤ t``; write ``(~(x <= t)).sum()``). Those are left to review."""
    import ast

    tree = ast.parse(source)

    def extremes(node):
        return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                and n.func.id in ("max", "min") and not any(k.arg == "key" for k in n.keywords)]

    checked_nodes, checked_names = [], set()
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in CHECKS:
            numbers = call.args[1:] + [k.value for k in call.keywords if k.arg != "statement"]
            checked_nodes += numbers
            checked_names |= {n.id for node in numbers for n in ast.walk(node) if isinstance(n, ast.Name)}
    found = [n for node in checked_nodes for n in extremes(node)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if names & checked_names:
                found += extremes(node.value)
    return sorted({f"line {n.lineno}: {ast.unparse(n)[:80]}" for n in found})


def test_builtin_extremes_in_claims_are_found():
    source = ("from math import nan\nworst = max(0.0, nan)\ncheck_at_most('a.b', worst, 1, statement='s')\n"
              "check('a.c', min(1.0, 2.0), 1.0, rtol=0.1, kind='identity', statement=f'{max(1, 2)}')\n"
              "best = max(runs, key=len)\nfine = max(1, 2)\nprint(fine, best)\n")
    assert builtin_extremes_in_claims(source) == ["line 2: max(0.0, nan)", "line 4: min(1.0, 2.0)"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_claims_do_not_reduce_with_python_max(chapter):
    main, _ = programs(ROOT / "book" / chapter)
    found = builtin_extremes_in_claims(main)
    assert not found, ("a claim's number comes from Python's max/min, which drops a NaN that is not first; "
                       "use theorylab.claims.largest/smallest:\n" + "\n".join(found))
