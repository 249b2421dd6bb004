"""The second halves of exercise checks, run in a fresh process of the grader's own.

    python -m theorylab.verify JOB.json RESULTS.json

``JOB.json`` lists ``{"name", "source", "answers"}`` items: the check's name, the source of its second
half, and the path of the answers file written by :func:`theorylab.answers.dump`. Each second half runs
with ``answers`` loaded from that file and nothing else of the student's; ``RESULTS.json`` receives one
``[passed, reason]`` pair per item. The grader starts this as a new Python process, so nothing the
student's kernel did, and nothing of the process that grades (a test runner, Triton's interpreter), can
change what the checks compute.
"""

from __future__ import annotations

import json
import sys

from .answers import load

MAX_REASON = 300


def run_check(name: str, source: str, values: dict) -> tuple[bool, str]:
    """Run one second half on ``values``; ``(passed, reason)``, the reason written for the student."""
    namespace = {"answers": values, "__name__": "theorylab_check"}
    try:
        exec(compile(source, f"<check of {name}>", "exec"), namespace)  # noqa: S102
    except AssertionError as exc:
        message = str(exc).strip() or "the answer is not right"
        return False, message[:MAX_REASON]
    except Exception as exc:  # the answer has the wrong type or shape, a missing name, ...
        return False, f"{type(exc).__name__} while checking the answer: {str(exc)[:200]}"[:MAX_REASON]
    return True, ""


def main(argv: list[str] | None = None) -> int:
    job_path, results_path = (sys.argv[1:] if argv is None else argv)[:2]
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    results = [run_check(item["name"], item["source"], load(item["answers"])) for item in job]
    with open(results_path, "w", encoding="utf-8") as fh:
        json.dump(results, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
