"""Claims: every quantitative statement of a chapter, checked in a cell.

A claim compares a measured value with a predicted one under a stated tolerance, and says what kind
of statement it is::

    check("icl.eta-mc", measured=eta_hat, expected=eta_star, atol=4 * se, se=se,
          kind="prediction", statement="Monte Carlo optimal step size equals n/(n+d+1+σ²)")

The four kinds (:data:`KINDS`) tell a reader how much a passing claim proves:

``prediction``
    a theory's number against a measurement: it fails if the theory or the code is wrong. A
    prediction with a two-sided tolerance must be able to fail: its tolerance may not accept a
    prediction of 0, nor one off by a factor of 2 (:class:`ClaimRefused` otherwise).
``identity``
    an exact relation checked to rounding: a consistency check of the code, not of the paper.
``bound``
    a one-sided statement with a reason (an inequality of the theory, a budget).
``observation``
    a property of this data with no prediction behind it.

Where sampling is involved, ``se=`` gives the standard error of ``measured - expected``; the claim
then reports ``z``, how many standard errors apart the numbers are.

Each check prints its numbers first (``[PASS] icl.eta-mc  0.4318 vs 0.4321 ± 0.002 (z = -0.3)``)
and its kind and statement on the lines below, records the result, and raises :class:`ClaimFailed`
(an ``AssertionError``, so nbval and pytest report it) when the claim does not hold. With
``THEORYLAB_CLAIMS_DEFER=1`` (set by ``python -m theorylab.reproduce``) a failed claim is recorded
and printed but not raised, so the claims after it in the same cell are still evaluated.

When ``THEORYLAB_CLAIMS_FILE`` names a file, each result is also appended to it as one JSON line; the
reproduce command reads that file to print its report.

Claim ids follow one grammar (:data:`ID_PATTERN`): ``topic.name`` or ``topic.name[params]``, where
``topic`` is the theorylab module the chapter is about (``icl``, ``jepa``, ``tilting``, ``stability``,
``generative``, ``lowrank``, ``batchsize``, ``collapse``), ``name`` is lower-case words joined by ``-``,
and ``params`` says which member of a family of claims this is (``icl.trained-gamma[n=20,d=4]``).
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from dataclasses import asdict, dataclass

from .seeding import base_seed
from .utils.validation import check_int

__all__ = ["Claim", "ClaimFailed", "ClaimRefused", "KINDS", "check", "check_at_most", "check_at_least",
           "largest", "smallest", "RECORD", "ClaimSite", "find_claim_sites", "bonferroni_z"]

KINDS = ("prediction", "identity", "bound", "observation")
RELATIONS = ("close", "<=", ">=")

#: The width of a claim's printed lines (the book's output column shows about 93 characters).
WIDTH = 90

#: ``topic.name`` or ``topic.name[params]``; see the module docstring.
ID_PATTERN = re.compile(r"[a-z][a-z0-9]*\.[a-z0-9]+(?:-[a-z0-9]+)*(?:\[[^\[\]\s]+\])?")


@dataclass(frozen=True)
class Claim:
    """The outcome of one check.

    ``relation`` is ``"close"`` (``|measured - expected| <= atol + rtol * |expected|``),
    ``"<="`` (``measured <= expected``) or ``">="`` (``measured >= expected``). ``se`` is the
    standard error of ``measured - expected`` (``None`` when nothing was sampled), ``seed`` the
    value of ``THEORYLAB_SEED`` the claim was checked at.
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
    kind: str = "prediction"
    se: float | None = None
    seed: int = 0

    @property
    def tolerance_value(self) -> float:
        """The absolute tolerance ``atol + rtol·|expected|`` of a two-sided claim (0 for a bound)."""
        return self.atol + self.rtol * abs(self.expected) if self.relation == "close" else 0.0

    @property
    def tolerance(self) -> str:
        """The tolerance in words, e.g. ``"rel 3e-02"``, ``"abs 1e-09"``, ``"4.0 se"`` or ``"bound"``."""
        if self.relation != "close":
            return "bound"
        if self.se:
            return f"{self.tolerance_value / self.se:.1f} se"
        parts = []
        if self.rtol:
            parts.append(f"rel {self.rtol:.1e}")
        if self.atol:
            parts.append(f"abs {self.atol:.1e}")
        return " + ".join(parts) or "exact"

    @property
    def z(self) -> float | None:
        """How many standard errors ``measured`` lies from ``expected`` (signed), or ``None``."""
        if not self.se:
            return None
        return (self.measured - self.expected) / self.se

    @property
    def detects(self) -> float | None:
        """For a two-sided prediction: the smallest relative error of the prediction it would detect."""
        if self.kind != "prediction" or self.relation != "close" or self.expected == 0:
            return None
        return self.tolerance_value / abs(self.expected)

    @property
    def comparison(self) -> str:
        if self.relation == "close":
            text = f"{self.measured:.6g} vs {self.expected:.6g} ± {self.tolerance_value:.2g}"
        else:
            text = f"{self.measured:.6g} {self.relation} {self.expected:.6g}"
        if self.z is not None:
            text += f" (z = {self.z:+.1f})"
        return text

    def __str__(self) -> str:
        """The numbers on the first line, the kind and the statement wrapped below (lines of at most
        :data:`WIDTH` characters, so they fit the book's output column)."""
        mark = "PASS" if self.passed else "FAIL"
        statement = textwrap.wrap(f"[{self.kind}] {self.statement}", WIDTH, initial_indent="       ",
                                  subsequent_indent="         ")
        return "\n".join([f"[{mark}] {self.id}  {self.comparison}", *statement])

    def __repr__(self) -> str:
        return f"<claim {self.id}: {'pass' if self.passed else 'FAIL'}>"

    def _ipython_display_(self) -> None:
        """A check as a cell's last expression shows nothing more: its line was printed already."""

    def as_record(self) -> dict:
        """The claim as a JSON-ready dict (with ``z`` and ``detects``)."""
        return {**asdict(self), "z": self.z, "detects": self.detects}


class ClaimFailed(AssertionError):
    """Raised when a claim does not hold; the message names the claim and shows the numbers."""


class ClaimRefused(ValueError):
    """Raised for a claim that is badly posed: it could not fail, or its kind or id is wrong."""


#: Every claim checked in this process, in order.
RECORD: list[Claim] = []


def _as_float(name: str, value) -> float:
    if isinstance(value, bool | str | bytes) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    return number


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _defer() -> bool:
    """``THEORYLAB_CLAIMS_DEFER`` read as a flag: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/
    ``off`` (the default); anything else is an error rather than a silent "off"."""
    value = os.environ.get("THEORYLAB_CLAIMS_DEFER", "0").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"THEORYLAB_CLAIMS_DEFER must be one of {_TRUE + _FALSE[:-1]}, got {value!r}")
    return value in _TRUE


def _record(claim: Claim) -> Claim:
    defer = _defer()    # a bad THEORYLAB_CLAIMS_DEFER is an error at every check, not only a failed one
    RECORD.append(claim)
    path = os.environ.get("THEORYLAB_CLAIMS_FILE")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(claim.as_record()) + "\n")
        except OSError as exc:
            raise OSError(f"THEORYLAB_CLAIMS_FILE={path!r} cannot be written: {exc}") from None
    print(claim)
    if not claim.passed and not defer:
        raise ClaimFailed(
            f"claim {claim.id!r} failed: {claim.statement}; measured {claim.measured!r}, "
            f"expected {claim.relation} {claim.expected!r} (tolerance: {claim.tolerance})"
            + (f", z = {claim.z:+.2f}" if claim.z is not None else "")
        )
    return claim


def _validate(claim_id: str, statement: str, kind: str, se) -> float | None:
    if not isinstance(claim_id, str) or not ID_PATTERN.fullmatch(claim_id):
        raise ClaimRefused(f"claim_id must read 'topic.name' or 'topic.name[params]' (lower case, words "
                           f"joined by '-'), got {claim_id!r}")
    if not isinstance(statement, str) or not statement.strip():
        raise ClaimRefused(f"statement must say what is claimed, got {statement!r}")
    if kind not in KINDS:
        raise ClaimRefused(f"kind must be one of {KINDS}, got {kind!r}")
    if se is None:
        return None
    se = _as_float("se", se)
    if not (math.isfinite(se) and se > 0):
        raise ValueError(f"se must be a positive finite standard error, got {se!r}")
    return se


def _refuse_powerless(claim_id: str, expected: float, rtol: float, atol: float) -> None:
    """A two-sided prediction must reject a prediction of 0 and one off by a factor of 2.

    With the measurement at the prediction ``e``, the claim would accept ``2e`` when
    ``|e| <= atol + 2·rtol·|e|`` and ``e/2`` when ``|e|/2 <= atol + rtol·|e|/2``; the first
    condition also covers a prediction of 0 (``|e| <= atol``).
    """
    if expected == 0:
        return
    e = abs(expected)
    if e <= atol + 2 * rtol * e:
        wrong = "0" if e <= atol else f"{2 * expected:.4g} (off by a factor of 2)"
        raise ClaimRefused(f"claim {claim_id!r} cannot fail: its tolerance (rtol={rtol:g}, atol={atol:g}) "
                           f"would accept a prediction of {wrong} instead of {expected:.4g}; tighten it, "
                           "measure more precisely, or state the claim as a bound or an observation")
    if e / 2 <= atol + rtol * e / 2:
        raise ClaimRefused(f"claim {claim_id!r} cannot fail: its tolerance (rtol={rtol:g}, atol={atol:g}) "
                           f"would accept a prediction of {expected / 2:.4g} (off by a factor of 2)")


def check(claim_id: str, measured, expected, *, kind: str, rtol: float = 0.0, atol: float = 0.0,
          se=None, statement: str) -> Claim:
    """Assert ``|measured - expected| <= atol + rtol * |expected|`` and record the result.

    At least one of ``rtol`` and ``atol`` must be positive: a tolerance is part of the claim. ``se``
    is the standard error of ``measured - expected`` where sampling is involved (the report shows
    ``z``). A ``kind="prediction"`` whose tolerance would accept 0 or a factor-2 error is refused.
    """
    se = _validate(claim_id, statement, kind, se)
    m, e = _as_float("measured", measured), _as_float("expected", expected)
    rtol, atol = _as_float("rtol", rtol), _as_float("atol", atol)
    if rtol < 0 or atol < 0 or not (math.isfinite(rtol) and math.isfinite(atol)):
        raise ValueError(f"rtol and atol must be finite and non-negative, got rtol={rtol}, atol={atol}")
    if rtol == 0 and atol == 0:
        raise ValueError("give a tolerance: rtol or atol must be positive")
    if kind == "prediction" and math.isfinite(e):
        _refuse_powerless(claim_id, e, rtol, atol)
    passed = math.isfinite(m) and math.isfinite(e) and abs(m - e) <= atol + rtol * abs(e)
    return _record(Claim(claim_id, statement, m, e, "close", rtol, atol, passed, _chapter(), kind, se,
                         base_seed()))


def check_at_most(claim_id: str, measured, bound, *, kind: str = "bound", se=None, statement: str) -> Claim:
    """Assert ``measured <= bound`` and record the result."""
    return _check_bound(claim_id, measured, bound, "<=", kind, se, statement)


def check_at_least(claim_id: str, measured, bound, *, kind: str = "bound", se=None, statement: str) -> Claim:
    """Assert ``measured >= bound`` and record the result."""
    return _check_bound(claim_id, measured, bound, ">=", kind, se, statement)


def _check_bound(claim_id, measured, bound, relation, kind, se, statement) -> Claim:
    se = _validate(claim_id, statement, kind, se)
    m, b = _as_float("measured", measured), _as_float("bound", bound)
    ok = math.isfinite(m) and not math.isnan(b) and (m <= b if relation == "<=" else m >= b)
    return _record(Claim(claim_id, statement, m, b, relation, 0.0, 0.0, ok, _chapter(), kind, se,
                         base_seed()))


def largest(*values, default=None) -> float:
    """The largest of ``values`` (an int if it is one), and NaN if any of them is NaN: the way to reduce many
    measurements to the one a claim checks (``check_at_most(id, largest(errors), tol, ...)``).

    Python's ``max`` compares with ``>``, which is false for NaN, so it drops a NaN unless it comes
    first: ``max(0.0, nan)`` is ``0.0``, and a claim on the worst of several diverged runs would pass.
    ``values`` are numbers, tensors or arrays of any shape (every entry counts), or one iterable of
    them, as for ``max``; with none at all, ``default`` is returned (a ``ValueError`` without one).
    """
    return _extreme(values, default, max, "largest")


def smallest(*values, default=None) -> float:
    """The smallest of ``values``, NaN if any is NaN; see :func:`largest`."""
    return _extreme(values, default, min, "smallest")


def _extreme(values, default, pick, name: str) -> float:
    numbers: list[int | float] = []
    _flatten(values[0] if len(values) == 1 else values, numbers, name)
    if not numbers:
        if default is None:
            raise ValueError(f"{name}() was given no values; pass default= for an empty collection")
        return _as_float("default", default)
    return math.nan if any(math.isnan(x) for x in numbers) else pick(numbers)


def _flatten(item, out: list[float], name: str) -> None:
    if hasattr(item, "tolist"):              # a tensor or an array (any device), or a NumPy scalar
        item = item.tolist()
    if isinstance(item, int | float) and not isinstance(item, bool):
        out.append(item)
        return
    if isinstance(item, bool | str | bytes) or item is None:
        raise TypeError(f"{name}() takes real numbers, got {item!r}")
    try:
        entries = iter(item)
    except TypeError:
        out.append(_as_float(f"{name}() value", item))     # a 0-d object that converts, like float()
        return
    for entry in entries:
        _flatten(entry, out, name)


def _chapter() -> str:
    return os.environ.get("THEORYLAB_CHAPTER", "")


def bonferroni_z(claims: int, *, alpha: float = 0.01) -> float:
    """The two-sided z threshold that keeps the chance of any false failure among ``claims`` Gaussian
    claims below ``alpha``: ``Φ⁻¹(1 - alpha / (2·claims))``. With 50 claims and α = 1 %, 3.72."""
    claims = check_int("claims", claims, low=1)
    alpha = _as_float("alpha", alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    from statistics import NormalDist
    return NormalDist().inv_cdf(1 - alpha / (2 * claims))


_CALL = re.compile(r"\bcheck(?:_at_most|_at_least)?\(\s*(f?)([\"'])(.+?)\2")


@dataclass(frozen=True)
class ClaimSite:
    """A ``check*`` call in a chapter's source: the id as written, its line, and a regex for the ids it
    makes (an f-string field ``{...}`` matches anything)."""

    text: str
    line: int
    pattern: str

    def matches(self, claim_id: str) -> bool:
        return re.fullmatch(self.pattern, claim_id) is not None


def find_claim_sites(source: str) -> list[ClaimSite]:
    """Every ``check``/``check_at_most``/``check_at_least`` call in ``source``, in order of lines."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a string of code, got {type(source).__name__}")
    sites = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in _CALL.finditer(line):
            is_f, text = match.group(1), match.group(3)
            if is_f:
                pieces = re.split(r"\{[^{}]*\}", text)
                pattern = ".+?".join(re.escape(p) for p in pieces)
            else:
                pattern = re.escape(text)
            sites.append(ClaimSite(text, number, pattern))
    return sites
