"""A class's worth of submissions (theorylab.course): a folder graded in parallel into a gradebook,
feedback per student and a summary; grading against a release even after the book changed; locked
visible checks; the public book without answers; the nbgrader export through nbgrader itself."""

from __future__ import annotations

import copy
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from test_assignments import MINI, code_cells, solution_cells

from theorylab import assignments, cli, course
from theorylab.assignments import AssignmentError

DUE = "2027-01-15T23:59:00+00:00"


@pytest.fixture
def released(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-mini.md").write_text(MINI)
    out = tmp_path / "release"
    assignments.release(assignments.find_chapters(book), out, due=DUE)
    return book, out


def answer(nb, exercise: str, source: str):
    for cell in solution_cells(nb):
        if cell.metadata["theorylab"]["exercise"] == exercise:
            cell.source = source
    return nb


def class_of_twelve(release: Path, folder: Path) -> Path:
    """Twelve students: right, wrong, partly right, missing, late, broken, tampered. Returns the roster."""
    folder.mkdir()
    student = nbformat.read(release / "student" / "01-mini.ipynb", 4)
    instructor = nbformat.read(release / "instructor" / "01-mini.ipynb", 4)
    right = copy.deepcopy(student)
    for cell, solved in zip(solution_cells(right), solution_cells(instructor), strict=True):
        cell.source = solved.source
    submissions = {
        "alice": right, "bob": right, "carol": right,                        # right
        "dave": student,                                                     # untouched stubs
        "erin": answer(copy.deepcopy(right), "ex-add", "def add(a, b):\n    return a - b\n"),   # wrong
        "frank": answer(copy.deepcopy(right), "ex-double", "answer = 3\n"),  # one of two right
        "ivan": right,                                                       # late
        "kate": copy.deepcopy(right),                                        # tampered visible check
        "leo": answer(copy.deepcopy(right), "ex-add", "def add(a, b) return a\n"),   # syntax error
    }
    visible = next(c for c in code_cells(submissions["kate"])
                   if c.metadata.get("theorylab", {}).get("kind") == "exercise-test")
    visible.source = visible.source.replace("== 3", ">= 0")
    for name, nb in submissions.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "judy.ipynb").write_text("this is not a notebook")                # broken
    due = time.mktime(time.strptime("2027-01-15", "%Y-%m-%d"))
    for path in folder.glob("*.ipynb"):
        os.utime(path, (due - 86400, due - 86400))                            # a day early
    os.utime(folder / "ivan.ipynb", (due + 3 * 86400, due + 3 * 86400))       # three days late
    roster = folder.parent / "roster.csv"
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy", "kate", "leo"]
    roster.write_text("student\n" + "\n".join(names) + "\n")
    return roster


def read_grades(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def test_a_class_of_twelve_graded_with_two_jobs(released, tmp_path):
    _, release = released
    roster = class_of_twelve(release, tmp_path / "submissions")
    out = tmp_path / "graded"
    started = time.perf_counter()
    results = course.grade_folder(tmp_path / "submissions", chapter="01", release=release, jobs=2,
                                  roster=roster, out=out, timeout=120)
    seconds = time.perf_counter() - started
    assert [r.student for r in results][:3] == ["alice", "bob", "carol"] and len(results) == 12
    grades = read_grades(out / "grades.csv")
    expected = {  # student: (status, ex-add, ex-double, total)
        "alice": ("graded", 3, 2, 5), "bob": ("graded", 3, 2, 5), "carol": ("graded", 3, 2, 5),
        "dave": ("graded", 0, 0, 0), "erin": ("graded", 0, 2, 2), "frank": ("graded", 3, 0, 3),
        "gina": ("missing", 0, 0, 0), "hank": ("missing", 0, 0, 0), "ivan": ("late", 3, 2, 5),
        "judy": ("error", 0, 0, 0), "kate": ("graded", 0, 2, 2), "leo": ("graded", 0, 2, 2)}
    got = {s: (r["status"], int(r["ex-add"]), int(r["ex-double"]), int(r["total"]))
           for s, r in grades.items()}
    assert got == expected
    assert all(r["max_total"] == "5" for r in grades.values())

    erin = (out / "feedback" / "erin.md").read_text()
    assert "add(1, 2) should be 3" in erin and "hidden check (2 points): failed" in erin
    assert "add(10, -4)" not in erin            # a hidden check's message is not shown
    assert "edited or deleted" in (out / "feedback" / "kate.md").read_text()
    assert "No submission" in (out / "feedback" / "gina.md").read_text()
    assert "not a readable Jupyter notebook" in (out / "feedback" / "judy.md").read_text()
    assert "after the due date" in (out / "feedback" / "ivan.md").read_text()
    assert (out / "reports" / "alice.json").is_file() and not (out / "reports" / "gina.json").exists()

    stats = {s["exercise"]: s for s in course.question_statistics(results, ["ex-add", "ex-double"])}
    assert stats["ex-add"]["graded"] == 9 and stats["ex-add"]["pass_rate"] == pytest.approx(5 / 9)
    assert stats["ex-double"]["mean"] == pytest.approx(14 / 9)
    summary = (out / "summary.md").read_text()
    assert "8 graded · 1 late · 2 missing · 1 error" in summary
    print(f"12 submissions, 2 jobs: {seconds:.1f} s")


def test_grading_uses_the_release_even_after_the_book_changed(released, tmp_path):
    book, release = released
    (book / "01-mini.md").write_text(MINI.replace("assert answers[\"three\"] == 3", "assert False"))
    instructor = release / "instructor" / "01-mini.ipynb"
    assert assignments.grade(instructor, chapter="01", book=book).total < 5         # the edited book
    folder = tmp_path / "one"
    folder.mkdir()
    nbformat.write(nbformat.read(instructor, 4), folder / "alice.ipynb")
    results = course.grade_folder(folder, chapter="01", release=release, out=tmp_path / "g")
    assert results[0].report["total"] == 5                                           # the release
    (release / "source" / "01-mini.md").write_text("tampered")
    with pytest.raises(AssignmentError, match="differs from the release"):
        course.grade_folder(folder, chapter="01", release=release, out=tmp_path / "g")


def test_release_manifest_and_locked_visible_checks(released):
    _, release = released
    manifest = assignments.read_manifest(release)
    assert manifest["due"] == DUE and manifest["chapters"][0]["points"] == 5
    assert manifest["chapters"][0]["questions"][0] == {"exercise": "ex-add", "points": 3, "visible": 1,
                                                       "hidden": 2}
    student = nbformat.read(release / "student" / "01-mini.ipynb", 4)
    visible = [c for c in code_cells(student)
               if c.metadata.get("theorylab", {}).get("kind") == "exercise-test"]
    assert visible and all(c.metadata["editable"] is False and c.metadata["deletable"] is False
                           for c in visible)
    with pytest.raises(AssignmentError, match="ISO 8601"):
        assignments.release([], release, due="next friday")


def test_bad_folders_and_arguments_are_refused(tmp_path):
    with pytest.raises(AssignmentError, match="not a folder"):
        course.find_submissions(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssignmentError, match="no submissions"):
        course.find_submissions(tmp_path / "empty")
    with pytest.raises(AssignmentError, match="jobs must be a positive integer"):
        course.grade_folder(tmp_path / "empty", chapter="01", out=tmp_path / "o", jobs=0)
    (tmp_path / "roster.csv").write_text("name\nx\n")
    with pytest.raises(AssignmentError, match="'student' column"):
        course.read_roster(tmp_path / "roster.csv", tmp_path)


def test_cli_grades_a_folder(released, tmp_path, capsys):
    _, release = released
    folder = tmp_path / "subs"
    folder.mkdir()
    nbformat.write(nbformat.read(release / "instructor" / "01-mini.ipynb", 4), folder / "alice.ipynb")
    assert cli.main(["assignments", "grade", str(folder), "--chapter", "01", "--release", str(release)]) == 0
    assert "| ex-add | 3.00 | 3 | 100% |" in capsys.readouterr().out
    assert read_grades(folder / "graded" / "grades.csv")["alice"]["total"] == "5"


def test_public_book_has_no_answers(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-mini.md").write_text(MINI)
    (book / "intro.md").write_text("# Intro\n")
    out = course.public_book(book, tmp_path / "public")
    text = (out / "01-mini.md").read_text()
    assert "return a + b" not in text and "base * 2" not in text and "Add them." not in text
    assert "add(10, -4)" not in text and "exercise-hidden-test" not in text
    assert "NotImplementedError" in text and "add(1, 2) should be 3" in text
    nb = jupytext.read(out / "01-mini.md")
    tagged = [c for c in nb.cells if "skip-execution" in c.metadata.get("tags", [])]
    assert len(tagged) == 4      # two stubs, two visible checks
    assert (out / "intro.md").read_text() == "# Intro\n"
    with pytest.raises(AssignmentError, match="another folder"):
        course.public_book(book, book)


def test_nbgrader_export_passes_nbgraders_generate_assignment(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-mini.md").write_text(MINI)
    course_dir = tmp_path / "course"
    assert cli.main(["assignments", "export", "--format", "nbgrader", "--book", str(book),
                     "--out", str(course_dir)]) == 0
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "generate_assignment", "01-mini",
                           f"--CourseDirectory.root={course_dir}", "--force"],
                          cwd=course_dir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    released = nbformat.read(course_dir / "release" / "01-mini" / "01-mini.ipynb", 4)
    sources = "\n".join(c.source for c in released.cells)
    assert "return a + b" not in sources and "YOUR CODE HERE" in sources
    assert "add(10, -4)" not in sources and "add(1, 2) should be 3" in sources
    graded = [c.metadata["nbgrader"] for c in released.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert sorted(m["points"] for m in graded) == [1, 2, 2]


def test_the_public_book_builds_and_executes_with_mystmd(tmp_path):
    """What `BOOK_PUBLIC=1 make book` builds: the stubs and visible checks are not executed
    (skip-execution), so the public chapter executes without an error."""
    import json
    import shutil

    book = tmp_path / "book"
    book.mkdir()
    (book / "01-mini.md").write_text(MINI)
    public = course.public_book(book, tmp_path / "site" / "book")
    (tmp_path / "site" / "myst.yml").write_text(
        "version: 1\nproject:\n  title: mini\n  toc:\n    - file: book/01-mini.md\n"
        "site:\n  template: book-theme\n")      # the content is built even when the theme cannot be fetched
    myst = Path(sys.executable).parent / "myst"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("TRITON_INTERPRET", None)
    import signal

    process = subprocess.Popen([str(myst), "build", "--execute"], cwd=tmp_path / "site", env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        try:  # mystmd can leave its Jupyter server running
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    pages = list((tmp_path / "site" / "_build" / "site" / "content").glob("*.json"))
    assert pages, output[-3000:]
    page = json.dumps(json.loads(pages[0].read_text()))
    assert '"ename"' not in page and "the end" in page          # ran to the last cell, no error
    assert "return a + b" not in page and "add(10, -4)" not in page
    shutil.rmtree(public)
