"""The ``theorylab`` command.

    theorylab assignments release [CHAPTER ...] [--out DIR] [--book DIR]
    theorylab assignments grade SUBMISSION.ipynb --chapter CHAPTER [--book DIR] [--report FILE] [--timeout S]
    theorylab reproduce [CHAPTER ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import assignments


def _release(args) -> int:
    chapters = assignments.find_chapters(args.book, args.chapters)
    summaries = assignments.release(chapters, args.out)
    for summary in summaries:
        total = sum(q["points"] for q in summary["questions"])
        print(f"{summary['chapter']}: {len(summary['questions'])} questions, {total} points")
        for q in summary["questions"]:
            print(f"  {q['exercise']:<28} {q['points']} points "
                  f"({q['visible']} visible, {q['hidden']} hidden)")
    print(f"student notebooks in {Path(args.out) / 'student'}, instructor notebooks in "
          f"{Path(args.out) / 'instructor'}")
    return 0


def _grade(args) -> int:
    report = assignments.grade(Path(args.submission), book=args.book, chapter=args.chapter,
                               timeout=args.timeout)
    print(assignments.format_report(report))
    target = Path(args.report) if args.report else Path(args.submission).with_suffix(".grade.json")
    assignments.write_report(report, target)
    print(f"report: {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="theorylab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    reproduce = commands.add_parser("reproduce", help="execute the chapters and report every claim")
    reproduce.add_argument("rest", nargs=argparse.REMAINDER)

    assign = commands.add_parser("assignments", help="student versions and grading of the exercises")
    steps = assign.add_subparsers(dest="step", required=True)
    rel = steps.add_parser("release", help="write student and instructor notebooks")
    rel.add_argument("chapters", nargs="*", help="chapters (stem or number; default: all)")
    rel.add_argument("--out", type=Path, default=Path("_build/assignments"))
    rel.add_argument("--book", type=Path, default=Path("book"))
    grd = steps.add_parser("grade", help="grade a submitted notebook")
    grd.add_argument("submission")
    grd.add_argument("--chapter", required=True,
                     help="chapter the submission answers (stem or number); the notebook's own say is not "
                          "trusted, and a submission released for another chapter is refused")
    grd.add_argument("--book", type=Path, default=Path("book"))
    grd.add_argument("--report", help="JSON report path (default: SUBMISSION.grade.json)")
    grd.add_argument("--timeout", type=int, default=600, help="seconds allowed for the whole run")

    args = parser.parse_args(argv)
    if args.command == "reproduce":
        from . import reproduce as reproduce_module
        return reproduce_module.main(args.rest)
    try:
        return _release(args) if args.step == "release" else _grade(args)
    except assignments.AssignmentError as exc:
        print(f"theorylab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
