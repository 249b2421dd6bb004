"""Each chapter is executed once per test run: nbval's run of it is saved (only if every cell passed)
and the other consumers read it through the ``executed_chapter`` fixture (root conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import conftest  # noqa: E402  (the root conftest, for its helpers)
from theorylab.answers import LOG_VARIABLE, read_log  # noqa: E402

TINY = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3 (theorylab)
  language: python
  name: python3
---

# Tiny

```{{code-cell}} ipython3
print("hello", {value})
```

```{{code-cell}} ipython3
from theorylab.answers import collect
answers = collect(value={value}, twice=[{value}, 2 * {value}])
from theorylab.claims import check
check("tiny.value", {value}, {value}, kind="identity", atol=1e-12, statement="the value is itself")
```
"""


def write_chapter(folder: Path, name: str, value) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(TINY.format(value=value))
    return path


def outputs(path: Path) -> list:
    nb = nbformat.read(str(path), as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_nbval_saves_a_run_in_which_every_cell_passed_and_nothing_else(tmp_path):
    # Under the repository, so that the root conftest collects it as a chapter.
    folder = ROOT / "_build" / "test-shared" / tmp_path.name
    good = write_chapter(folder, "97-good.md", 1)
    bad = write_chapter(folder, "98-bad.md", "undefined_name")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", str(good), str(bad)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "2 failed, 2 passed" in result.stdout, result.stdout[-2000:]
    saved = conftest.saved_execution(good)
    assert saved.exists() and outputs(saved)[0]["text"] == "hello 1\n"
    recorded = read_log(conftest.saved_answers(good))       # the answers the run collected, in order
    assert len(recorded) == 1 and recorded[0]["value"] == 1 and recorded[0]["twice"].tolist() == [1, 2]
    claims = [json.loads(line) for line in conftest.saved_claims(good).read_text().splitlines()]
    assert [(c["id"], c["passed"]) for c in claims] == [("tiny.value", True)]
    assert not conftest.saved_execution(bad).exists()
    for path in (saved, conftest.saved_answers(good), conftest.saved_claims(good)):
        path.unlink()


def test_a_consumer_reuses_a_saved_run_and_executes_when_none_is_saved(tmp_path, executed_chapter):
    folder = ROOT / "_build" / "test-shared" / tmp_path.name
    chapter = write_chapter(folder, "96-tiny.md", 2)
    assert not conftest.saved_execution(chapter).exists()
    first = executed_chapter(chapter)                       # nothing saved: executes it
    assert outputs(first)[0]["text"] == "hello 2\n"
    assert read_log(conftest.saved_answers(chapter))[0]["value"] == 2
    assert "tiny.value" in conftest.saved_claims(chapter).read_text()   # recorded by the fallback too
    stamp = first.stat().st_mtime_ns
    assert executed_chapter(chapter) == first and first.stat().st_mtime_ns == stamp   # reused
    write_chapter(folder, "96-tiny.md", 3)                  # another source, another key
    second = executed_chapter(chapter)
    assert second != first and not first.exists() and outputs(second)[0]["text"] == "hello 3\n"
    assert read_log(conftest.saved_answers(chapter))[0]["value"] == 3
    for path in (second, conftest.saved_answers(chapter), conftest.saved_claims(chapter)):
        path.unlink()


def test_the_answers_log_variable_is_the_one_theorylab_reads():
    assert conftest.ANSWERS_LOG == LOG_VARIABLE
