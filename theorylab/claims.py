"""Claims: every quantitative statement of a chapter, checked in a cell.

A claim compares a measured value with a predicted one under a stated tolerance::

    check("icl.eta-mc", measured=eta_hat, expected=eta_star, rtol=4 * se / eta_star,
          statement="Monte Carlo optimal step size equals n/(n+d+1+sigma^2)")

It prints one line saying what was compared, records the result, and raises :class:`ClaimFailed`
(an ``AssertionError``, so nbval and pytest report it as a failure) with the claim id, the measured
and expected values and the tolerance when the claim does not hold.

When the environment variable ``THEORYLAB_CLAIMS_FILE`` names a file, each result is also appended
to it as one JSON line; ``python -m theorylab.reproduce`` reads that file to print its report.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

__all__ = ["Claim", "ClaimFailed", "check", "check_at_most", "check_at_least", "RECORD"]

RELATIONS = ("close", "<=", ">=")


@dataclass(frozen=True)
class Claim:
    """The outcome of one check.

    ``relation`` is ``"close"`` (``|measured - expected| <= atol + rtol * |expected|``),
    ``"<="`` (``measured <= expected``) or ``">="`` (``measured >= expected``).
    """

    id: str
    statement: str
    measured: float
    expected: float
    relation: str
    rtol: float
    atol: float
    passed: bool
    chapter: str = ""

    @property
    def tolerance(self) -> str:
        """The tolerance in words, e.g. ``"rel 3e-02"``, ``"abs 1e-09"`` or ``"bound"``."""
        if self.relation != "close":
            return "bound"
        parts = []
        if self.rtol:
            parts.append(f"rel {self.rtol:.1e}")
        if self.atol:
            parts.append(f"abs {self.atol:.1e}")
        return " + ".join(parts) or "exact"

    @property
    def comparison(self) -> str:
        if self.relation == "close":
            return f"measured {self.measured:.6g} vs expected {self.expected:.6g} ({self.tolerance})"
        return f"measured {self.measured:.6g} {self.relation} bound {self.expected:.6g}"

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"[{mark}] {self.id}: {self.statement} — {self.comparison}"


class ClaimFailed(AssertionError):
    """Raised when a claim does not hold; the message names the claim and shows the numbers."""


#: Every claim checked in this process, in order.
RECORD: list[Claim] = []


def _as_float(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def _record(claim: Claim) -> Claim:
    RECORD.append(claim)
    path = os.environ.get("THEORYLAB_CLAIMS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(claim)) + "\n")
    print(claim)
    if not claim.passed:
        raise ClaimFailed(
            f"claim {claim.id!r} failed: {claim.statement}; measured {claim.measured!r}, "
            f"expected {claim.relation} {claim.expected!r} (tolerance: {claim.tolerance})"
        )
    return claim


def _validate_id(claim_id: str, statement: str) -> None:
    if not isinstance(claim_id, str) or not claim_id.strip():
        raise ValueError(f"claim_id must be a non-empty string, got {claim_id!r}")
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must say what is claimed, got {statement!r}")


def check(claim_id: str, measured, expected, *, rtol: float = 0.0, atol: float = 0.0,
          statement: str) -> Claim:
    """Assert ``|measured - expected| <= atol + rtol * |expected|`` and record the result.

    At least one of ``rtol`` and ``atol`` must be positive: a tolerance is part of the claim.
    """
    _validate_id(claim_id, statement)
    m, e = _as_float("measured", measured), _as_float("expected", expected)
    rtol, atol = _as_float("rtol", rtol), _as_float("atol", atol)
    if rtol < 0 or atol < 0 or not (math.isfinite(rtol) and math.isfinite(atol)):
        raise ValueError(f"rtol and atol must be finite and non-negative, got rtol={rtol}, atol={atol}")
    if rtol == 0 and atol == 0:
        raise ValueError("give a tolerance: rtol or atol must be positive")
    passed = math.isfinite(m) and math.isfinite(e) and abs(m - e) <= atol + rtol * abs(e)
    return _record(Claim(claim_id, statement, m, e, "close", rtol, atol, passed, _chapter()))


def check_at_most(claim_id: str, measured, bound, *, statement: str) -> Claim:
    """Assert ``measured <= bound`` and record the result."""
    return _check_bound(claim_id, measured, bound, "<=", statement)


def check_at_least(claim_id: str, measured, bound, *, statement: str) -> Claim:
    """Assert ``measured >= bound`` and record the result."""
    return _check_bound(claim_id, measured, bound, ">=", statement)


def _check_bound(claim_id, measured, bound, relation, statement) -> Claim:
    _validate_id(claim_id, statement)
    m, b = _as_float("measured", measured), _as_float("bound", bound)
    ok = math.isfinite(m) and not math.isnan(b) and (m <= b if relation == "<=" else m >= b)
    return _record(Claim(claim_id, statement, m, b, relation, 0.0, 0.0, ok, _chapter()))


def _chapter() -> str:
    return os.environ.get("THEORYLAB_CHAPTER", "")
