"""Neural collapse in deep linear unconstrained-features models (chapter 8, Dang et al. 2023).

The model: ``K`` classes with ``n_k`` samples each, ``N = Σ n_k``; free features ``H`` [d, N] (one column
per sample) and ``M`` weight matrices ``W_1`` [d_1, d], …, ``W_M`` [K, d_{M−1}] (``M`` counts weight
matrices: ``M = 1`` is the plain unconstrained-features model). The regularised objective is ::

    MSE:  f = (1/2N) ‖W_M⋯W_1 H + b 1ᵀ − Y‖_F² + Σ_i (λ_{W_i}/2) ‖W_i‖_F² + (λ_H/2) ‖H‖_F²
    CE:   f = (1/N) Σ_i CE(W_M⋯W_1 h_i + b, y_i) + the same penalties

with the bias ``b`` optional and not regularised. Note the normalisation: the fit is divided by 2N, the
feature penalty is not divided by N, so ``c = N λ_H`` appears everywhere.

Closed forms (MSE, no bias, any class sizes): with ``λ̄ = (Π_i λ_{W_i})^{1/M}``, class ``k`` contributes ::

    φ_k(a) = n_k λ_H / (2 (a + c)) + (M λ̄ / 2) a^{1/M},      f* = Σ_k min_{a ≥ 0} φ_k(a),

where ``a`` is the squared singular value of the product ``W_M⋯W_1`` along class ``k``
(:func:`per_direction_objective`, :func:`mse_optimum`, :func:`critical_class_size`). For cross-entropy
with balanced classes, :func:`ce_candidate` gives the objective of the simplex ETF and of the rank-2
"square" configuration (K = 4). :func:`train_ufm` trains a batch of independent models by full-batch
gradient descent with momentum (gradients written out by hand, float64); :func:`nc_metrics` measures
NC1–NC3 at every layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .seeding import make_generator, resolve_seed
from .utils.validation import check_choice, check_int, check_real, check_tensor

__all__ = ["MSEOptimum", "NCMetrics", "UFMRun", "CECandidate", "lambda_bar", "per_direction_objective",
           "stationary_points", "largest_stationary_root", "stationary_objectives", "critical_class_size",
           "fold_class_size", "direction_descent_rate",
           "mse_optimum", "ce_candidate", "DeformedSquare", "deformed_square", "ce_critical_point",
           "nc_metrics", "labels_for", "train_ufm", "ufm_objective_and_grads", "balanced_factors"]

DTYPE = torch.float64


# ----------------------------------------------------------------------------------------------------
# input checks

def _layer_lambdas(lambda_w, depth: int) -> tuple[float, ...]:
    """``lambda_w`` (one positive number, or one per layer) as a tuple of ``depth`` floats."""
    if isinstance(lambda_w, str | bytes):
        raise TypeError(f"lambda_w must be a number or one number per layer, got {type(lambda_w).__name__} "
                        f"{lambda_w!r}")
    if isinstance(lambda_w, Sequence | np.ndarray | torch.Tensor) and not (
            isinstance(lambda_w, torch.Tensor | np.ndarray) and np.ndim(lambda_w) == 0):
        values = [check_real(f"lambda_w[{i}]", v, low=0, low_open=True) for i, v in enumerate(lambda_w)]
        if len(values) != depth:
            raise ValueError(f"lambda_w must be one number or one value per layer ({depth}), got "
                             f"{len(values)} "
                             f"values {values}")
        return tuple(values)
    return (check_real("lambda_w", lambda_w, low=0, low_open=True),) * depth


def _integer_labels(labels) -> torch.Tensor:
    """``labels`` (a tensor, array or sequence of integers) as an integer tensor; ``TypeError`` for
    anything else (strings, floats, bools)."""
    wrong_type = TypeError(f"labels must be a tensor of integer class labels, got {type(labels).__name__}")
    if isinstance(labels, str | bytes) or labels is None:
        raise wrong_type
    try:
        labels = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        raise wrong_type from None
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    return labels


def _class_sizes(class_sizes) -> torch.Tensor:
    sizes = check_tensor("class_sizes", class_sizes, ndim=1, dtype=DTYPE)
    if sizes.numel() < 2:
        raise ValueError(f"class_sizes must name at least 2 classes, got {sizes.tolist()}")
    if (sizes < 1).any() or (sizes != sizes.round()).any():
        raise ValueError(f"class_sizes must be positive integers, got {sizes.tolist()}")
    return sizes


def lambda_bar(lambda_w, depth: int) -> float:
    """The geometric mean ``(Π_i λ_{W_i})^{1/M}`` of the layers' weight decays: the only way per-layer
    values enter the closed forms. ``lambda_w`` is one positive number or one per layer."""
    depth = check_int("depth", depth, low=1)
    values = _layer_lambdas(lambda_w, depth)
    return math.exp(sum(math.log(v) for v in values) / depth)


# ----------------------------------------------------------------------------------------------------
# MSE closed forms

def per_direction_objective(a, class_size, total, *, depth: int, lambda_w, lambda_h) -> torch.Tensor:
    """``φ_k(a) = n_k λ_H / (2(a + Nλ_H)) + (M λ̄/2) a^{1/M}``: class ``k``'s share of the MSE objective when
    the product's squared singular value along it is ``a`` (≥ 0; a tensor of any shape, float64)."""
    a = check_tensor("a", a, dtype=DTYPE, nonnegative=True)
    n = check_real("class_size", class_size, low=0, low_open=True)
    total = check_real("total", total, low=n)
    depth = check_int("depth", depth, low=1)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    lam = lambda_bar(lambda_w, depth)
    c = total * lam_h
    return n * lam_h / (2 * (a + c)) + depth * lam / 2 * a ** (1.0 / depth)


def _ratio(class_size: float, total: float, depth: int, lam: float, lam_h: float) -> float:
    """``r_k = N^{(M+1)/M} λ̄ λ_H^{1/M} / n_k``: stationarity reads ``x^{M−1}/(x^M + 1)² = r_k`` with
    ``a = c x^M``."""
    return total ** ((depth + 1) / depth) * lam * lam_h ** (1.0 / depth) / class_size


def _bisect(g, lo: float, hi: float, iterations: int = 200) -> float:
    """The root of ``g`` in ``[lo, hi]`` (``g(lo)`` and ``g(hi)`` of opposite signs), to float64 precision."""
    g_lo = g(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        g_mid = g(mid)
        if (g_mid > 0) == (g_lo > 0):
            lo, g_lo = mid, g_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def stationary_points(class_size, total, *, depth: int, lambda_w, lambda_h) -> list[float]:
    """The non-zero stationary points ``a > 0`` of ``φ_k`` (increasing order): none, one (``M = 1``, or the
    tangent case), or two for ``M ≥ 2`` (a local maximum, then a local minimum). ``a = 0`` is always a
    stationary point of the full problem as well (a local minimum for ``M ≥ 2``)."""
    n = check_real("class_size", class_size, low=0, low_open=True)
    total = check_real("total", total, low=n)
    depth = check_int("depth", depth, low=1)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    lam = lambda_bar(lambda_w, depth)
    c, r = total * lam_h, _ratio(n, total, depth, lam, lam_h)
    if depth == 1:                        # 1/(x + 1)² = r
        return [c * (1 / math.sqrt(r) - 1)] if r < 1 else []
    g = lambda x: x ** (depth - 1) / (x**depth + 1) ** 2 - r  # noqa: E731
    peak = ((depth - 1) / (depth + 1)) ** (1.0 / depth)       # where x^{M−1}/(x^M+1)² is largest
    if g(peak) < 0:
        return []
    if g(peak) == 0:
        return [c * peak**depth]
    hi = peak
    while g(hi) > 0:
        hi *= 2
    small, large = _bisect(g, 0.0, peak), _bisect(g, peak, hi)
    return [c * small**depth, c * large**depth]


def largest_stationary_root(class_size, total, *, depth: int, lambda_w, lambda_h) -> float:
    """The largest stationary point of ``φ_k`` (0 when there is none): the choice of the paper's official
    code. It is the global minimiser only when ``φ_k`` there is at most ``φ_k(0) = n_k/(2N)``; for ``M ≥ 2``
    and ``n_k`` just below :func:`critical_class_size` it is a non-global local minimum."""
    roots = stationary_points(class_size, total, depth=depth, lambda_w=lambda_w, lambda_h=lambda_h)
    return roots[-1] if roots else 0.0


def _optimal_a(n: float, total: float, depth: int, lambda_w, lam_h: float) -> float:
    """``argmin_{a ≥ 0} φ_k(a)``: the largest stationary point if it beats ``a = 0``, else 0 (ties to 0)."""
    a = largest_stationary_root(n, total, depth=depth, lambda_w=lambda_w, lambda_h=lam_h)
    if a == 0.0:
        return 0.0
    phi = per_direction_objective(torch.tensor([0.0, a], dtype=DTYPE), n, total, depth=depth,
                                  lambda_w=lambda_w, lambda_h=lam_h)
    return a if phi[1] < phi[0] else 0.0


def critical_class_size(total, *, depth: int, lambda_w, lambda_h) -> float:
    """``n_crit = M² (M−1)^{−(M−1)/M} N^{(M+1)/M} λ̄ λ_H^{1/M}`` (``N² λ_W λ_H`` for ``M = 1``): class ``k``'s
    direction is non-zero at the global minimum (MSE, no bias) iff ``n_k > n_crit``. ``total`` is ``N``."""
    total = check_real("total", total, low=0, low_open=True)
    depth = check_int("depth", depth, low=1)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    lam = lambda_bar(lambda_w, depth)
    shape = 1.0 if depth == 1 else depth**2 * (depth - 1) ** (-(depth - 1) / depth)
    return shape * total ** ((depth + 1) / depth) * lam * lam_h ** (1.0 / depth)


def fold_class_size(total, *, depth: int, lambda_w, lambda_h) -> float:
    """The smallest class size at which ``φ_k`` has a non-zero stationary point (``M ≥ 2``): there ``r_k``
    equals the peak of ``x^{M−1}/(x^M + 1)²`` and the local minimum and maximum are born together (a fold).
    Smaller classes can only end at ``a = 0``; just above it the new minimum is shallow (its curvature
    vanishes like the square root of the distance), so descent converges slowly there."""
    total = check_real("total", total, low=0, low_open=True)
    depth = check_int("depth", depth, low=2)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    lam = lambda_bar(lambda_w, depth)
    x = ((depth - 1) / (depth + 1)) ** (1.0 / depth)
    peak = x ** (depth - 1) / (x**depth + 1) ** 2
    return total ** ((depth + 1) / depth) * lam * lam_h ** (1.0 / depth) / peak


def direction_descent_rate(class_size, total, *, depth: int, lambda_w: float, lambda_h, lr: float,
                           momentum: float) -> float:
    """How fast momentum descent on one aligned, balanced class direction (the dynamics of
    ``theorylab.kernels.collapse_directions``: layer value ``s``, feature coefficient ``t``, one ``λ_W`` for
    every layer) settles into its non-zero local minimum: the spectral radius ``ρ`` of the step linearised
    there, so an error shrinks like ``ρ^t`` and by a factor ``F`` in ``ln F / (−ln ρ)`` steps.

    Per parameter the gradients are ``(n/N) r t s^{M−1} + λ_W s`` and ``r s^M/N + λ_H t`` with
    ``r = s^M t − 1``; each eigenvalue ``h`` of their Jacobian gives the heavy-ball roots of
    ``z² − (1 + μ − ηh) z + μ``. A ``ValueError`` when the direction has no non-zero minimum."""
    n = check_real("class_size", class_size, low=0, low_open=True)
    total = check_real("total", total, low=n)
    depth = check_int("depth", depth, low=1)
    lam_w = check_real("lambda_w", lambda_w, low=0, low_open=True)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    lr = check_real("lr", lr, low=0, low_open=True)
    momentum = check_real("momentum", momentum, low=0, high=1, high_open=True)
    a = largest_stationary_root(n, total, depth=depth, lambda_w=lam_w, lambda_h=lam_h)
    if a == 0.0:
        raise ValueError(f"class_size {n:g} has no non-zero stationary point (below the fold at "
                         f"{fold_class_size(total, depth=depth, lambda_w=lam_w, lambda_h=lam_h):g})"
                         if depth >= 2 else f"class_size {n:g} has no non-zero stationary point")
    s = a ** (1.0 / (2 * depth))
    t = s**depth / (s ** (2 * depth) + total * lam_h)          # the feature's best coefficient given s

    def gradient(x):
        s_, t_ = x
        r = s_**depth * t_ - 1
        return torch.stack([n / total * r * t_ * s_ ** (depth - 1) + lam_w * s_,
                            r * s_**depth / total + lam_h * t_])

    jac = torch.autograd.functional.jacobian(gradient, torch.tensor([s, t], dtype=DTYPE))
    radius = 0.0
    for h in torch.linalg.eigvals(jac).real.tolist():       # real: the Jacobian is a positive diagonal
        b = 1 + momentum - lr * h                              # times the symmetric Hessian of g(s, t)
        roots = np.roots([1.0, -b, momentum])
        radius = max(radius, float(np.abs(roots).max()))
    return radius


@dataclass(frozen=True)
class MSEOptimum:
    """The global minimum of the MSE deep linear UFM (:func:`mse_optimum`).

    Attributes
    ----------
    class_sizes : Tensor [K]
    depth : int
        ``M``, the number of weight matrices.
    lambda_w : tuple of float [M]
    lambda_h : float
    bias : bool
    a : Tensor [K]
        Squared singular value of the product ``W_M⋯W_1`` along each class direction. Without bias,
        ``WWᵀ = diag(a)``; with a bias (balanced classes) ``WWᵀ = a* P`` with ``P = I − 11ᵀ/K``, so ``a``
        holds
        ``K − 1`` copies of ``a*`` and a 0 (the direction of ``1``).
    objective : float
        The global minimum value ``f*``.
    """

    class_sizes: torch.Tensor
    depth: int
    lambda_w: tuple
    lambda_h: float
    bias: bool
    a: torch.Tensor
    objective: float

    @property
    def total(self) -> float:
        return float(self.class_sizes.sum())

    @property
    def c(self) -> float:
        """``c = N λ_H``."""
        return self.total * self.lambda_h

    @property
    def lambda_bar(self) -> float:
        return lambda_bar(self.lambda_w, self.depth)

    @property
    def per_class(self) -> torch.Tensor:
        """[K] the value of ``a`` for each class's own direction (for the bias case, ``a*``)."""
        return self.a.max().expand(len(self.a)).clone() if self.bias else self.a

    @property
    def mean_norms2(self) -> torch.Tensor:
        """[K] ``‖h̄_k‖²`` of the class means of ``H``: ``a/(a + c)²`` (times ``(K−1)/K`` with a bias)."""
        a = self.per_class
        norms = a / (a + self.c) ** 2
        return norms * (len(a) - 1) / len(a) if self.bias else norms

    @property
    def predictions(self) -> torch.Tensor:
        """[K] the fitted output along the class's own direction, ``a/(a + c)``."""
        return self.per_class / (self.per_class + self.c)

    @property
    def layer_singular_values(self) -> torch.Tensor:
        """[M, K] singular value of layer ``i`` along each class: ``(λ̄/λ_{W_i})^{1/2} a^{1/(2M)}``."""
        lam = torch.tensor(self.lambda_w, dtype=DTYPE)
        return (self.lambda_bar / lam).sqrt()[:, None] * self.a[None, :] ** (1.0 / (2 * self.depth))


def mse_optimum(class_sizes, *, depth: int, lambda_w, lambda_h, bias: bool = False) -> MSEOptimum:
    """The global minimum of the regularised MSE deep linear UFM, from the per-direction reduction.

    Parameters
    ----------
    class_sizes : sequence of int [K]
        ``n_k``, at least 2 classes.
    depth : int
        ``M ≥ 1``, the number of weight matrices.
    lambda_w : float or sequence of M floats
        Weight decay of each layer (one value for all, or one per layer).
    lambda_h : float
        Weight decay of the features ``H``.
    bias : bool
        With an unregularised last-layer bias: only for balanced classes (equal ``n_k``), where the
        minimiser has ``b = 1/K`` and the class means form a simplex ETF.

    Returns
    -------
    MSEOptimum
        ``.a`` [K] and ``.objective`` (``f*``), plus the geometry derived from them.
    """
    sizes = _class_sizes(class_sizes)
    depth = check_int("depth", depth, low=1)
    lam_w = _layer_lambdas(lambda_w, depth)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__} {bias!r}")
    total, K = float(sizes.sum()), len(sizes)
    if bias:
        if not bool((sizes == sizes[0]).all()):
            raise ValueError(f"bias=True is solved here for balanced classes only, got class_sizes "
                             f"{sizes.tolist()}")
        n = float(sizes[0])
        a_star = _optimal_a(n, total, depth, lam_w, lam_h)
        phi = per_direction_objective(torch.tensor([a_star], dtype=DTYPE), n, total, depth=depth,
                                      lambda_w=lam_w,
                                      lambda_h=lam_h)
        a = torch.tensor([a_star] * (K - 1) + [0.0], dtype=DTYPE)
        return MSEOptimum(sizes, depth, lam_w, lam_h, True, a, float((K - 1) * phi[0]))
    a = torch.tensor([_optimal_a(float(n), total, depth, lam_w, lam_h) for n in sizes], dtype=DTYPE)
    objective = sum(float(per_direction_objective(a[k:k + 1], float(sizes[k]), total, depth=depth,
                                                  lambda_w=lam_w,
                                                  lambda_h=lam_h)[0]) for k in range(K))
    return MSEOptimum(sizes, depth, lam_w, lam_h, False, a, objective)


MAX_STATIONARY_CLASSES = 20


def stationary_objectives(class_sizes, *, depth: int, lambda_w, lambda_h) -> torch.Tensor:
    """The objectives of the MSE (no bias) critical points with ``WWᵀ`` diagonal where each class direction
    sits at 0 or at its largest stationary point (:func:`largest_stationary_root`): ``Σ_k φ_k(a_k)`` over
    all such choices, sorted, duplicates kept [2^K at most]. For ``M ≥ 2`` these are the local minima
    gradient descent can end at; the smallest is ``f*``. At most ``MAX_STATIONARY_CLASSES`` (20)
    classes: beyond that the 2^K values would not fit in memory (a ValueError)."""
    sizes = _class_sizes(class_sizes)
    if sizes.numel() > MAX_STATIONARY_CLASSES:
        raise ValueError(f"class_sizes must name at most {MAX_STATIONARY_CLASSES} classes here (2^K values), "
                         f"got {sizes.numel()}")
    depth = check_int("depth", depth, low=1)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    total = float(sizes.sum())
    values = torch.zeros(1, dtype=DTYPE)
    for n in sizes.tolist():
        root = largest_stationary_root(n, total, depth=depth, lambda_w=lambda_w, lambda_h=lam_h)
        options = torch.tensor([0.0, root] if root > 0 else [0.0], dtype=DTYPE)
        phi = per_direction_objective(options, n, total, depth=depth, lambda_w=lambda_w, lambda_h=lam_h)
        values = (values[:, None] + phi[None, :]).flatten()
    return values.sort().values


# ----------------------------------------------------------------------------------------------------
# cross-entropy, balanced: two explicit candidates

@dataclass(frozen=True)
class CECandidate:
    """A candidate critical point of the balanced CE deep linear UFM, reduced to one scalar.

    ``objective`` is the full model's objective there, ``scale`` the optimal scalar (the margin ``ζ`` of the
    ETF ``Z = ζP``, or ``ρ`` of the square ``Z_jk = ρ cos(π(j−k)/2)``), ``logits`` the K×K matrix ``Z = W H̄``
    (column k: the logits of class k)."""

    kind: str
    objective: float
    scale: float
    logits: torch.Tensor


def _ce_beta(class_size: float, K: int, depth: int, lam_w: tuple, lam_h: float) -> tuple[float, float]:
    """``β = (M+1)/2 (Π_i λ_{W_i} · n λ_H)^{1/(M+1)}`` and ``p = 2/(M+1)``."""
    log_prod = sum(math.log(v) for v in lam_w) + math.log(class_size * lam_h)
    return (depth + 1) / 2 * math.exp(log_prod / (depth + 1)), 2.0 / (depth + 1)


def ce_candidate(kind: str, class_size, num_classes: int = 4, *, depth: int, lambda_w,
                 lambda_h) -> CECandidate:
    """The best member of a one-parameter family of balanced CE configurations (no bias).

    ``kind="etf"``: ``Z = ζ P`` (``P = I − 11ᵀ/K``), objective ``log(1 + (K−1)e^{−ζ}) + β(K−1)ζ^p``;
    ``kind="square"`` (``K = 4`` only): ``Z_jk = ρ cos(π(j−k)/2)``, singular values ``2ρ, 2ρ``, objective
    ``2 log(1 + e^{−ρ}) + 2β(2ρ)^p``; ``p = 2/(M+1)``, ``β = (M+1)/2 (Π λ_{W_i} · nλ_H)^{1/(M+1)}``. The
    scalar
    is minimised globally over ``[0, 60]`` (grid, then golden section), so ``scale = 0`` is possible.
    """
    kind = check_choice("kind", kind, ("etf", "square"))
    n = check_real("class_size", class_size, low=0, low_open=True)
    K = check_int("num_classes", num_classes, low=2)
    if kind == "square" and K != 4:
        raise ValueError(f"the square candidate is defined for num_classes = 4, got {K}")
    depth = check_int("depth", depth, low=1)
    lam_w = _layer_lambdas(lambda_w, depth)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    beta, p = _ce_beta(n, K, depth, lam_w, lam_h)
    if kind == "etf":
        F = lambda s: math.log1p((K - 1) * math.exp(-s)) + beta * (K - 1) * s**p  # noqa: E731
    else:
        F = lambda s: 2 * math.log1p(math.exp(-s)) + 2 * beta * (2 * s) ** p     # noqa: E731
    grid = np.linspace(0.0, 60.0, 1201)
    values = [F(s) for s in grid]
    j = int(np.argmin(values))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        x1, x2 = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if F(x1) < F(x2):
            hi = x2
        else:
            lo = x1
    s = 0.5 * (lo + hi)
    if F(0.0) <= F(s):
        s = 0.0
    if kind == "etf":
        Z = s * (torch.eye(K, dtype=DTYPE) - 1.0 / K)
    else:
        idx = torch.arange(K, dtype=DTYPE)
        Z = s * torch.cos(math.pi * (idx[:, None] - idx[None, :]) / 2).round()
    return CECandidate(kind, float(F(s)), float(s), Z)


@dataclass(frozen=True)
class DeformedSquare:
    """The best "deformed square" of the balanced CE deep linear UFM with a last-layer bias (K = 4).

    The four classes form two antipodal pairs: pair A (classes 0, 2) has logits
    ``Z_A = s_A (e₀ − e₂)(e₀ − e₂)ᵀ`` and bias ``+b``, pair B (classes 1, 3) ``Z_B = s_B (e₁ − e₃)(e₁ − e₃)ᵀ``
    and bias ``−b``; ``s_A = s_B`` with
    ``b = 0`` is the square of :func:`ce_candidate`. Fields: ``objective`` (the full model's objective),
    ``weak`` and ``strong`` (``s_A ≤ s_B``), ``bias_gap`` (``2b ≥ 0``, the weak pair's bias minus the strong
    pair's), ``logits`` [4, 4] ``Z = W H̄`` (column k: class k's logits) and ``bias`` [4].
    """

    objective: float
    weak: float
    strong: float
    bias_gap: float
    logits: torch.Tensor
    bias: torch.Tensor


def _minimise_on(F, lo: float, hi: float, points: int) -> float:
    """The minimiser of a scalar ``F`` on ``[lo, hi]``: the best of ``points`` grid points, refined by golden
    section between its neighbours; ``lo`` itself if no interior point does better."""
    grid = np.linspace(lo, hi, points)
    j = int(np.argmin([F(s) for s in grid]))
    a, c = grid[max(j - 1, 0)], grid[min(j + 1, points - 1)]
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(60):                                    # the bracket shrinks by 0.618⁶⁰ ≈ 3e-13
        x1, x2 = c - golden * (c - a), a + golden * (c - a)
        if F(x1) < F(x2):
            c = x2
        else:
            a = x1
    s = 0.5 * (a + c)
    return lo if F(lo) <= F(s) else s


def deformed_square(class_size, *, depth: int, lambda_w, lambda_h) -> DeformedSquare:
    """The best deformed square (see :class:`DeformedSquare`) for balanced classes of ``class_size``.

    Per sample, a pair with scale ``s`` and bias ``+b`` (the other pair's ``−b``) has cross-entropy
    ``log(1 + e^{−2s} + 2e^{−s−2b})``; the penalty of the balanced factorisation is ``β(2s)^p`` per pair
    (``p``, ``β`` as in :func:`ce_candidate`). So the objective is ``g(s_A, b) + g(s_B, −b)`` with
    ``g(s, b) = ½ log(1 + e^{−2s} + 2e^{−s−2b}) + β(2s)^p``: for each ``b`` the two scales are separate
    one-dimensional problems, and ``b`` is a third (grid and golden section on ``[0, 10]``, scales on
    ``[0, 60]``). At ``depth = 1`` (``p = 1``) the optimum is the square (``b = 0``); deeper, the concave
    ``s^p`` makes unequal pairs cheaper and the bias pays for the weak pair.
    """
    n = check_real("class_size", class_size, low=0, low_open=True)
    depth = check_int("depth", depth, low=1)
    lam_w = _layer_lambdas(lambda_w, depth)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    beta, p = _ce_beta(n, 4, depth, lam_w, lam_h)

    log2 = math.log(2)

    def g(s: float, b: float) -> float:
        terms = (0.0, -2 * s, log2 - s - 2 * b)            # log-sum-exp of the three, without overflow
        top = max(terms)
        cross_entropy = top + math.log(sum(math.exp(x - top) for x in terms))
        return 0.5 * cross_entropy + beta * (2 * s) ** p

    def best_scale(b: float) -> float:
        return _minimise_on(lambda s: g(s, b), 0.0, 60.0, 241)

    def pair_objective(b: float) -> float:
        return g(best_scale(b), b) + g(best_scale(-b), -b)

    b = _minimise_on(pair_objective, 0.0, 10.0, 51)
    weak, strong = best_scale(b), best_scale(-b)
    pair_a = torch.tensor([1.0, 0.0, -1.0, 0.0], dtype=DTYPE)
    pair_b = torch.tensor([0.0, 1.0, 0.0, -1.0], dtype=DTYPE)
    logits = weak * torch.outer(pair_a, pair_a) + strong * torch.outer(pair_b, pair_b)
    bias = torch.tensor([b, -b, b, -b], dtype=DTYPE)
    return DeformedSquare(float(pair_objective(b)), weak, strong, 2 * b, logits, bias)


def balanced_factors(Z, *, depth: int, lambda_w, lambda_h_eff, width: int):
    """A balanced factorisation ``Z = W_M⋯W_1 H̄`` of a K×K matrix with ``M + 1`` factors that minimises
    ``Σ_i (λ_{W_i}/2)‖W_i‖² + (λ_{H,eff}/2)‖H̄‖²`` among factorisations: each factor carries
    ``(μ̄/μ_i)^{1/2} S^{1/(M+1)}`` of the singular values ``S`` (``μ`` = the M+1 weights, ``μ̄`` their geometric
    mean). Returns ``(layers, Hbar)``: layers [d, d] … [K, d] and ``Hbar`` [d, K] (``width`` = d ≥ K)."""
    Z = check_tensor("Z", Z, ndim=2, dtype=DTYPE)
    K = Z.shape[0]
    if Z.shape[1] != K:
        raise ValueError(f"Z must be square (K×K), got shape {list(Z.shape)}")
    depth = check_int("depth", depth, low=1)
    lam_w = _layer_lambdas(lambda_w, depth)
    lam_h = check_real("lambda_h_eff", lambda_h_eff, low=0, low_open=True)
    width = check_int("width", width, low=K)
    U, S, Vt = torch.linalg.svd(Z)
    # a rounding-level singular value is not a direction (S^{1/(M+1)} would inflate it)
    S = torch.where(S > 1e-12 * S.max(), S, torch.zeros_like(S))
    mus = (lam_h, *lam_w)                                  # H̄ first, then W_1 … W_M
    mu_bar = math.exp(sum(math.log(m) for m in mus) / (depth + 1))
    root = S ** (1.0 / (depth + 1))
    embed = torch.zeros(width, K, dtype=DTYPE)
    embed[:K, :K] = torch.eye(K, dtype=DTYPE)             # the first K coordinates of R^d
    Hbar = embed @ (math.sqrt(mu_bar / mus[0]) * torch.diag(root) @ Vt)
    layers = []
    for i in range(1, depth + 1):
        core = math.sqrt(mu_bar / mus[i]) * torch.diag(root)
        if i == depth:
            layers.append(U @ core @ embed.T)
        else:
            layers.append(embed @ core @ embed.T)
    return layers, Hbar


def ce_critical_point(candidate: CECandidate, class_size: int, *, depth: int, lambda_w, lambda_h,
                      width: int = 8):
    """The candidate built in the full CE model: ``(layers, H, labels)`` with every sample of class k at
    ``h̄_k`` (layers as [1, ·, ·] batches for :func:`ufm_objective_and_grads`)."""
    if not isinstance(candidate, CECandidate):
        raise TypeError(f"candidate must be a CECandidate, got {type(candidate).__name__}")
    n = check_int("class_size", class_size, low=1)
    depth = check_int("depth", depth, low=1)
    lam_w = _layer_lambdas(lambda_w, depth)
    lam_h = check_real("lambda_h", lambda_h, low=0, low_open=True)
    K = candidate.logits.shape[0]
    layers, Hbar = balanced_factors(candidate.logits, depth=depth, lambda_w=lam_w, lambda_h_eff=n * lam_h,
                                    width=width)
    labels = labels_for([n] * K)
    H = Hbar[:, labels]
    return [w[None] for w in layers], H[None], labels


# ----------------------------------------------------------------------------------------------------
# metrics

@dataclass(frozen=True)
class NCMetrics:
    """Neural-collapse metrics at one layer ``j`` (features ``W_j⋯W_1 H``, classifier ``W_M⋯W_{j+1}``).

    nc1 : ``tr(Σ_W Σ_B†)/K`` (≥ 0, clamped): within-class spread over between-class spread.
    nc2_w, nc2_h : ``‖G/‖G‖_F − T/‖T‖_F‖_F`` for ``G = WWᵀ`` (classifier) and ``G = H̄ᵀH̄`` (class means, not
        centred), against the reference ``T``.
    nc3 : ``‖W/‖W‖_F − H̄ᵀ/‖H̄‖_F‖_F`` (references ``"orthogonal"``/``"simplex"``), or the same with every row
        of ``W`` and every class mean normalised to length 1 (reference ``"diagonal"``: self-duality of the
        directions when lengths differ by class).
    """

    nc1: float
    nc2_w: float
    nc2_h: float
    nc3: float


def labels_for(class_sizes) -> torch.Tensor:
    """[N] the labels ``0…0 1…1 …`` of ``n_k`` samples per class (int64)."""
    sizes = _class_sizes(class_sizes)
    return torch.repeat_interleave(torch.arange(len(sizes)), sizes.long())


def _reference(kind: str, G: torch.Tensor) -> torch.Tensor:
    K = G.shape[0]
    if kind == "orthogonal":
        return torch.eye(K, dtype=G.dtype)
    if kind == "simplex":
        return torch.eye(K, dtype=G.dtype) - 1.0 / K
    return torch.diag(torch.diagonal(G))


def _nc2(G: torch.Tensor, kind: str) -> float:
    T = _reference(kind, G)
    return float((G / G.norm() - T / T.norm()).norm())


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its norm; a zero row (a collapsed class) stays zero."""
    norms = x.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, x / norms.clamp(min=torch.finfo(x.dtype).tiny), torch.zeros_like(x))


def nc_metrics(layers, H, labels, *, reference: str = "orthogonal") -> list[NCMetrics]:
    """NC1, NC2 and NC3 at every layer ``j = 0 … M−1`` of one trained model.

    Parameters
    ----------
    layers : sequence of M tensors
        ``W_1`` [d_1, d], …, ``W_M`` [K, d_{M−1}].
    H : Tensor [d, N]
        Features, one column per sample.
    labels : Tensor [N]
        Class of each sample, in ``0 … K−1`` (every class present).
    reference : {"orthogonal", "simplex", "diagonal"}
        The frame NC2 compares with: ``I`` (no bias, balanced), ``I − 11ᵀ/K`` (bias, balanced: the simplex
        ETF), or the Gram matrix's own diagonal (no bias, imbalanced: orthogonal directions, lengths free;
        check the lengths separately). With ``"diagonal"``, NC3 normalises each classifier row and each
        class mean separately; a class whose row or mean is exactly zero (a class that has collapsed to
        zero, minority collapse) keeps it at zero, so a class with both zero adds 0 to NC3 and a class
        with only one of them zero adds 1 (instead of NaN).

    Returns
    -------
    list of NCMetrics, one per layer (``[0]`` is ``H`` itself with the whole product as classifier).
    """
    layers = [check_tensor(f"layers[{i}]", w, ndim=2, dtype=DTYPE) for i, w in enumerate(layers)]
    if not layers:
        raise ValueError("layers must hold at least one weight matrix")
    H = check_tensor("H", H, ndim=2, dtype=DTYPE)
    reference = check_choice("reference", reference, ("orthogonal", "simplex", "diagonal"))
    labels = _integer_labels(labels)
    if labels.ndim != 1 or labels.shape[0] != H.shape[1]:
        raise ValueError(f"labels must have shape [N] = [{H.shape[1]}], got {list(labels.shape)}")
    K = layers[-1].shape[0]
    if labels.min() < 0 or labels.max() >= K or len(torch.unique(labels)) != K:
        raise ValueError(f"labels must take every value 0 … {K - 1} (K from the last layer), got "
                         f"{torch.unique(labels).tolist()}")
    for i in range(1, len(layers)):
        if layers[i].shape[1] != layers[i - 1].shape[0]:
            raise ValueError(f"layers[{i}] has {layers[i].shape[1]} columns but layers[{i - 1}] has "
                             f"{layers[i - 1].shape[0]} rows")
    if layers[0].shape[1] != H.shape[0]:
        raise ValueError(f"layers[0] has {layers[0].shape[1]} columns but H has {H.shape[0]} rows")
    onehot = torch.nn.functional.one_hot(labels.long(), K).to(DTYPE)          # [N, K]
    counts = onehot.sum(0)
    out = []
    feats = H
    for j in range(len(layers)):
        if j > 0:
            feats = layers[j - 1] @ feats
        classifier = layers[-1]
        for w in reversed(layers[j:-1]):
            classifier = classifier @ w
        means = feats @ onehot / counts                                       # [d_j, K]
        centred = feats - means[:, labels]                                    # two passes: centre first
        sigma_w = centred @ centred.T / feats.shape[1]
        between = means - means.mean(1, keepdim=True)
        sigma_b = between @ between.T / K
        nc1 = max(float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True))) / K, 0.0)
        nc2_w = _nc2(classifier @ classifier.T, reference)
        nc2_h = _nc2(means.T @ means, reference)
        if reference == "diagonal":
            rows = _unit_rows(classifier)
            cols = _unit_rows(means.T)
            nc3 = float((rows - cols).norm())
        else:
            nc3 = float((classifier / classifier.norm() - means.T / means.norm()).norm())
        out.append(NCMetrics(nc1, nc2_w, nc2_h, nc3))
    return out


# ----------------------------------------------------------------------------------------------------
# training

def _lambda_w_table(value, depth: int) -> torch.Tensor:
    """``lambda_w`` as a [B, M] tensor: a number (B = 1), a list/tuple of M numbers (one per layer, B = 1),
    a 1-D tensor [B] (one value per model, all layers) or a 2-D tensor [B, M]."""
    if isinstance(value, torch.Tensor | np.ndarray) and np.ndim(value) >= 1:
        t = check_tensor("lambda_w", value, dtype=DTYPE)
        if t.ndim == 1:
            t = t[:, None].expand(t.shape[0], depth).clone()
        if t.ndim != 2 or t.shape[1] != depth:
            raise ValueError(f"lambda_w as a tensor must be [batch] or [batch, {depth}], got {list(t.shape)}")
        if (t <= 0).any():
            raise ValueError(f"lambda_w must be positive, got a minimum of {t.min().item():.4g}")
        return t
    return torch.tensor(_layer_lambdas(value, depth), dtype=DTYPE)[None]


def _lambda_h_table(value) -> torch.Tensor:
    """``lambda_h`` as a [B] tensor: a number (B = 1) or a 1-D tensor [B]."""
    if isinstance(value, torch.Tensor | np.ndarray) and np.ndim(value) >= 1:
        t = check_tensor("lambda_h", value, ndim=1, dtype=DTYPE)
        if (t <= 0).any():
            raise ValueError(f"lambda_h must be positive, got a minimum of {t.min().item():.4g}")
        return t
    return torch.tensor([check_real("lambda_h", value, low=0, low_open=True)], dtype=DTYPE)


def ufm_objective_and_grads(layers, H, b, labels, lambda_w, lambda_h, *, loss: str = "mse",
                            grads: bool = True):
    """The objective of a batch of B deep linear UFMs and its gradients (written out, no autograd).

    Parameters
    ----------
    layers : list of M tensors [B, d_i, d_{i−1}]
    H : Tensor [B, d, N]
    b : Tensor [B, K] or None
    labels : Tensor [N]
    lambda_w : Tensor [B, M];  lambda_h : Tensor [B]
    loss : {"mse", "ce"}

    Returns
    -------
    (f [B], grads) with grads a list ``[dW_1, …, dW_M, dH, db]`` (``db`` None without bias), or
    ``(f, None)`` when ``grads`` is False.
    """
    loss = check_choice("loss", loss, ("mse", "ce"))
    if isinstance(layers, torch.Tensor) or not isinstance(layers, Sequence) or not layers:
        raise TypeError(f"layers must be a non-empty list of tensors [B, d_i, d_(i-1)], got "
                        f"{type(layers).__name__}")
    layers = [check_tensor(f"layers[{i}]", w, ndim=3, dtype=DTYPE) for i, w in enumerate(layers)]
    H = check_tensor("H", H, ndim=3, dtype=DTYPE)
    B, K, N = H.shape[0], layers[-1].shape[1], H.shape[2]
    below = H.shape[1]
    for i, w in enumerate(layers):
        if w.shape[0] != B or w.shape[2] != below:
            raise ValueError(f"layers[{i}] must have shape [{B}, *, {below}] (batch of H, rows of the layer "
                             f"below), got {list(w.shape)}")
        below = w.shape[1]
    if b is not None:
        b = check_tensor("b", b, ndim=2, dtype=DTYPE)
        if list(b.shape) != [B, K]:
            raise ValueError(f"b must have shape [{B}, {K}], got {list(b.shape)}")
    labels = _integer_labels(labels)
    if labels.ndim != 1 or labels.shape[0] != N:
        raise ValueError(f"labels must have shape [N] = [{N}], got {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= K:
        raise ValueError(f"labels must lie in 0 … {K - 1} (K rows in the last layer), got values "
                         f"{labels.min().item()} … {labels.max().item()}")
    lambda_w = check_tensor("lambda_w", lambda_w, ndim=2, dtype=DTYPE, positive=True)
    lambda_h = check_tensor("lambda_h", lambda_h, ndim=1, dtype=DTYPE, positive=True)
    if list(lambda_w.shape) != [B, len(layers)]:
        raise ValueError(f"lambda_w must have shape [{B}, {len(layers)}], got {list(lambda_w.shape)}")
    if list(lambda_h.shape) != [B]:
        raise ValueError(f"lambda_h must have shape [{B}], got {list(lambda_h.shape)}")
    return _objective_and_grads(layers, H, b, labels.long(), lambda_w, lambda_h, loss, grads)


def _objective_and_grads(layers, H, b, labels, lambda_w, lambda_h, loss: str, grads: bool):
    """:func:`ufm_objective_and_grads` without the input checks (the training loop calls it every step)."""
    K, N = layers[-1].shape[1], H.shape[2]
    acts = [H]
    for w in layers:
        acts.append(torch.bmm(w, acts[-1]))
    Z = acts[-1] if b is None else acts[-1] + b[:, :, None]
    if loss == "mse":
        Y = torch.zeros(K, N, dtype=H.dtype)
        Y[labels, torch.arange(N)] = 1.0
        R = Z - Y
        fit = (R * R).sum((1, 2)) / (2 * N)
        G = R / N
    else:
        logp = torch.log_softmax(Z, dim=1)
        fit = -logp[:, labels, torch.arange(N)].sum(1) / N
        P = logp.exp()
        P[:, labels, torch.arange(N)] -= 1.0
        G = P / N
    penalty = sum(lambda_w[:, i] / 2 * (w * w).sum((1, 2)) for i, w in enumerate(layers))
    f = fit + penalty + lambda_h / 2 * (H * H).sum((1, 2))
    if not grads:
        return f, None
    db = G.sum(2) if b is not None else None
    out = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        out[i] = torch.bmm(G, acts[i].transpose(1, 2)) + lambda_w[:, i, None, None] * layers[i]
        G = torch.bmm(layers[i].transpose(1, 2), G)
    dH = G + lambda_h[:, None, None] * H
    return f, [*out, dH, db]


@dataclass(frozen=True)
class UFMRun:
    """A batch of B trained deep linear UFMs (:func:`train_ufm`).

    Attributes
    ----------
    layers : list of M tensors [B, d_i, d_{i−1}]
    H : Tensor [B, d, N]
    b : Tensor [B, K] or None
    labels : Tensor [N]
    lambda_w : Tensor [B, M];  lambda_h : Tensor [B]
    loss : str
    objective : Tensor [B]   the final objective
    grad_norm : Tensor [B]   the norm of the full gradient at the end
    """

    layers: list
    H: torch.Tensor
    b: torch.Tensor | None
    labels: torch.Tensor
    lambda_w: torch.Tensor
    lambda_h: torch.Tensor
    loss: str
    objective: torch.Tensor
    grad_norm: torch.Tensor

    @property
    def batch(self) -> int:
        return self.H.shape[0]

    def product(self) -> torch.Tensor:
        """[B, K, d] the product ``W_M⋯W_1``."""
        P = self.layers[-1]
        for w in reversed(self.layers[:-1]):
            P = torch.bmm(P, w)
        return P

    def class_a(self) -> torch.Tensor:
        """[B, K] ``‖w_k‖²``, the squared norm of the product's row k (``a_k`` when ``WWᵀ`` is diagonal)."""
        return (self.product() ** 2).sum(2)

    def singular_values(self) -> torch.Tensor:
        """[B, K] the singular values of the product, largest first."""
        return torch.linalg.svdvals(self.product())

    def metrics(self, index: int, reference: str = "orthogonal") -> list[NCMetrics]:
        """:func:`nc_metrics` of model ``index`` at every layer."""
        index = check_int("index", index, low=0, high=self.batch - 1)
        return nc_metrics([w[index] for w in self.layers], self.H[index], self.labels, reference=reference)

    def class_means(self, index: int) -> torch.Tensor:
        """[d, K] the class means of ``H`` for model ``index``."""
        index = check_int("index", index, low=0, high=self.batch - 1)
        onehot = torch.nn.functional.one_hot(self.labels, self.layers[-1].shape[1]).to(DTYPE)
        return self.H[index] @ onehot / onehot.sum(0)


def train_ufm(class_sizes, *, depth: int, lambda_w, lambda_h, loss: str = "mse", bias: bool = False,
              width: int = 8, steps: int = 5000, lr: float = 0.5, momentum: float = 0.9,
              init: str = "gaussian", init_scale: float = 0.3, batch: int | None = None,
              seed: int | None = None) -> UFMRun:
    """Train B independent deep linear UFMs by full-batch gradient descent with heavy-ball momentum.

    Parameters
    ----------
    class_sizes : sequence of int [K]
    depth : int
        ``M``, number of weight matrices (each [width, width], the last [K, width]).
    lambda_w : float, list/tuple of M floats (per layer), Tensor [B] (one value per model, all layers) or
        Tensor [B, M]
    lambda_h : float or Tensor [B]
    loss : {"mse", "ce"}
    bias : bool
        Train an unregularised last-layer bias (initialised at 0).
    width : int
        ``d = d_i ≥ K``.
    steps, lr, momentum :
        ``v ← momentum·v + ∇f``, ``θ ← θ − lr·v`` (torch's SGD with momentum), ``steps`` times.
    init : {"gaussian", "orthogonal"}
        ``"gaussian"``: every entry of every parameter N(0, init_scale²). ``"orthogonal"``: each ``W_i`` is
        ``init_scale`` times a random matrix with orthonormal rows, and ``H`` is N(0, 0.3²).
    batch : int, optional
        Number of models B (default: from the λ tensors, else 1); the models differ by their random
        start (one generator, drawn in order) and by their λ.
    seed : int, optional
        Seed of the starts (``None``: the stream ``"collapse.train_ufm"`` of ``THEORYLAB_SEED``).

    Returns
    -------
    UFMRun (float64, on the CPU).
    """
    sizes = _class_sizes(class_sizes)
    depth = check_int("depth", depth, low=1)
    loss = check_choice("loss", loss, ("mse", "ce"))
    init = check_choice("init", init, ("gaussian", "orthogonal"))
    width = check_int("width", width, low=len(sizes))
    steps = check_int("steps", steps, low=0)
    lr = check_real("lr", lr, low=0, low_open=True)
    momentum = check_real("momentum", momentum, low=0, high=1, high_open=True)
    init_scale = check_real("init_scale", init_scale, low=0, low_open=True)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__} {bias!r}")
    lam_w, lam_h = _lambda_w_table(lambda_w, depth), _lambda_h_table(lambda_h)
    B = max(lam_w.shape[0], lam_h.shape[0]) if batch is None else check_int("batch", batch, low=1)
    for name, table in (("lambda_w", lam_w), ("lambda_h", lam_h)):
        if table.shape[0] not in (1, B):
            raise ValueError(f"{name} describes {table.shape[0]} models but the batch has {B}")
    lam_w, lam_h = lam_w.expand(B, depth).clone(), lam_h.expand(B).clone()
    K, N = len(sizes), int(sizes.sum())
    labels = labels_for(sizes)
    gen = make_generator(resolve_seed(seed, "collapse.train_ufm"))
    shapes = [(width, width)] * (depth - 1) + [(K, width)]
    layers = []
    for rows, cols in shapes:
        if init == "gaussian":
            layers.append(init_scale * torch.randn(B, rows, cols, generator=gen, dtype=DTYPE))
        else:
            q, _ = torch.linalg.qr(torch.randn(B, cols, cols, generator=gen, dtype=DTYPE))
            layers.append(init_scale * q[:, :rows, :].contiguous())
    h_scale = init_scale if init == "gaussian" else 0.3
    H = h_scale * torch.randn(B, width, N, generator=gen, dtype=DTYPE)
    b = torch.zeros(B, K, dtype=DTYPE) if bias else None
    params = [*layers, H] + ([b] if bias else [])
    velocity = [torch.zeros_like(p) for p in params]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # thousands of tiny products: threads only add overhead
    try:
        for _ in range(steps):
            _, g = _objective_and_grads(params[:depth], params[depth], b, labels, lam_w, lam_h, loss, True)
            g = g if bias else g[:-1]
            for p, v, gi in zip(params, velocity, g, strict=True):
                v.mul_(momentum).add_(gi)
                p.sub_(lr * v)
        f, g = _objective_and_grads(params[:depth], params[depth], b, labels, lam_w, lam_h, loss, True)
    finally:
        torch.set_num_threads(threads)
    g = g if bias else g[:-1]
    grad_norm = torch.sqrt(sum((gi * gi).flatten(1).sum(1) for gi in g))
    return UFMRun(params[:depth], params[depth], b, labels, lam_w, lam_h, loss, f, grad_norm)
