import json

import pytest

from theorylab import claims
from theorylab.claims import ClaimFailed, ClaimRefused, check, check_at_least, check_at_most


def test_close_claim_passes_and_is_recorded(capsys):
    before = len(claims.RECORD)
    result = check("demo.pass", 1.005, 1.0, rtol=0.01, kind="prediction", statement="close enough")
    assert result.passed and len(claims.RECORD) == before + 1
    out = capsys.readouterr().out
    assert out.startswith("[PASS] demo.pass  1.005 vs 1 ± 0.01")  # the numbers come first
    assert "[prediction] close enough" in out


def test_failed_claim_message_shows_id_numbers_and_tolerance():
    with pytest.raises(ClaimFailed) as info:
        check("demo.fail", 1.2, 1.0, rtol=0.01, kind="prediction", statement="too far")
    message = str(info.value)
    for part in ("demo.fail", "1.2", "1.0", "rel 1.0e-02"):
        assert part in message
    assert claims.RECORD[-1].id == "demo.fail" and not claims.RECORD[-1].passed


def test_absolute_tolerance_and_bounds():
    assert check("demo.abs", 1e-10, 0.0, atol=1e-9, kind="identity", statement="abs").passed
    assert check_at_most("demo.le", 0.02, 0.03, statement="le").passed
    assert check_at_least("demo.ge", 5.0, 4.0, statement="ge").passed
    assert claims.RECORD[-1].kind == "bound"
    with pytest.raises(ClaimFailed):
        check_at_most("demo.le-fail", 0.04, 0.03, statement="le")
    with pytest.raises(ClaimFailed):
        check_at_least("demo.ge-fail", 3.0, 4.0, statement="ge")


def test_nan_never_passes():
    with pytest.raises(ClaimFailed):
        check("demo.nan", float("nan"), 1.0, rtol=0.1, kind="prediction", statement="nan")
    with pytest.raises(ClaimFailed):
        check_at_most("demo.nan-bound", float("nan"), 1.0, statement="nan")


def test_largest_and_smallest_keep_a_nan_that_max_would_drop():
    import numpy as np
    import torch
    nan = float("nan")
    assert max(0.0, nan) == 0.0                      # the trap: a NaN after the first value is dropped
    assert np.isnan(claims.largest(0.0, nan)) and np.isnan(claims.smallest([1.0, nan, 2.0]))
    assert np.isnan(claims.largest(x for x in (torch.tensor([1.0, nan]), 3.0)))
    with pytest.raises(ClaimFailed):
        check_at_most("demo.nan-worst", claims.largest([1e-9, nan]), 1e-8, statement="worst of runs")
    # numbers, tensors and arrays of any shape, or one iterable of them, as for max
    assert claims.largest(1, 2.5, np.float64(-3.0)) == 2.5
    assert claims.largest(3, 2.5) == 3 and isinstance(claims.smallest([4, np.int64(2)]), int)   # as max/min
    assert claims.largest(torch.tensor([[1.0, 4.0], [2.0, 3.0]]), np.array([0.5])) == 4.0
    assert claims.smallest(torch.tensor(7.0), [3, [2.0, 9.0]]) == 2.0
    assert claims.largest([], default=0.0) == 0.0 and np.isnan(claims.largest((), default=nan))
    with pytest.raises(ValueError, match="no values"):
        claims.largest([])
    with pytest.raises(TypeError, match="real numbers"):
        claims.smallest([1.0, "2"])


def test_accepts_tensors_and_numpy():
    import numpy as np
    import torch
    assert check("demo.tensor", torch.tensor(2.0), np.float64(2.0), atol=1e-12, kind="identity",
                 statement="t").passed


@pytest.mark.parametrize("value", ["1.0", True, None, b"1"])
def test_strings_bools_and_none_are_not_numbers(value):
    with pytest.raises(TypeError, match="measured must be a real number"):
        check("demo.type", value, 1.0, rtol=0.1, kind="prediction", statement="s")


@pytest.mark.parametrize("kwargs, match", [
    (dict(rtol=0.0, atol=0.0), "give a tolerance"),
    (dict(rtol=-1.0), "rtol and atol"),
])
def test_tolerance_is_required(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check("demo.tol", 1.0, 1.0, kind="identity", statement="s", **kwargs)


def test_bad_id_statement_kind_and_values():
    with pytest.raises(ClaimRefused, match="claim_id"):
        check("", 1.0, 1.0, rtol=0.1, kind="prediction", statement="s")
    with pytest.raises(ValueError, match="statement"):
        check("demo.x", 1.0, 1.0, rtol=0.1, kind="prediction", statement=" ")
    with pytest.raises(TypeError, match="measured"):
        check("demo.x", "one", 1.0, rtol=0.1, kind="prediction", statement="s")
    with pytest.raises(ClaimRefused, match="kind must be one of"):
        check("demo.x", 1.0, 1.0, rtol=0.1, kind="guess", statement="s")
    with pytest.raises(TypeError, match="kind"):
        check("demo.x", 1.0, 1.0, rtol=0.1, statement="s")  # the kind is part of every claim
    with pytest.raises(ValueError, match="se must be"):
        check("demo.x", 1.0, 1.0, rtol=0.1, kind="prediction", se=0.0, statement="s")


@pytest.mark.parametrize("claim_id, ok", [
    ("icl.eta-mc", True), ("icl.trained-gamma[n=20,d=4]", True), ("lowrank.nested-error[b=3]", True),
    ("tilting-mirror", False), ("icl.Eta", False), ("icl.eta_mc", False), ("icl.", False),
    ("icl.a--b", False), ("icl.x[a b]", False), ("icl.x[]", False),
])
def test_one_id_grammar(claim_id, ok):
    if ok:
        assert check(claim_id, 1.0, 1.0, atol=1e-9, kind="identity", statement="s").passed
    else:
        with pytest.raises(ClaimRefused, match="topic.name"):
            check(claim_id, 1.0, 1.0, atol=1e-9, kind="identity", statement="s")


def test_a_prediction_that_would_accept_zero_is_refused():
    # the planted case: a tolerance of 4 s.e. larger than both numbers compared (chapter 1's old
    # icl.trained-excess): it would pass if the prediction were 0
    with pytest.raises(ClaimRefused, match="would accept a prediction of 0"):
        check("demo.powerless", 0.0015, 0.0008, atol=4 * 6e-4, se=6e-4, kind="prediction",
              statement="excess risk of the trained layer equals its prediction")


@pytest.mark.parametrize("rtol, atol", [(0.5, 0.0), (0.0, 0.6), (0.3, 0.5)])
def test_a_prediction_that_would_accept_a_factor_two_is_refused(rtol, atol):
    with pytest.raises(ClaimRefused, match="factor of 2"):
        check("demo.factor-two", 1.0, 1.0, rtol=rtol, atol=atol, kind="prediction", statement="s")


def test_the_same_tolerance_is_fine_for_an_observation_and_a_tight_prediction_passes():
    assert check("demo.obs", 1.0, 1.0, rtol=0.5, kind="observation", statement="s").passed
    claim = check("demo.tight", 1.02, 1.0, atol=0.04, se=0.01, kind="prediction", statement="s")
    assert claim.z == pytest.approx(2.0) and claim.detects == pytest.approx(0.04)
    assert claim.tolerance == "4.0 se" and "(z = +2.0)" in str(claim)


def test_a_prediction_of_zero_is_allowed_and_has_no_relative_power():
    claim = check("demo.zero", 1e-3, 0.0, atol=4e-3, se=1e-3, kind="prediction", statement="mean zero")
    assert claim.detects is None and claim.z == pytest.approx(1.0)


def test_deferred_failures_do_not_raise(monkeypatch, capsys):
    monkeypatch.setenv("THEORYLAB_CLAIMS_DEFER", "1")
    claim = check_at_most("demo.deferred", 2.0, 1.0, statement="recorded, not raised")
    assert not claim.passed and "[FAIL] demo.deferred" in capsys.readouterr().out


def test_a_check_as_last_expression_displays_nothing():
    claim = check("demo.display", 1.0, 1.0, atol=1e-9, kind="identity", statement="s")
    assert claim._ipython_display_() is None


def test_claims_file_gets_one_json_line_per_claim(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv("THEORYLAB_CLAIMS_FILE", str(path))
    monkeypatch.setenv("THEORYLAB_CHAPTER", "00-demo")
    monkeypatch.setenv("THEORYLAB_SEED", "7")
    check("demo.file", 2.0, 2.0, atol=1e-9, kind="identity", statement="written")
    with pytest.raises(ClaimFailed):
        check_at_most("demo.file-fail", 2.0, 1.0, statement="written too")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["id"], r["passed"], r["chapter"], r["kind"], r["seed"]) for r in rows] == [
        ("demo.file", True, "00-demo", "identity", 7), ("demo.file-fail", False, "00-demo", "bound", 7)]


def test_an_unwritable_claims_file_says_which(tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYLAB_CLAIMS_FILE", str(tmp_path / "missing" / "claims.jsonl"))
    with pytest.raises(OSError, match="THEORYLAB_CLAIMS_FILE"):
        check("demo.nofile", 2.0, 2.0, atol=1e-9, kind="identity", statement="s")


def test_find_claim_sites_matches_fstring_ids():
    source = 'x = 1\ncheck("icl.a", 1, 1, atol=1)\nfor n in ns:\n    check_at_most(f"icl.b[n={n}]", 1, 2,\n'
    sites = claims.find_claim_sites(source)
    assert [(s.text, s.line) for s in sites] == [("icl.a", 2), ("icl.b[n={n}]", 4)]
    assert sites[1].matches("icl.b[n=20]") and not sites[1].matches("icl.a")
    assert sites[0].matches("icl.a") and not sites[0].matches("icl.ab")


def test_bonferroni_z():
    assert claims.bonferroni_z(1, alpha=0.05) == pytest.approx(1.95996, abs=1e-4)
    assert claims.bonferroni_z(50) == pytest.approx(3.7190, abs=1e-3)
    with pytest.raises(ValueError, match="claims"):
        claims.bonferroni_z(0)


def test_say_formats_and_displays_as_markdown():
    from theorylab.prose import say
    text = say("The angle is {angle:.1f}°, $z = {z:.2g}$.", angle=84.44, z=3.14159)
    assert text == "The angle is 84.4°, $z = 3.1$." and text._repr_markdown_() == text
    with pytest.raises(ValueError, match="needs values"):
        say("{a} and {b}", a=1)
    with pytest.raises(ValueError, match="not used"):
        say("{a}", a=1, b=2)
    with pytest.raises(ValueError, match="named fields"):
        say("{} and {0}", a=1)
