"""A class's worth of submissions: grade a folder, a gradebook, feedback per student, exports.

    theorylab assignments grade SUBMISSIONS/ --chapter 01 [--release DIR] [--jobs N] [--roster CSV]
                                            [--due ISO] [--out DIR] [--timeout S]
    theorylab assignments export --format nbgrader [CHAPTER ...] [--book DIR] [--out DIR]
    theorylab assignments public-book [--book DIR] [--out DIR]

Grading a folder grades every ``*.ipynb`` in it (the file's stem is the student's id, or a roster CSV
with columns ``student`` and, optionally, ``file`` maps ids to files) with :func:`assignments.grade`,
``jobs`` at a time, each under its own time limit, and writes into ``OUT/``:

* ``grades.csv``: one row per student (roster order, else by id): ``status`` (``graded``, ``late``,
  ``missing`` or ``error``), the points of each question, ``total``, ``max_total``, ``seconds``;
* ``feedback/<student>.md``: each question, its points and, for each failed check, the reason written
  for students (a hidden check only says that it failed: its message could give the answer away);
* ``reports/<student>.json``: the grader's full report;
* ``summary.md``: per question, the mean points, the pass rate and the most common failure (also
  printed).

With ``--release DIR`` (a folder written by ``theorylab assignments release``) the chapter is read from
the release's own copy, checked against the hash in its manifest, so a book edited after the release
changes nobody's grade, and the manifest's due date applies unless ``--due`` is given. A submission
whose file was modified after the due date is graded and marked ``late``.
"""

from __future__ import annotations

import copy
import csv
import json
import multiprocessing
import os
import re
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jupytext
import nbformat

from . import assignments
from .assignments import HIDDEN, SOLUTION, TEST, AssignmentError

STATUSES = ("graded", "late", "missing", "error")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@-]+")


@dataclass
class StudentResult:
    student: str
    status: str                       # one of STATUSES
    submission: str = ""
    report: dict | None = None        # assignments.Report.to_dict(), for graded and late
    error: str = ""
    points: dict = field(default_factory=dict)   # exercise label -> points


def student_id(text: str) -> str:
    """A file-system-safe student id (letters, digits, ``_.@-``)."""
    cleaned = _SAFE_ID.sub("_", text).strip("._")
    if not cleaned:
        raise AssignmentError(f"cannot make a student id from {text!r}")
    return cleaned


def read_roster(path: Path, folder: Path) -> dict[str, Path | None]:
    """Roster CSV (columns ``student`` and optional ``file``) -> {id: submission path or None}."""
    path = Path(path)
    if not path.is_file():
        raise AssignmentError(f"roster {path} does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "student" not in rows[0]:
        raise AssignmentError(f"roster {path} needs a header with a 'student' column (and optionally 'file')")
    roster: dict[str, Path | None] = {}
    for row in rows:
        sid = student_id(row["student"])
        if sid in roster:
            raise AssignmentError(f"roster {path} lists student {sid!r} twice")
        name = (row.get("file") or f"{row['student']}.ipynb").strip()
        candidate = folder / name
        roster[sid] = candidate if candidate.is_file() else None
    return roster


def find_submissions(folder: Path, roster: Path | None = None) -> dict[str, Path | None]:
    folder = Path(folder)
    if not folder.is_dir():
        raise AssignmentError(f"{folder} is not a folder of submissions")
    if roster is not None:
        return read_roster(roster, folder)
    found: dict[str, Path | None] = {}
    for path in sorted(folder.glob("*.ipynb")):
        sid = student_id(path.stem)
        if sid in found:
            raise AssignmentError(f"two submissions map to student id {sid!r}: rename one")
        found[sid] = path
    if not found:
        raise AssignmentError(f"no submissions (*.ipynb) in {folder}")
    return found


def _grade_one(job: tuple) -> tuple[str, dict | None, str]:
    """Worker: grade one submission; (student, report dict or None, error message)."""
    student, submission, chapter, book, timeout = job
    try:
        report = assignments.grade(Path(submission), chapter=chapter, book=Path(book), timeout=timeout)
        return student, report.to_dict(), ""
    except AssignmentError as exc:
        return student, None, str(exc)[:assignments.MAX_REASON]
    except Exception as exc:  # noqa: BLE001 - one student's broken file must not stop the class
        return student, None, f"{type(exc).__name__}: {str(exc)[:200]}"


def grade_folder(folder: Path, *, chapter: str, out: Path, book: Path = Path("book"),
                 release: Path | None = None, jobs: int = 1, roster: Path | None = None,
                 due: str | None = None, timeout: int = 600) -> list[StudentResult]:
    """Grade every submission in ``folder`` (see the module docstring); returns one result per student."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise AssignmentError(f"jobs must be a positive integer, got {jobs!r}")
    if release is not None:
        manifest = assignments.read_manifest(release)
        book = Path(release) / "source"
        due = due if due is not None else manifest.get("due")
    chapter_path = assignments.find_chapters(book, [chapter])[0]
    _, exercises = assignments.read_chapter(chapter_path)
    deadline = assignments.parse_due(due) if due else None
    submissions = find_submissions(folder, roster)

    results = {sid: StudentResult(sid, "missing") for sid, path in submissions.items() if path is None}
    work = [(sid, str(path), chapter_path.stem, str(book), timeout)
            for sid, path in submissions.items() if path is not None]
    if jobs == 1 or len(work) <= 1:
        outcomes = [_grade_one(job) for job in work]
    else:
        # spawn, not fork: the caller may hold threads (a Jupyter kernel, pytest) that fork would copy
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            outcomes = list(pool.map(_grade_one, work))
    for (sid, submission, *_), (_, report, error) in zip(work, outcomes, strict=True):
        result = StudentResult(sid, "error" if report is None else "graded", submission, report, error)
        if report is not None:
            result.points = {q["exercise"]: q["points"] for q in report["questions"]}
            if deadline is not None:
                modified = datetime.fromtimestamp(os.path.getmtime(submission)).astimezone()
                if modified > deadline:
                    result.status = "late"
        results[sid] = result
    ordered = [results[sid] for sid in submissions]
    write_outputs(ordered, [e.label for e in exercises], sum(e.points for e in exercises), Path(out))
    return ordered


# ----------------------------------------------------------------------------------------------
# Gradebook, feedback, summary
# ----------------------------------------------------------------------------------------------

def write_outputs(results: list[StudentResult], questions: list[str], max_total: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    (out / "reports").mkdir(exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "status", *questions, "total", "max_total", "seconds"])
        for r in results:
            points = [r.points.get(q, 0) for q in questions]
            seconds = f"{r.report['seconds']:.1f}" if r.report else ""
            writer.writerow([r.student, r.status, *points, sum(points), max_total, seconds])
    for r in results:
        text = feedback(r, questions, max_total)
        (out / "feedback" / f"{r.student}.md").write_text(text, encoding="utf-8")
        if r.report is not None:
            report = json.dumps(r.report, indent=1)
            (out / "reports" / f"{r.student}.json").write_text(report, encoding="utf-8")
    (out / "summary.md").write_text(summary_table(results, questions) + "\n", encoding="utf-8")


def feedback(result: StudentResult, questions: list[str], max_total: int) -> str:
    """The student's feedback in Markdown."""
    total = sum(result.points.get(q, 0) for q in questions)
    lines = [f"# Feedback for {result.student}", ""]
    if result.status == "missing":
        return "\n".join(lines + ["No submission was received.", ""])
    if result.status == "error":
        return "\n".join(lines + [f"Your submission could not be graded: {result.error}", ""])
    chapter = result.report["chapter"]
    late = " (submitted after the due date)" if result.status == "late" else ""
    lines += [f"Chapter {chapter}: **{total} / {max_total}** points{late}.", ""]
    for q in result.report["questions"]:
        lines.append(f"## {q['exercise']}: {q['points']} / {q['max_points']}")
        lines.append("")
        if q["reason"]:
            lines.append(f"- {q['reason']}")
        for t in q["tests"]:
            what = "hidden check" if t["kind"] == HIDDEN else "visible check"
            if t["passed"]:
                lines.append(f"- {what} ({t['points']} points): passed")
            elif t["kind"] == HIDDEN:
                lines.append(f"- {what} ({t['points']} points): failed (it tries cases beyond the visible "
                             "check; run your code on a few more inputs)")
            else:
                lines.append(f"- {what} ({t['points']} points): failed: {t['reason'] or 'no reason given'}")
        lines.append("")
    if result.report["notes"]:
        lines += ["## Notes", ""] + [f"- {note}" for note in result.report["notes"]] + [""]
    return "\n".join(lines)


def question_statistics(results: list[StudentResult], questions: list[str]) -> list[dict]:
    """Per question over the graded (and late) submissions: mean points, pass rate (full points) and
    the most common reason for a failed check."""
    graded = [r for r in results if r.report is not None]
    stats = []
    for label in questions:
        rows = [q for r in graded for q in r.report["questions"] if q["exercise"] == label]
        reasons = Counter()
        for q in rows:
            if q["reason"]:
                reasons[q["reason"]] += 1
            for t in q["tests"]:
                if not t["passed"]:
                    hidden = t["kind"] == HIDDEN
                    reasons["a hidden check failed" if hidden else (t["reason"] or "failed")] += 1
        common = reasons.most_common(1)
        n = len(rows) or float("nan")
        stats.append({
            "exercise": label, "graded": len(rows),
            "mean": sum(q["points"] for q in rows) / n,
            "max_points": rows[0]["max_points"] if rows else 0,
            "pass_rate": sum(q["points"] == q["max_points"] for q in rows) / n,
            "common_failure": f"{common[0][0]} ({common[0][1]}×)" if common else "",
        })
    return stats


def summary_table(results: list[StudentResult], questions: list[str]) -> str:
    counts = Counter(r.status for r in results)
    lines = [" · ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES), "",
             "| question | mean | of | pass rate | most common failure |", "|---|---:|---:|---:|---|"]
    for s in question_statistics(results, questions):
        reason = s["common_failure"].replace("|", "/")[:90]
        lines.append(f"| {s['exercise']} | {s['mean']:.2f} | {s['max_points']} | {s['pass_rate']:.0%} "
                     f"| {reason} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# nbgrader export and the public book
# ----------------------------------------------------------------------------------------------

def _nbgrader(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def to_nbgrader(chapter_path: Path):
    """The chapter as an nbgrader *source* notebook: solution cells become autograded answers (their body
    between ``### BEGIN SOLUTION`` and ``### END SOLUTION``), each check an autograder-tests cell with its
    points (a hidden check's body between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``), and
    the written ``{solution}`` blocks of the text are left out. nbgrader's ``generate_assignment`` makes
    the student version from it; its autograder runs each check whole in the student's kernel (both
    halves), without this grader's protections."""
    nb = jupytext.read(chapter_path)
    out = copy.deepcopy(nb)
    cells, counts = [], Counter()
    for cell in out.cells:
        kind = assignments.cell_kind(cell) if cell.cell_type == "code" else None
        if cell.cell_type == "markdown":
            cell.source = assignments._strip_solution_blocks(cell.source)
        elif kind == SOLUTION:
            label = assignments._tag_value(cell, "exercise") or "answer"
            counts[label] += 1
            cell.source = f"### BEGIN SOLUTION\n{cell.source.rstrip()}\n### END SOLUTION\n"
            cell.metadata["nbgrader"] = _nbgrader(f"{label}-answer-{counts[label]}", solution=True)
        elif kind in (TEST, HIDDEN):
            label = assignments._tag_value(cell, "exercise")
            points = int(assignments._tag_value(cell, "points"))
            counts[label + kind] += 1
            suffix = "hidden" if kind == HIDDEN else "visible"
            if kind == HIDDEN:
                cell.source = f"### BEGIN HIDDEN TESTS\n{cell.source.rstrip()}\n### END HIDDEN TESTS\n"
            cell.metadata["nbgrader"] = _nbgrader(f"{label}-{suffix}-{counts[label + kind]}", grade=True,
                                                  locked=True, points=points)
        cells.append(cell)
    out.cells = cells
    out.metadata.pop("jupytext", None)
    nbformat.validator.normalize(out)
    return out


def export_nbgrader(chapter_paths: list[Path], out: Path) -> list[Path]:
    """Write ``OUT/source/<chapter>/<chapter>.ipynb`` (nbgrader's course layout: one assignment per
    chapter with exercises) and return the notebooks written."""
    written = []
    for path in chapter_paths:
        if not assignments.read_chapter(path)[1]:
            continue
        folder = Path(out) / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{path.stem}.ipynb"
        nbformat.write(to_nbgrader(path), target)
        written.append(target)
    return written


def public_chapter(text: str) -> str:
    """A chapter's MyST source without its answers: the written ``{solution}`` blocks removed, solution
    cells replaced by their stubs, hidden checks removed, and the stubs and visible checks tagged
    ``skip-execution`` (a stub raises, so its checks would fail)."""
    nb = jupytext.reads(text, fmt="md:myst")
    cells = []
    for cell in nb.cells:
        kind = assignments.cell_kind(cell) if cell.cell_type == "code" else None
        if kind == HIDDEN:
            continue
        if cell.cell_type == "markdown":
            cell.source = assignments._strip_solution_blocks(cell.source)
        if kind == SOLUTION:
            label = assignments._exercise_of_solution(cell, nb.cells, nb.cells.index(cell))
            cell.source = assignments.stub_source(cell.source, label)
        if kind in (SOLUTION, TEST):
            cell.metadata.setdefault("tags", []).append("skip-execution")
        cells.append(cell)
    nb.cells = cells
    return jupytext.writes(nb, fmt="md:myst")


def public_book(book: Path, out: Path) -> Path:
    """Copy ``book`` to ``out`` with every chapter made public (:func:`public_chapter`); other files are
    copied as they are. Returns ``out``."""
    book, out = Path(book), Path(out)
    if out.resolve() == book.resolve():
        raise AssignmentError("the public book must be written to another folder than the book")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(book, out)
    for path in assignments.find_chapters(out):
        path.write_text(public_chapter(path.read_text(encoding="utf-8")), encoding="utf-8")
    return out
