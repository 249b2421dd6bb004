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
        check("good.one", 1.0 + 1e-12, 1.0, atol=1e-9, kind="identity", statement="one is one")
        """))
    (book / "02-bad.md").write_text(chapter("""\
        from theorylab.claims import check, check_at_most
        check_at_most("bad.bound", 2.0, 1.0, statement="two is at most one")
        check("bad.same-cell", 3.0, 3.0, rtol=0.1, kind="prediction", statement="after a failure")
        raise RuntimeError("stop")
        check("bad.unreached", 3.0, 3.0, rtol=0.1, kind="prediction", statement="never")
        """) + "\n```{code-cell} ipython3\ncheck('bad.after', 3.0, 3.0, rtol=0.1, kind='prediction', "
              "statement='on')\n```\n")
    out = tmp_path / "out"

    status = reproduce.main(["--book", str(book), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "good.one" in captured.out and "bad.bound" in captured.out and "FAIL" in captured.out
    assert "FAILED claim 02-bad::bad.bound (seed 0, line" in captured.err
    assert "NOT REACHED 02-bad::bad.unreached" in captured.err
    report = json.loads((out / "reproduce-report.json").read_text())
    by_chapter = {c["name"]: c for c in report["chapters"]}
    assert [c["passed"] for c in by_chapter["01-good"]["claims"]] == [True]
    # a failed claim does not stop its cell or the chapter: later claims are still checked and
    # reported; a claim after an exception is reported as not reached, with its source line
    bad = by_chapter["02-bad"]
    assert [c["id"] for c in bad["claims"]] == ["bad.bound", "bad.same-cell", "bad.after"]
    assert [c["kind"] for c in bad["claims"]] == ["bound", "prediction", "prediction"]
    assert [s["id"] for s in bad["not_reached"]] == ["bad.unreached"]
    assert bad["not_reached"][0]["line"] == bad["claims"][1]["line"] + 2
    assert bad["errors"] == ["cell 0: RuntimeError: stop"]
    assert (out / "executed" / "01-good.ipynb").exists()

    assert reproduce.main(["--book", str(book), "--out", str(out), "01"]) == 0


def test_an_exception_in_a_chapter_is_an_error(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-broken.md").write_text(chapter("raise RuntimeError('boom')\n"))
    assert reproduce.main(["--book", str(book), "--out", str(tmp_path / "out")]) == 1
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_seeds_run_every_chapter_per_seed_and_count(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-seeded.md").write_text(chapter("""\
        from theorylab.claims import check_at_most
        from theorylab.seeding import base_seed, seed
        check_at_most("demo.even", base_seed() % 2, 0, statement="holds at even seeds only")
        check_at_most("demo.stream", seed("demo") / 2**31, 1, statement="a seed is below 2**31")
        check_at_most("demo.fixed", 0.5, 1, statement="a closed form: the same at every seed")
        """))
    out = tmp_path / "out"
    assert reproduce.main(["--book", str(book), "--out", str(out), "--seeds", "0-3"]) == 1
    captured = capsys.readouterr()
    lines = [line.split() for line in captured.out.splitlines() if line.startswith("01-seeded")]
    rows = {cells[1]: cells for cells in lines}
    assert rows["demo.even"][3:] == ["2/4", "1,3"]
    assert rows["demo.stream"][3:] == ["4/4"]
    assert rows["demo.fixed"][3:] == ["4/4", "yes"]
    assert "1 of 3 claims measured the same value at every seed" in captured.out.replace("\n", " ")
    assert (out / "seed-3" / "reproduce-report.json").exists()
    md = (out / "robustness-report.md").read_text()
    assert "demo.even | bound | 2/4 | 1,3 |  |" in md and "demo.fixed | bound | 4/4 |  | yes |" in md

    assert reproduce.main(["--book", str(book), "--out", str(out), "--seed", "2"]) == 0
    report = json.loads((out / "reproduce-report.json").read_text())
    assert report["seed"] == 2 and report["chapters"][0]["claims"][0]["seed"] == 2


def test_a_say_sentence_that_is_not_shown_is_an_error(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "01-say.md").write_text(chapter("""\
        from theorylab.prose import say
        sentence = say("The angle is {a:.1f} degrees.", a=84.44)
        say("The angle is {a:.1f} degrees.", a=84.44)
        """) + "\n```{code-cell} ipython3\nsay('{x} is shown only if last', x=1)\nprint('hidden')\n```\n")
    assert reproduce.main(["--book", str(book), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "cell 1: its say(...) sentence was not shown" in err and "cell 0" not in err
