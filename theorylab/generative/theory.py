"""Learning curves in closed form: naive Bayes's error to second order in 1/m, logistic regression's
asymptotic excess error, the calibration bound, a Monte Carlo of naive Bayes's curve, and where a curve
first crosses a level."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..seeding import resolve_seed
from ..utils.numerics import first_crossing as shared_first_crossing
from ..utils.threads import single_threaded
from ..utils.validation import check_instance, check_int, check_real, check_tensor
from ._checks import DTYPE
from .estimators import (
    nb_parameters,
)
from .mixture import Mixture


@dataclass(frozen=True)
class _NBCurveConstants:
    """The sums over features that NB's learning curve depends on (:func:`_nb_curve_constants`), with
    ``t`` [n] the standardised mean difference, ``R`` [n, n] the correlation matrix, ``∘`` the elementwise
    product and ``R^{∘p}`` the elementwise power. Every field is a float64 scalar (0-d tensor) except
    ``T``, ``T2``, ``T4`` and ``n`` (Python floats).

    Attributes
    ----------
    A : ``tᵀt``;  B : ``tᵀRt``;  C1 : ``tᵀR²t``;  C2 : ``tᵀR³t``;  B2 : ``tᵀR^{∘3}t``
    T : ``tr R² = Σ R_ij²``;  T2 : ``Σ R_ij⁴``;  T4 : ``tr R⁴``
    Snn : ``(t∘t)ᵀ R^{∘2} (t∘t)``;  Snq : ``(t∘t)ᵀ R^{∘2} (t∘Rt)``;  Sqq : ``(t∘Rt)ᵀ R^{∘2} (t∘Rt)``
    n : the number of features.
    """

    A: torch.Tensor
    B: torch.Tensor
    C1: torch.Tensor
    C2: torch.Tensor
    B2: torch.Tensor
    T: float
    T2: float
    T4: float
    Snn: torch.Tensor
    Snq: torch.Tensor
    Sqq: torch.Tensor
    n: float


def _nb_curve_constants(mixture: Mixture) -> _NBCurveConstants:
    """The sums over features that NB's learning curve depends on, in O(n).

    In standardised units, ``t = D^{-1/2} δ`` (the classes' mean difference per feature, in that feature's
    standard deviations) and ``R = D^{-1/2} Σ D^{-1/2}`` (the correlation matrix, here equicorrelated, so
    ``R^p v`` and ``R^{∘p} v`` — the ``p``-th elementwise power — cost O(n)).
    """
    n, rho = mixture.n_features, mixture.correlation

    def R(v, power=1):                       # R^power v
        for _ in range(power):
            v = (1 - rho) * v + rho * v.sum(-1, keepdim=True)
        return v

    def R_hadamard(v, power):                # (R∘…∘R) v, with `power` factors: entries R_ij^power
        return (1 - rho**power) * v + rho**power * v.sum(-1, keepdim=True)

    t = (mixture.means[1] - mixture.means[0]) / mixture.std
    Rt = R(t)
    t2, tRt = t * t, t * Rt
    big = 1 + (n - 1) * rho                 # the eigenvalues of R: `big` once, 1 − ρ (n − 1 times)
    return _NBCurveConstants(
        A=t2.sum(), B=(t * Rt).sum(), C1=(Rt * Rt).sum(), C2=(Rt * R(Rt)).sum(),
        B2=(t * R_hadamard(t, 3)).sum(),
        T=n + n * (n - 1) * rho**2, T2=n + n * (n - 1) * rho**4, T4=(n - 1) * (1 - rho) ** 4 + big**4,
        Snn=(t2 * R_hadamard(t2, 2)).sum(), Snq=(t2 * R_hadamard(tRt, 2)).sum(),
        Sqq=(tRt * R_hadamard(tRt, 2)).sum(), n=float(n))


def nb_error_prediction(mixture: Mixture, m, *, order: int = 2) -> torch.Tensor:
    """Expected error of two-class naive Bayes trained on ``m`` samples of ``mixture``.

    The training set is as :func:`random_orders` makes it: one sample of each class, then ``m − 2`` with
    random labels (class counts ``m_0 = 1 + Bin(m − 2, ½)``, ``m_1 = m − m_0``). Notation (see
    :func:`_nb_curve_constants`): ``t = D^{-1/2} δ``, ``R`` the correlation matrix, ``A = tᵀt``,
    ``B = tᵀRt``, ``T = tr R²``; NB's limit has error ``Φ(−½ A/√B)``.

    NB's rule is ``sign(âᵀ(x − μ̂̄) + log(m_1/m_0))`` with ``â = D̂⁻¹ δ̂``; its error is exactly
    ``½Φ(−v − e) + ½Φ(−v + e)`` with ``v = âᵀδ / (2√(âᵀΣâ))`` and ``e`` the threshold's offset in units
    of the score's standard deviation. The estimation noise — ``δ̂ − δ ~ N(0, κ Σ)`` with
    ``κ = E(1/m_0 + 1/m_1) ≈ 4(m + 1)/m²``, relative noise of the pooled variances with covariance
    ``λ R∘R``, ``λ = 2/(m − 2)`` — enters through

    * ``order=1``: the mean of ``âᵀΣâ`` to order ``n/m``:  ``Φ(−u)``, ``u = A / (2√(B + (4T + 2B₂)/m))``,
      ``B₂ = Σ_ij t_i t_j R_ij³`` (``= B`` for independent features);
    * ``order=2`` (default): also every term of order ``1/m`` and ``n/m²`` (the same size when ``m ∝ n``):
      ``Φ(−v̄) + ½ v̄ φ(v̄) (Var v + E e²)``, where ``Q = B + κT + λ(B₂ + κT₂)`` is the mean of
      ``âᵀΣâ``, ``u = A/(2√Q)``, and with ``N = âᵀδ``

          v̄     = u (1 − Cov(N, âᵀΣâ)/(2AQ) + 3 Var(âᵀΣâ)/(8Q²)),
          Var v = u² (Var N/A² − Cov(N, âᵀΣâ)/(AQ) + Var(âᵀΣâ)/(4Q²)),
          E e²  = κ/4 + 4 (m − 2)/m² · (1 + n/m − 4/m)² / Q,

      ``Var N = κB + λ S_nn``, ``Cov = 2κC₁ + 2λ S_nq``, ``Var(âᵀΣâ) = 4κC₂ + 2κ² tr R⁴ + 4λ S_qq`` (the
      sums are in :func:`_nb_curve_constants`). For independent features the fluctuation of the
      direction cancels to first order (``Var v = O(n/m²)``): ``D⁻¹δ`` is then the best direction.

    The derivation is in the chapter. Against a Monte Carlo of NB's sufficient statistics
    (:func:`nb_error_simulation`) the excess error ``order=2`` predicts is within 1% for independent
    features (tested at n = 32, m = 40–300 and n = 128, m = 290) and within 5% for the chapter's correlated
    design (n = 100, ρ = 0.05, m = 8–4096); ``order=1`` misses both bounds.

    **Valid range.** The expansion is in powers of the noise; it keeps the terms of order ``1/m`` and
    ``n/m²`` and drops those of order ``n²/m⁴``, which are as large as the kept ones once ``n/m²`` is of
    order one. For independent features we trust it from :func:`nb_prediction_start` ``= max(8, 2√n)``
    on (``n/m² ≤ 1/4``), where it is within 3% of the simulated excess error (tested for n = 32–512).
    Below that, for n ≥ 256 it even rises above chance (n = 512, m = 5: 0.63 against a simulated
    0.48) and is not monotone in ``m``: for independent features plot it only from
    :func:`nb_prediction_start` on. That start is not a statement about other designs: for the chapter's
    correlated design (n = 100, ρ = 0.05) the tests find the formula within 5% from m = 8, below its 2√n.
    ``m`` (≥ 3, finite) is a number or a 1-D tensor/array/list of sizes; the result has its shape.
    """
    if not isinstance(mixture, Mixture):
        raise TypeError(f"mixture must be a Mixture, got {type(mixture).__name__}")
    if mixture.n_classes != 2:
        raise ValueError(f"the prediction is for two classes, got a mixture with {mixture.n_classes}")
    order = check_int("order", order)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    m = check_tensor("m", m, dtype=DTYPE)
    if m.ndim > 1:
        raise ValueError(f"m must be a number or a 1-D array of sizes, got shape {list(m.shape)}")
    c = _nb_curve_constants(mixture)
    if bool((m < 3).any()):
        raise ValueError(f"m must be at least 3, got {m.min().item():g}")
    normal = torch.distributions.Normal(0.0, 1.0)
    if order == 1:
        return normal.cdf(-c.A / (2 * torch.sqrt(c.B + (4 * c.T + 2 * c.B2) / m)))
    kappa = 4 * (m + 1) / m**2
    lam = 2 / (m - 2)
    A, n = c.A, c.n
    Q = c.B + kappa * c.T + lam * (c.B2 + kappa * c.T2)
    u = A / (2 * Q.sqrt())
    var_N = kappa * c.B + lam * c.Snn
    cov_NQ = 2 * kappa * c.C1 + 2 * lam * c.Snq
    var_Q = 4 * kappa * c.C2 + 2 * kappa**2 * c.T4 + 4 * lam * c.Sqq
    v = u * (1 - cov_NQ / (2 * A * Q) + 3 * var_Q / (8 * Q**2))
    var_v = u**2 * (var_N / A**2 - cov_NQ / (A * Q) + var_Q / (4 * Q**2))
    threshold = kappa / 4 + 4 * (m - 2) / m**2 * (1 + n / m - 4 / m) ** 2 / Q
    return normal.cdf(-v) + 0.5 * v * normal.log_prob(v).exp() * (var_v + threshold)


def nb_prediction_start(mixture: Mixture) -> float:
    """The smallest ``m`` from which :func:`nb_error_prediction` (``order=2``) is trusted for independent
    features: ``max(8, 2√n)``, i.e. ``n/m² ≤ 1/4`` (see the valid range there). Argued and tested for
    independent features only; it does not depend on the correlation."""
    if not isinstance(mixture, Mixture):
        raise TypeError(f"mixture must be a Mixture, got {type(mixture).__name__}")
    return max(8.0, 2 * math.sqrt(mixture.n_features))


def _two_class_pack(theta: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, b)`` with rows ``(0, 0)`` and ``(a, c)`` for ``theta = (a, c)`` [n + 1]."""
    zero = torch.zeros(1, dtype=theta.dtype)
    return torch.stack([torch.zeros(n, dtype=theta.dtype), theta[:n]]), torch.cat([zero, theta[n:]])


@dataclass(frozen=True)
class LRErrorCoefficient:
    """LR's asymptotic excess 0–1 error ``c/m`` on a two-class mixture (:func:`lr_error_coefficient`).

    Attributes
    ----------
    coefficient : ``c = tr(H₀₁ I⁻¹)/2`` (an error fraction times a number of samples).
    trace : ``tr(H₀₁ I⁻¹)``.
    hessian : Tensor [n + 1, n + 1], float64: ``H₀₁``, the Hessian of the exact 0–1 error in
        ``θ = (a, c)`` at the Bayes classifier.
    fisher : Tensor [n + 1, n + 1], float64: ``I``, the Hessian of the population logistic risk there.
    """

    coefficient: float
    trace: float
    hessian: torch.Tensor
    fisher: torch.Tensor


def lr_error_coefficient(mixture: Mixture) -> LRErrorCoefficient:
    """LR's asymptotic excess 0–1 error on a two-class ``mixture``: ``E ε(h_LR,m) − ε_Bayes ≈ c/m`` with
    ``c = tr(H₀₁ I⁻¹)/2``.

    The classes share a covariance, so LR's model is right and its population minimiser is the Bayes
    classifier ``θ* = (a*, c*)`` (the difference of the two rows). LR's estimate is asymptotically
    ``N(θ*, I⁻¹/m)``, with ``I`` the Fisher information, here the Hessian of the population logistic risk at
    ``θ*``; the exact 0–1 error (:meth:`Mixture.error`) is smooth in ``θ`` with zero gradient at its minimum
    ``θ*`` and Hessian ``H₀₁``, so ``E ε − ε* ≈ ½ E δᵀH₀₁δ = tr(H₀₁ I⁻¹)/(2m)``. Both Hessians by automatic
    differentiation (float64). The penalty of :class:`LogisticRegression` biases ``θ`` by ``O(1/m)`` and
    the 0–1 error by ``O(1/m²)``; it is not included.

    Returns an :class:`LRErrorCoefficient`: ``coefficient`` ``c``, ``trace`` ``tr(H₀₁ I⁻¹)``, ``hessian``
    ``H₀₁`` and ``fisher`` ``I``.
    """
    if not isinstance(mixture, Mixture):
        raise TypeError(f"mixture must be a Mixture, got {type(mixture).__name__}")
    if mixture.n_classes != 2:
        raise ValueError(f"lr_error_coefficient is for two classes, got a mixture with {mixture.n_classes}")
    n = mixture.n_features
    W, b = mixture.bayes_classifier()
    theta = torch.cat([W[1] - W[0], (b[1] - b[0]).reshape(1)])
    hessian = torch.autograd.functional.hessian(lambda t: mixture.error(*_two_class_pack(t, n)), theta)
    fisher = torch.autograd.functional.hessian(lambda t: mixture.logistic_risk(*_two_class_pack(t, n)), theta)
    trace = torch.trace(torch.linalg.solve(fisher, hessian)).item()
    return LRErrorCoefficient(coefficient=trace / 2, trace=trace, hessian=hessian, fisher=fisher)


def logistic_calibration_inverse(excess) -> torch.Tensor:
    """``ψ⁻¹`` of the binary logistic loss (nats): ``ψ(θ) = ½(1 + θ) ln(1 + θ) + ½(1 − θ) ln(1 − θ)`` on
    ``[0, 1]``. For any classifier ``f``, ``ε(f) − ε_Bayes ≤ ψ⁻¹(R(f) − R*)`` with ``R`` the logistic risk and
    ``R*`` its minimum over all functions (Bartlett, Jordan and McAuliffe, 2006). ``excess``: finite and
    ≥ 0, a number or a non-empty tensor/array of any shape (elementwise; values ≥ ln 2 give 1). Bisection
    to double precision."""
    e = check_tensor("excess", excess, dtype=DTYPE)
    if bool((e < 0).any()):
        raise ValueError(f"excess must be ≥ 0, got minimum {e.min().item():g}")

    def psi(t):
        return 0.5 * (1 + t) * torch.log1p(t) + 0.5 * torch.xlogy(1 - t, 1 - t)

    lo, hi = torch.zeros_like(e), torch.ones_like(e)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = psi(mid) <= e
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return torch.where(e >= math.log(2), torch.ones_like(e), hi)


@single_threaded()
def nb_error_simulation(mixture: Mixture, m: int, *, repeats: int, seed: int | None = None,
                        var_smoothing: float = 1e-9) -> tuple[float, float]:
    """Monte Carlo of two-class naive Bayes's expected error after ``m`` samples, through its sufficient
    statistics: class counts ``1 + Bin(m − 2, ½)`` (as :func:`random_orders` makes them), class means
    ``N(μ_k, Σ/m_k)``, and the pooled sum of squares drawn exactly (for equicorrelated features,
    ``Σ_j r_ji² = σ_i²[(√(1−ρ) ζ_i + √ρ ‖c‖)² + (1 − ρ) χ²_{m−3}]`` with ``‖c‖² ~ χ²_{m−2}`` shared by the
    features); each fit's error is exact (:meth:`Mixture.error`). ``O(repeats · n)`` work instead of
    ``O(repeats · m · n)``. Returns ``(mean error, its standard error)``.
    """
    seed = resolve_seed(seed, "generative.nb_error_simulation")
    check_instance("mixture", mixture, Mixture)
    if mixture.n_classes != 2:
        raise ValueError(f"the simulation is for two classes, got a mixture with {mixture.n_classes}")
    m, repeats = check_int("m", m, low=3), check_int("repeats", repeats, low=1)
    n, rho = mixture.n_features, mixture.correlation
    rng = np.random.default_rng(seed)
    errors = []
    for start in range(0, repeats, 20_000):
        r = min(20_000, repeats - start)
        m0 = torch.as_tensor(1 + rng.binomial(m - 2, 0.5, size=r), dtype=DTYPE)
        counts = torch.stack([m0, m - m0], 1)                                          # [r, 2]
        z = torch.as_tensor(rng.standard_normal((r, 2, n)))
        common = torch.as_tensor(rng.standard_normal((r, 2, 1)))
        noise = (math.sqrt(1 - rho) * z + math.sqrt(rho) * common) * mixture.std / counts.sqrt()[..., None]
        zeta = torch.as_tensor(rng.standard_normal((r, n)))
        norm_c = torch.as_tensor(np.sqrt(rng.chisquare(m - 2, size=(r, 1))))
        rest = torch.as_tensor(rng.chisquare(m - 3, size=(r, n)))
        squares = (math.sqrt(1 - rho) * zeta + math.sqrt(rho) * norm_c) ** 2 + (1 - rho) * rest
        pooled = squares * mixture.std**2 / m                                          # Σ_k π̂_k Var̂_k
        _, _, W, b = nb_parameters(counts, mixture.means + noise, pooled[:, None, :].expand(r, 2, n),
                                   var_smoothing)
        errors.append(mixture.error(W, b))
    errors = torch.cat(errors)
    return errors.mean().item(), (errors.std() / math.sqrt(repeats)).item()


def first_crossing(m_grid, values, level: float) -> float:
    """The first ``m`` at which ``values`` (one per ``m`` in ``m_grid``, decreasing on the whole) falls to
    ``level`` or below, interpolated linearly in ``log m`` between the two grid points around it;
    :data:`~theorylab.utils.numerics.NEVER` (``inf``) if it never does, ``m_grid[0]`` if it starts below.
    ``m_grid`` positive, both finite."""
    level = check_real("level", level)
    m = check_tensor("m_grid", m_grid, dtype=DTYPE, positive=True).detach().cpu().numpy()
    v = check_tensor("values", values, dtype=DTYPE).detach().cpu().numpy()
    if m.ndim != 1 or v.shape != m.shape:
        raise ValueError(f"m_grid and values must be 1-D of the same length, got {m.shape} and {v.shape}")
    return shared_first_crossing(m, v, level, rising=False, log_x=True)


@single_threaded()
def bootstrap_crossings(m_grid, curves, level: float, *, draws: int,
                        generator: torch.Generator) -> tuple[float, np.ndarray]:
    """:func:`first_crossing` of the mean of ``curves`` [S, G] (one row per stream, one column per ``m`` in
    ``m_grid``) and of ``draws`` bootstrap means: each draw resamples the ``S`` rows with replacement, one
    ``torch.randint(0, S, (S,), generator=generator)`` per draw, in order. Returns ``(m*, crossings)``, the
    latter a float array [draws] (``inf``, :data:`~theorylab.utils.numerics.NEVER`, where a draw never
    crosses). Single-threaded: each draw is a few operations on a tiny tensor, which a multi-threaded
    torch runs ten times slower on a busy machine."""
    curves = check_tensor("curves", curves, dtype=DTYPE)
    if curves.ndim != 2:
        raise ValueError(f"curves must have shape [streams, sizes], got {list(curves.shape)}")
    draws = check_int("draws", draws, low=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    S = curves.shape[0]
    resampled = (curves[torch.randint(0, S, (S,), generator=generator)].mean(0) for _ in range(draws))
    crossings = np.array([first_crossing(m_grid, mean, level) for mean in resampled])
    return first_crossing(m_grid, curves.mean(0), level), crossings
