import json

import pytest

from theorylab import claims
from theorylab.claims import ClaimFailed, check, check_at_least, check_at_most


def test_close_claim_passes_and_is_recorded(capsys):
    before = len(claims.RECORD)
    result = check("demo.pass", 1.005, 1.0, rtol=0.01, statement="close enough")
    assert result.passed and len(claims.RECORD) == before + 1
    assert "[PASS] demo.pass" in capsys.readouterr().out


def test_failed_claim_message_shows_id_numbers_and_tolerance():
    with pytest.raises(ClaimFailed) as info:
        check("demo.fail", 1.2, 1.0, rtol=0.01, statement="too far")
    message = str(info.value)
    for part in ("demo.fail", "1.2", "1.0", "rel 1.0e-02"):
        assert part in message
    assert claims.RECORD[-1].id == "demo.fail" and not claims.RECORD[-1].passed


def test_absolute_tolerance_and_bounds():
    assert check("demo.abs", 1e-10, 0.0, atol=1e-9, statement="abs").passed
    assert check_at_most("demo.le", 0.02, 0.03, statement="le").passed
    assert check_at_least("demo.ge", 5.0, 4.0, statement="ge").passed
    with pytest.raises(ClaimFailed):
        check_at_most("demo.le-fail", 0.04, 0.03, statement="le")
    with pytest.raises(ClaimFailed):
        check_at_least("demo.ge-fail", 3.0, 4.0, statement="ge")


def test_nan_never_passes():
    with pytest.raises(ClaimFailed):
        check("demo.nan", float("nan"), 1.0, rtol=1.0, statement="nan")
    with pytest.raises(ClaimFailed):
        check_at_most("demo.nan-bound", float("nan"), 1.0, statement="nan")


def test_accepts_tensors_and_numpy():
    import numpy as np
    import torch
    assert check("demo.tensor", torch.tensor(2.0), np.float64(2.0), atol=1e-12, statement="t").passed


@pytest.mark.parametrize("kwargs, match", [
    (dict(rtol=0.0, atol=0.0), "give a tolerance"),
    (dict(rtol=-1.0), "rtol and atol"),
])
def test_tolerance_is_required(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check("demo.tol", 1.0, 1.0, statement="s", **kwargs)


def test_bad_id_statement_and_values():
    with pytest.raises(ValueError, match="claim_id"):
        check("", 1.0, 1.0, rtol=0.1, statement="s")
    with pytest.raises(ValueError, match="statement"):
        check("demo.x", 1.0, 1.0, rtol=0.1, statement=" ")
    with pytest.raises(TypeError, match="measured"):
        check("demo.x", "one", 1.0, rtol=0.1, statement="s")


def test_claims_file_gets_one_json_line_per_claim(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv("THEORYLAB_CLAIMS_FILE", str(path))
    monkeypatch.setenv("THEORYLAB_CHAPTER", "00-demo")
    check("demo.file", 2.0, 2.0, atol=1e-9, statement="written")
    with pytest.raises(ClaimFailed):
        check_at_most("demo.file-fail", 2.0, 1.0, statement="written too")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["id"], r["passed"], r["chapter"]) for r in rows] == [
        ("demo.file", True, "00-demo"), ("demo.file-fail", False, "00-demo")]
