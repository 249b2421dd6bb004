"""The ``theorylab`` command.

    theorylab assignments release [CHAPTER ...] [--out DIR] [--book DIR] [--due ISO]
    theorylab assignments grade SUBMISSION.ipynb --chapter CHAPTER [--book DIR | --release DIR]
                                [--report FILE] [--timeout S]
    theorylab assignments grade FOLDER/ --chapter CHAPTER [--book DIR | --release DIR] [--jobs N]
                                [--roster CSV] [--due ISO] [--out DIR] [--timeout S]
    theorylab assignments export --format nbgrader [CHAPTER ...] [--book DIR] [--out DIR]
    theorylab assignments public-book [--book DIR] [--out DIR]
    theorylab reproduce [CHAPTER ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import assignments, course


def _release(args) -> int:
    chapters = assignments.find_chapters(args.book, args.chapters)
    summaries = assignments.release(chapters, args.out, due=args.due)
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
    if Path(args.submission).is_dir():
        return _grade_folder(args)
    book = args.book
    if args.release is not None:
        assignments.read_manifest(args.release)
        book = Path(args.release) / "source"
    report = assignments.grade(Path(args.submission), book=book, chapter=args.chapter,
                               timeout=args.timeout)
    print(assignments.format_report(report))
    target = Path(args.report) if args.report else Path(args.submission).with_suffix(".grade.json")
    assignments.write_report(report, target)
    print(f"report: {target}")
    return 0


def _grade_folder(args) -> int:
    out = Path(args.out) if args.out else Path(args.submission) / "graded"
    results = course.grade_folder(Path(args.submission), chapter=args.chapter, out=out, book=args.book,
                                  release=args.release, jobs=args.jobs, roster=args.roster, due=args.due,
                                  timeout=args.timeout)
    questions = [q["exercise"] for r in results if r.report for q in r.report["questions"]]
    print(course.summary_table(results, list(dict.fromkeys(questions))))
    print(f"grades: {out / 'grades.csv'}; feedback: {out / 'feedback'}/; reports: {out / 'reports'}/")
    return 0


def _export(args) -> int:
    if args.format != "nbgrader":
        raise assignments.AssignmentError(f"--format must be nbgrader, got {args.format!r}")
    written = course.export_nbgrader(assignments.find_chapters(args.book, args.chapters), args.out)
    for path in written:
        print(path)
    print(f"nbgrader source notebooks in {Path(args.out) / 'source'} "
          "(run nbgrader generate_assignment there)")
    return 0


def _public_book(args) -> int:
    out = course.public_book(args.book, args.out)
    print(f"the book without solutions or hidden checks: {out}")
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
    rel.add_argument("--due", help="due date-time, ISO 8601 (e.g. 2027-01-15T23:59), kept in the manifest")
    grd = steps.add_parser("grade", help="grade a submitted notebook, or every notebook in a folder")
    grd.add_argument("submission", help="a notebook, or a folder of notebooks (one per student)")
    grd.add_argument("--chapter", required=True,
                     help="chapter the submission answers (stem or number); the notebook's own say is not "
                          "trusted, and a submission released for another chapter is refused")
    grd.add_argument("--book", type=Path, default=Path("book"))
    grd.add_argument("--release", type=Path, default=None,
                     help="a release folder: grade against its copy of the chapter (and its due date)")
    grd.add_argument("--report", help="JSON report path (default: SUBMISSION.grade.json)")
    grd.add_argument("--timeout", type=int, default=600, help="seconds allowed per submission")
    grd.add_argument("--jobs", type=int, default=1, help="submissions graded at once (folder mode)")
    grd.add_argument("--roster", type=Path, default=None,
                     help="CSV with a 'student' column (and optionally 'file'): lists missing submissions")
    grd.add_argument("--due", default=None, help="due date-time, ISO 8601: later files are marked late")
    grd.add_argument("--out", default=None, help="folder for grades.csv, feedback/ and reports/ "
                                                 "(default: FOLDER/graded)")
    exp = steps.add_parser("export", help="export the exercises for another grader")
    exp.add_argument("chapters", nargs="*", help="chapters (stem or number; default: all)")
    exp.add_argument("--format", required=True, help="nbgrader")
    exp.add_argument("--book", type=Path, default=Path("book"))
    exp.add_argument("--out", type=Path, default=Path("_build/nbgrader"))
    pub = steps.add_parser("public-book", help="a copy of the book without solutions or hidden checks")
    pub.add_argument("--book", type=Path, default=Path("book"))
    pub.add_argument("--out", type=Path, default=Path("_build/public-book"))

    args = parser.parse_args(argv)
    if args.command == "reproduce":
        from . import reproduce as reproduce_module
        return reproduce_module.main(args.rest)
    steps_by_name = {"release": _release, "grade": _grade, "export": _export, "public-book": _public_book}
    try:
        return steps_by_name[args.step](args)
    except assignments.AssignmentError as exc:
        print(f"theorylab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
