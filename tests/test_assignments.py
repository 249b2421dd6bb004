"""Assignments: release and grading.

Behaviour on a tiny book first (fast), then the required matrix on every chapter of the real book:
instructor full marks, untouched student zero (running to the end), one right + one wrong answer, a
tampered test, and files that are not notebooks.
"""

import copy
import json
import textwrap
from pathlib import Path

import nbformat
import pytest
from myst_text import MYST_HEADER

from theorylab import assignments, cli
from theorylab.assignments import AssignmentError

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = [p.stem for p in assignments.find_chapters(BOOK) if assignments.read_chapter(p)[1]]

MINI = MYST_HEADER + textwrap.dedent('''\

    # Mini

    ```{code-cell} ipython3
    from theorylab.answers import collect
    base = 10
    ```

    :::{exercise} Add
    :label: ex-add
    :::

    :::{solution} ex-add
    :class: dropdown
    Add them.
    :::

    ```{code-cell} ipython3
    :tags: [solution]

    def add(a, b):
        """Return a + b."""
        return a + b
    ```

    ```{code-cell} ipython3
    :tags: [exercise-test, exercise=ex-add, points=1]

    answers = collect(three=add(1, 2))
    # -- check
    assert answers["three"] == 3, "add(1, 2) should be 3"
    ```

    ```{code-cell} ipython3
    :tags: [exercise-hidden-test, exercise=ex-add, points=2]

    answers = collect(six=add(base, -4))
    # -- check
    assert answers["six"] == 6, "add(10, -4) should be 6"
    ```

    ```{code-cell} ipython3
    :tags: [solution]

    answer = base * 2
    ```

    ```{code-cell} ipython3
    :tags: [exercise-test, exercise=ex-double, points=2]

    answers = collect(answer=answer)
    # -- check
    assert answers["answer"] == 20, "twice the base is 20"
    ```

    ```{code-cell} ipython3
    print("the end")
    ```
    ''')


@pytest.fixture
def mini(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-mini.md").write_text(MINI)
    out = tmp_path / "out"
    assignments.release(assignments.find_chapters(book), out)
    return book, out


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def write(nb, path):
    nbformat.write(nb, path)
    return path


def solution_cells(nb):
    return [c for c in code_cells(nb) if c.metadata.get("theorylab", {}).get("kind") == "solution"]


def test_release_writes_stubs_and_drops_hidden_tests(mini):
    _, out = mini
    student = nbformat.read(out / "student" / "01-mini.ipynb", 4)
    instructor = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    sources = "\n".join(c.source for c in student.cells)
    assert "raise NotImplementedError" in sources and "return a + b" not in sources
    assert '"""Return a + b."""' in sources and "answer = None" in sources
    assert "add(base, -4)" not in sources and "Add them." not in sources
    assert "add(base, -4)" in "\n".join(c.source for c in instructor.cells)
    assert student.metadata["theorylab"]["chapter"] == "01-mini"


def test_mini_grades(mini, tmp_path):
    book, out = mini
    full = assignments.grade(out / "instructor" / "01-mini.ipynb", book=book, chapter="01")
    assert (full.total, full.max_total) == (5, 5)
    zero = assignments.grade(out / "student" / "01-mini.ipynb", book=book, chapter="01")
    assert zero.total == 0 and zero.cells_run == zero.cells_total and zero.cell_errors == []
    assert all(q.points == 0 for q in zero.questions)


def test_errors_timeouts_and_untouched_files(mini, tmp_path):
    book, out = mini
    nb = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    crashing = copy.deepcopy(nb)
    solution_cells(crashing)[0].source = "def add(a, b):\n    return a + b\nraise RuntimeError('oops')\n"
    path = write(crashing, tmp_path / "crash.ipynb")
    before = path.read_bytes()
    report = assignments.grade(path, book=book, chapter="01")
    assert report.total == 5 and path.read_bytes() == before  # an error in a student cell is not fatal
    assert report.cell_errors == ["code cell 2 raised RuntimeError"]       # ... but it is reported
    assert "error: code cell 2 raised RuntimeError" in assignments.format_report(report)

    slow = copy.deepcopy(nb)
    solution_cells(slow)[1].source = "import time\ntime.sleep(30)\nanswer = 20\n"
    report = assignments.grade(write(slow, tmp_path / "slow.ipynb"), book=book, chapter="01", timeout=4)
    scores = {q.exercise: q.points for q in report.questions}
    assert scores == {"ex-add": 3, "ex-double": 0}
    assert any("time limit" in note for note in report.notes)


def test_tampered_and_deleted_tests_get_no_credit(mini, tmp_path):
    book, out = mini
    nb = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    edited = copy.deepcopy(nb)
    for cell in code_cells(edited):
        if cell.source.startswith("answers = collect(answer="):
            cell.source = "assert True"
    report = assignments.grade(write(edited, tmp_path / "edited.ipynb"), book=book, chapter="01")
    by = {q.exercise: q for q in report.questions}
    assert by["ex-double"].points == 0 and "edited or deleted" in by["ex-double"].reason
    assert by["ex-add"].points == 3
    deleted = copy.deepcopy(nb)
    deleted.cells = [c for c in deleted.cells if "add(1, 2))" not in c.source]
    report = assignments.grade(write(deleted, tmp_path / "deleted.ipynb"), book=book, chapter="01")
    assert {q.exercise: q.points for q in report.questions} == {"ex-add": 0, "ex-double": 2}


def test_not_a_notebook(mini, tmp_path, capsys):
    book, _ = mini
    (tmp_path / "essay.txt").write_text("my answers are in my head")
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    for name in ("essay.txt", "broken.ipynb", "missing.ipynb"):
        with pytest.raises(AssignmentError, match="not a readable Jupyter notebook|does not exist"):
            assignments.grade(tmp_path / name, book=book, chapter="01")
    assert cli.main(["assignments", "grade", str(tmp_path / "broken.ipynb"), "--book", str(book),
                     "--chapter", "01"]) == 2
    assert "not a readable Jupyter notebook" in capsys.readouterr().err


def test_cli_release_and_grade_write_a_report(mini, tmp_path, capsys):
    book, _ = mini
    out = tmp_path / "cli"
    assert cli.main(["assignments", "release", "--book", str(book), "--out", str(out)]) == 0
    report_path = tmp_path / "report.json"
    assert cli.main(["assignments", "grade", str(out / "instructor" / "01-mini.ipynb"), "--book", str(book),
                     "--chapter", "01", "--report", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["total"] == 5
    assert "total 5 / 5" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# A hostile student: each planted submission must get the score its real answers deserve
# ---------------------------------------------------------------------------------------------------

def attack(mini, tmp_path, add_source, answer_source="answer = base * 2\n", **grade_kwargs):
    """Grade the instructor notebook with the two solution cells replaced; returns (report, path)."""
    book, out = mini
    nb = nbformat.read(out / "instructor" / "01-mini.ipynb", 4)
    cells = solution_cells(nb)
    cells[0].source, cells[1].source = textwrap.dedent(add_source), textwrap.dedent(answer_source)
    path = write(nb, tmp_path / "attack.ipynb")
    return assignments.grade(path, book=book, chapter="01", **grade_kwargs), path


def scores(report):
    return {q.exercise: q.points for q in report.questions}


def test_a_hidden_check_that_kills_the_kernel_fails(mini, tmp_path):
    report, _ = attack(mini, tmp_path, """\
        import os
        def add(a, b):
            if a == 10:          # the hidden check's input
                os._exit(0)
            return a + b
        """)
    assert scores(report) == {"ex-add": 1, "ex-double": 0}, assignments.format_report(report)
    hidden = report.questions[0].tests[1]
    assert not hidden.passed and "kernel died during this check" in hidden.reason
    assert "not run" in report.questions[1].tests[0].reason


def test_a_hidden_check_that_never_ends_fails(mini, tmp_path):
    report, _ = attack(mini, tmp_path, """\
        import signal
        def add(a, b):
            if a == 10:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                while True:
                    pass
            return a + b
        """, timeout=20, cell_timeout=5)
    assert scores(report) == {"ex-add": 1, "ex-double": 0}, assignments.format_report(report)
    assert "time limit" in report.questions[0].tests[1].reason


def test_the_book_is_neither_readable_nor_writable_from_the_kernel(mini, tmp_path):
    book, _ = mini
    before = (book / "01-mini.md").read_bytes()
    report, _ = attack(mini, tmp_path, """\
        from pathlib import Path
        # look for the chapter where the old grader ran the kernel: its folder, or a book/ near it
        here = Path.cwd()
        found = [p for folder in (here, *here.parents[:2]) for p in
                 (*folder.glob("01-mini.md"), *folder.glob("book/01-mini.md"))]
        for chapter in found:   # poison the hidden check for the next student
            chapter.write_text(chapter.read_text().replace("== 6", "== 6 or True"))
        def add(a, b):
            return a + b if found else -1
        """, answer_source="answer = 20 if found else 0\n")
    assert (book / "01-mini.md").read_bytes() == before
    assert scores(report) == {"ex-add": 0, "ex-double": 0}, assignments.format_report(report)


def test_monkeypatches_exception_hooks_and_lying_values_change_nothing(mini, tmp_path):
    report, _ = attack(mini, tmp_path, """\
        import ast, builtins, math
        import numpy as np
        import torch
        ip = get_ipython()
        ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)   # swallow every error
        class DropAsserts(ast.NodeTransformer):
            def visit_Assert(self, node):
                return ast.Pass()
        ip.ast_transformers.append(DropAsserts())
        builtins.abs = lambda x: 0.0
        torch.allclose = lambda *args, **kwargs: True
        np.allclose = lambda *args, **kwargs: True
        math.isclose = lambda *args, **kwargs: True
        class Liar(float):
            def __eq__(self, other):
                return True
            __hash__ = float.__hash__
        def add(a, b):
            return Liar(a - b)          # a wrong answer that says it equals anything
        """, answer_source="""\
        class Says(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return True
        answer = torch.zeros(()).as_subclass(Says)
        """)
    assert scores(report) == {"ex-add": 0, "ex-double": 0}, assignments.format_report(report)


def test_the_report_keeps_no_hidden_source_and_no_environment(mini, tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYLAB_GRADER_SECRET", "s3cr3t-token")
    report, path = attack(mini, tmp_path, """\
        import inspect, os
        def add(a, b):
            secret = os.environ.get("THEORYLAB_GRADER_SECRET", "absent")
            frames = " ".join(str(f.code_context) for f in inspect.stack())
            raise RuntimeError(f"{secret} {sorted(os.environ)} {frames} {In}")
        """)
    text = json.dumps(report.to_dict())
    assert "s3cr3t" not in text and "add(base, -4)" not in text and "HOME" not in text
    assert report.questions[0].tests[1].reason == "your code raised RuntimeError"
    assert report.chapter_sha256 and report.grader_version.startswith("0.")


def test_the_kernel_sees_only_whitelisted_variables(mini, tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYLAB_GRADER_SECRET", "s3cr3t-token")
    report, _ = attack(mini, tmp_path, """\
        import os
        def add(a, b):
            return a + b if "THEORYLAB_GRADER_SECRET" not in os.environ else -1
        """)
    assert scores(report)["ex-add"] == 3


def test_a_symlink_at_the_report_path_is_replaced_not_followed(mini, tmp_path):
    book, out = mini
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    report_path = tmp_path / "attack.grade.json"
    report_path.symlink_to(victim)
    assert cli.main(["assignments", "grade", str(out / "instructor" / "01-mini.ipynb"), "--book", str(book),
                     "--chapter", "01", "--report", str(report_path)]) == 0
    assert victim.read_text() == "precious"
    assert not report_path.is_symlink() and json.loads(report_path.read_text())["total"] == 5


def test_a_detached_process_does_not_outlive_grading(mini, tmp_path):
    # The writer rewrites its file every 0.1 s for as long as it lives: under load grading can take
    # longer than any fixed delay, so what matters is that the file stops changing once grading ends.
    flag = tmp_path / "late-writer.txt"
    report, _ = attack(mini, tmp_path, f"""\
        import subprocess
        subprocess.Popen(["setsid", "sh", "-c", "while true; do echo 9/9 > {flag}; sleep 0.1; done"],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def add(a, b):
            return a + b
        """)
    import time
    ended = time.time()
    time.sleep(2)
    assert not flag.exists() or flag.stat().st_mtime < ended + 0.5, \
        "a process started by the submission outlived grading"
    assert any("killed" in note for note in report.notes)


def test_a_flood_of_output_is_counted_not_kept(mini, tmp_path):
    report, _ = attack(mini, tmp_path, """\
        for _ in range(40):
            print("x" * 1_000_000)
        def add(a, b):
            return a + b
        """)
    assert scores(report) == {"ex-add": 3, "ex-double": 2}
    assert any("printed" in note and "MB" in note for note in report.notes)


def test_the_chapter_is_required_and_checked(mini, tmp_path):
    book, out = mini
    (book / "02-other.md").write_text(MINI)
    with pytest.raises(AssignmentError, match="released for chapter 01-mini, not 02-other"):
        assignments.grade(out / "instructor" / "01-mini.ipynb", book=book, chapter="02")
    with pytest.raises(SystemExit):
        cli.main(["assignments", "grade", str(out / "instructor" / "01-mini.ipynb"), "--book", str(book)])


def test_a_badly_split_check_is_refused_and_a_one_piece_check_is_flagged(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-bad.md").write_text(MINI.replace("answers = collect(six=", "six = (", 1))
    with pytest.raises(AssignmentError, match="must set answers = collect"):
        assignments.read_chapter(book / "01-bad.md")
    (book / "01-bad.md").write_text(MINI.replace(
        'answers = collect(three=add(1, 2))\n# -- check\nassert answers["three"] == 3',
        "assert add(1, 2) == 3"))
    _, exercises = assignments.read_chapter(book / "01-bad.md")
    assert [t.two_halves for t in exercises[0].tests] == [False, True]
    out = tmp_path / "out"
    assignments.release(assignments.find_chapters(book), out)
    report = assignments.grade(out / "instructor" / "01-bad.ipynb", book=book, chapter="01")
    assert report.total == report.max_total and any("one-piece" in n for n in report.notes)


def test_a_chapter_whose_student_version_would_break_is_not_released(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    # a cell outside the exercises uses an answer: in the student's notebook it would meet the stub
    (book / "01-uses.md").write_text(MINI.replace('print("the end")', 'print("the end", add(1, 1))'))
    with pytest.raises(AssignmentError, match=r"uses add, the answer to ex-add.*fail on the stub"):
        assignments.release(assignments.find_chapters(book), tmp_path / "out")
    # a check that reads none of its exercise's answers cannot fail on a stub
    (book / "01-uses.md").write_text(MINI.replace("collect(answer=answer)", "collect(answer=base * 2)"))
    with pytest.raises(AssignmentError, match="a check of ex-double does not use any name its solution"):
        assignments.release(assignments.find_chapters(book), tmp_path / "out")
    # a name the chapter defines again before using it is not the student's answer any more
    (book / "01-uses.md").write_text(MINI.replace('print("the end")', 'answer = 3\nprint("the end", answer)'))
    assignments.release(assignments.find_chapters(book), tmp_path / "out")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_untouched_student_version_scores_zero_and_runs_to_the_end(chapter):
    """Statically, for every chapter (the grader's end-to-end run of one student notebook is in
    test_grading_students): the stubs break no cell outside the exercises, and every check reads the
    student's answer, so a stub (which raises or is None) fails it."""
    nb, _ = assignments.read_chapter(BOOK / f"{chapter}.md")
    assert assignments.student_version_problems(nb) == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_assertion_of_every_check_has_a_message_for_the_student(chapter):
    """The feedback shows a failed visible check's assertion message: each one must have one."""
    import ast

    _, exercises = assignments.read_chapter(BOOK / f"{chapter}.md")
    silent = [f"{test.exercise} ({test.kind}), line {node.lineno}: {ast.unparse(node.test)[:60]}"
              for exercise in exercises for test in exercise.tests if test.two_halves
              for node in ast.walk(ast.parse(test.verify_source))
              if isinstance(node, ast.Assert) and node.msg is None]
    assert not silent, "assertions without a message:\n" + "\n".join(silent)
