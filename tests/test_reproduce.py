"""The reproduce command on a tiny book: one chapter whose claims hold, one with a failing claim."""

import json
import textwrap

from myst_text import MYST_HEADER

from theorylab import reproduce

HEADER = MYST_HEADER


def chapter(body: str) -> str:
    return HEADER + "\n# A chapter\n\n```{code-cell} ipython3\n" + textwrap.dedent(body) + "```\n"


def test_report_and_exit_status(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-good.md").write_text(chapter("""\
        from theorylab.claims import check
        check("good.one", 1.0 + 1e-12, 1.0, atol=1e-9, statement="one is one")
        """))
    (book / "02-bad.md").write_text(chapter("""\
        from theorylab.claims import check, check_at_most
        check_at_most("bad.bound", 2.0, 1.0, statement="two is at most one")
        """) + "\n```{code-cell} ipython3\ncheck('bad.after', 3.0, 3.0, rtol=0.1, statement='on')\n```\n")
    out = tmp_path / "out"

    status = reproduce.main(["--book", str(book), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "good.one" in captured.out and "bad.bound" in captured.out and "FAIL" in captured.out
    assert "FAILED claim 02-bad::bad.bound" in captured.err
    report = json.loads((out / "reproduce-report.json").read_text())
    by_chapter = {c["name"]: c for c in report["chapters"]}
    assert [c["passed"] for c in by_chapter["01-good"]["claims"]] == [True]
    # a failed claim does not stop the chapter: later claims are still checked and reported
    assert [c["id"] for c in by_chapter["02-bad"]["claims"]] == ["bad.bound", "bad.after"]
    assert by_chapter["02-bad"]["errors"] == []
    assert (out / "executed" / "01-good.ipynb").exists()

    assert reproduce.main(["--book", str(book), "--out", str(out), "01"]) == 0


def test_an_exception_in_a_chapter_is_an_error(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-broken.md").write_text(chapter("raise RuntimeError('boom')\n"))
    assert reproduce.main(["--book", str(book), "--out", str(tmp_path / "out")]) == 1
    assert "RuntimeError: boom" in capsys.readouterr().err
