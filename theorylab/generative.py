"""Generative vs discriminative linear classifiers (chapter 5): Gaussian naive Bayes and logistic regression.

Notation and shapes: ``m`` training samples, ``n`` features, ``K`` classes; ``X`` [m, n] features (float64),
``y`` [m] integer labels in ``0 .. K − 1``. Both classifiers are linear-softmax,
``p(y = k | x) = softmax(W x + b)_k`` with ``W`` [K, n] and ``b`` [K]:

* :class:`GaussianNaiveBayes` fits the generative model ``x | y = k ~ N(μ_k, diag(σ²))`` (one variance per
  feature, shared by the classes) by maximum likelihood and reads ``W`` and ``b`` off it;
* :class:`LogisticRegression` fits ``W`` and ``b`` directly: multinomial, L2-penalised, minimising
  ``C Σ_i CE_i + ½‖W‖_F²`` (scikit-learn's objective; the intercept is not penalised).

Data: :func:`gaussian_mixture` samples the Gaussian mixtures of the chapter, :class:`Mixture` holds one and
computes exact errors of linear classifiers under it (Bayes, NB's and LR's asymptotic errors).
Learning curves: :func:`random_orders`, :func:`nb_prefix_fits` (every prefix of an order in one pass
through :func:`theorylab.kernels.prefix_class_stats`), :func:`lr_prefix_fits` (the logistic regressions
of all orders at one size as one batched L-BFGS problem, size after size with warm starts),
:func:`test_errors`; :func:`samples_to_reach` finds the training-set size a learner needs;
:func:`nb_error_prediction` is naive Bayes's learning curve in closed form (valid from
:func:`nb_prediction_start` on) and :func:`nb_error_simulation` a Monte Carlo of it;
:func:`lr_error_coefficient` is LR's asymptotic excess 0–1 error and :func:`logistic_calibration_inverse`
the bound of 0–1 excess by logistic excess; :func:`explore_table` / :func:`stored_explore_table` hold the
chapter's Explore panel. Errors are fractions in [0, 1].
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from .kernels import prefix_class_stats
from .seeding import make_generator, resolve_seed
from .utils.threads import single_threaded
from .utils.validation import check_int, check_real, check_tensor

DTYPE = torch.float64
EPS = torch.finfo(DTYPE).eps

__all__ = [
    "GaussianNaiveBayes", "LogisticRegression", "Mixture", "mixture", "gaussian_mixture",
    "gaussian_posterior", "nb_parameters", "fit_logistic_many", "random_orders", "nb_prefix_fits",
    "lr_prefix_fits", "test_errors", "learning_curves", "samples_to_reach", "nb_error_prediction",
    "nb_error_simulation", "nb_prediction_start", "lr_error_coefficient", "logistic_calibration_inverse",
    "first_crossing", "bootstrap_crossings", "explore_table", "stored_explore_table", "write_explore_table",
    "pretrained_digit_features",
]


# ----------------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------------

def _log_softmax(z: torch.Tensor) -> torch.Tensor:
    # ``torch.log_softmax`` and ``torch.softmax`` take milliseconds on small CPU tensors when several
    # threads are busy (seen with torch 2.13 on 2 cores); ``logsumexp`` does not.
    return z - torch.logsumexp(z, dim=-1, keepdim=True)


def _features(X, name: str = "X", n_features: int | None = None) -> torch.Tensor:
    if not isinstance(X, torch.Tensor | np.ndarray | list | tuple):
        raise TypeError(f"{name} must be an array or a torch.Tensor, got {type(X).__name__}")
    X = torch.as_tensor(X)
    if not (X.is_floating_point() or X.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    X = X.to(DTYPE)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must have shape [m, n] with m, n ≥ 1, got {list(X.shape)}")
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} must be finite, got {int((~torch.isfinite(X)).sum())} NaN or infinite "
                         f"entries")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} features (as in fit), got shape {list(X.shape)}")
    return X


def _labels(y, m: int, name: str = "y") -> tuple[torch.Tensor, int]:
    """Labels as int64 [m]; they must be exactly 0 .. K − 1 with K ≥ 2 (every class present)."""
    y = torch.as_tensor(y)
    if y.is_floating_point():
        if not torch.isfinite(y).all() or (y != y.round()).any():
            raise ValueError(f"{name} must hold integer class labels, got {y[:5].tolist()}…")
    elif y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    y = y.to(torch.int64)
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"{name} must have shape [{m}] (one label per row of X), got {list(y.shape)}")
    classes = torch.unique(y)
    if classes.numel() < 2:
        raise ValueError(f"{name} must contain at least two classes, got the single class {classes.tolist()}")
    if not torch.equal(classes, torch.arange(classes.numel(), device=classes.device)):
        raise ValueError(f"{name} must hold the labels 0 .. K-1 with every class present, got "
                         f"{classes.tolist()}")
    return y, classes.numel()


def _positive(name: str, value, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (value > 0 and (allow_inf or math.isfinite(value))):
        raise ValueError(f"{name} must be positive{'' if allow_inf else ' and finite'}, got {value!r}")
    return float(value)


def _count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def _warn_unconverged(converged: torch.Tensor, where: str, max_iter: int, tol: float) -> None:
    """A :class:`sklearn.exceptions.ConvergenceWarning` when some logistic fits stopped with a gradient
    above ``tol`` (after ``max_iter`` iterations, or where the line search found no decrease)."""
    missed = int((~converged).sum())
    if missed:
        warnings.warn(f"{where}: {missed} of {converged.numel()} logistic regressions did not converge "
                      f"(largest gradient entry above tol = {tol:g} after max_iter = {max_iter} iterations"
                      f" or a line search without decrease); their coefficients are not the optimum",
                      ConvergenceWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------------
# Naive Bayes
# ----------------------------------------------------------------------------------------------------

def _class_stats(X, y, orders, ends, K):
    """:func:`theorylab.kernels.prefix_class_stats` with the Triton kernel on a GPU and the float64 torch
    reference on a CPU (also under Triton's interpreter: the kernel computes in float32, and the
    estimators here are compared with formulas to 1e-12)."""
    return prefix_class_stats(X, y, orders, ends, K, backend="auto" if X.is_cuda else "torch")


def nb_parameters(counts: torch.Tensor, means: torch.Tensor, variances: torch.Tensor,
                  var_smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Naive Bayes's parameters and its softmax form from per-class statistics (leading dims batched).

    Parameters
    ----------
    counts : Tensor [..., K]
    means, variances : Tensor [..., K, n]
        Per-class means and variances (ddof 0).
    var_smoothing : float
        Added to the pooled variance, relative to its largest entry:
        ``σ² ← σ² + var_smoothing · max_i σ_i²``.

    Returns
    -------
    prior : [..., K]; var : [..., n] (pooled, prior-weighted, smoothed);
    W : [..., K, n] with ``W_ki = μ_ki / σ_i²``; b : [..., K] with ``b_k = log π_k − Σ_i μ_ki² / (2σ_i²)``.
    """
    var_smoothing = check_real("var_smoothing", var_smoothing, low=0)
    counts = check_tensor("counts", counts, dtype=DTYPE, nonnegative=True)
    means = check_tensor("means", means, dtype=DTYPE)
    variances = check_tensor("variances", variances, dtype=DTYPE, nonnegative=True)
    if means.shape != variances.shape or means.ndim < 2 or means.shape[:-1] != counts.shape:
        raise ValueError(f"means and variances must have shape [..., K, n] and counts [..., K], got "
                         f"{list(means.shape)}, {list(variances.shape)} and {list(counts.shape)}")
    m = counts.sum(-1, keepdim=True)
    prior = counts / m
    var = (prior.unsqueeze(-1) * variances).sum(-2)                   # Σ_k π_k Var_k  [..., n]
    top = var.amax(-1, keepdim=True)
    var = var + var_smoothing * torch.where(top > 0, top, torch.ones_like(top))
    W = means / var.unsqueeze(-2)
    b = prior.log() - 0.5 * (means * W).sum(-1)
    return prior, var, W, b


@single_threaded()
def gaussian_posterior(X, prior, means, var) -> torch.Tensor:
    """``p(y = k | x)`` [m, K] by Bayes' rule from the class densities ``N(μ_k, diag(var))`` — the long
    way, without the softmax form (for checking it). ``X`` [m, n], ``prior`` [K] (non-negative),
    ``means`` [K, n], ``var`` [n] (positive); shapes must match exactly (no broadcasting)."""
    X = _features(X)
    means = check_tensor("means", means, ndim=2, dtype=DTYPE)
    K, n = means.shape
    if n != X.shape[1]:
        raise ValueError(f"means must have shape [K, {X.shape[1]}] (one row per class, n as in X), got "
                         f"{list(means.shape)}")
    prior = check_tensor("prior", prior, ndim=1, dtype=DTYPE, nonnegative=True)
    if prior.shape != (K,):      # no silent broadcasting of a length-1 prior
        raise ValueError(f"prior must have shape [{K}] (one entry per row of means), got {list(prior.shape)}")
    var = check_tensor("var", var, ndim=1, dtype=DTYPE)
    if var.shape != (n,) or not bool((var > 0).all()):
        raise ValueError(f"var must have shape [{n}] with positive entries, got shape {list(var.shape)} and "
                         f"minimum {var.min().item():.4g}")
    density = torch.distributions.Normal(means.unsqueeze(0), var.sqrt().unsqueeze(0).unsqueeze(0))
    joint = density.log_prob(X.unsqueeze(1)).sum(-1) + prior.log()
    return _log_softmax(joint).exp()


class _LinearSoftmax(BaseEstimator):
    """Prediction for a fitted ``coef_`` [K, n], ``intercept_`` [K]."""

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")

    @single_threaded()
    def decision_function(self, X) -> torch.Tensor:
        """Logits ``W x + b`` [m, K]."""
        self._check_fitted()
        X = _features(X, n_features=self.coef_.shape[1])
        return X @ self.coef_.T + self.intercept_

    def predict_proba(self, X) -> torch.Tensor:
        """``softmax(W x + b)`` [m, K]."""
        return _log_softmax(self.decision_function(X)).exp()

    def predict(self, X) -> torch.Tensor:
        """The most probable class [m] (int64)."""
        return self.decision_function(X).argmax(-1)

    def error(self, X, y) -> float:
        """Fraction of misclassified samples."""
        X = _features(X)
        y = torch.as_tensor(y).to(torch.int64)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape [{X.shape[0]}], got {list(y.shape)}")
        return (self.predict(X) != y).double().mean().item()


class GaussianNaiveBayes(_LinearSoftmax):
    """Gaussian naive Bayes with one variance per feature shared by all classes.

    The model is ``x | y = k ~ N(μ_k, diag(σ²))``, ``P(y = k) = π_k``. Maximum likelihood gives the class
    frequencies, the class means and the pooled within-class variance
    ``σ_i² = Σ_k π_k Var̂_k(x_i)`` (ddof 0). Its posterior is ``softmax(W x + b)`` with
    ``W_ki = μ_ki / σ_i²`` and ``b_k = log π_k − Σ_i μ_ki² / (2σ_i²)``.

    Parameters
    ----------
    var_smoothing : float
        ``var_smoothing · max_i σ_i²`` is added to every variance (relative, so that a feature that is
        constant in a small sample cannot dominate; scikit-learn's ``GaussianNB`` scales by the largest
        *total* variance instead).

    Attributes
    ----------
    class_prior_ : [K]; means_ : [K, n]; var_ : [n]; coef_ : [K, n]; intercept_ : [K]; n_classes_ : int
    """

    def __init__(self, var_smoothing: float = 1e-9):
        check_real("var_smoothing", var_smoothing, low=0)     # stored as given (scikit-learn's clone)
        self.var_smoothing = var_smoothing

    @single_threaded()
    def fit(self, X, y) -> GaussianNaiveBayes:
        check_real("var_smoothing", self.var_smoothing, low=0)
        X = _features(X)
        y, K = _labels(y, X.shape[0])
        order = torch.arange(X.shape[0], device=X.device).unsqueeze(0)
        ends = torch.tensor([X.shape[0]], device=X.device)
        counts, means, variances = _class_stats(X, y.to(X.device), order, ends, K)
        prior, var, W, b = nb_parameters(counts[0, 0], means[0, 0], variances[0, 0], self.var_smoothing)
        self.n_classes_ = K
        self.class_prior_, self.means_, self.var_ = prior, means[0, 0].to(DTYPE), var
        self.coef_, self.intercept_ = W, b
        return self


# ----------------------------------------------------------------------------------------------------
# Logistic regression: many problems at once
# ----------------------------------------------------------------------------------------------------

def _lbfgs_many(fun: Callable, x0: torch.Tensor, *, max_iter: int, tol: float, history: int = 10):
    """Minimise ``P`` independent smooth functions at once: ``fun(x [P, D]) -> (f [P], g [P, D])``.

    Limited-memory BFGS with a backtracking (Armijo) line search, both batched: every problem keeps its
    own curvature pairs, scaling and step length. The direction uses the compact form of the L-BFGS
    inverse Hessian (Byrd, Nocedal and Schnabel 1994; Nocedal and Wright, eq. 7.24),

        H g = γ g + S p − γ Y w,   w = R⁻¹ Sᵀg,   p = R⁻ᵀ((Dₛ + γ YᵀY) w − γ Yᵀg),

    with ``S``, ``Y`` [P, D, h] the last ``h`` steps and gradient changes, ``R`` the upper triangle of
    ``SᵀY`` and ``Dₛ`` its diagonal: a dozen batched matrix operations per iteration instead of the
    two-loop recursion's ``4h`` vector operations. A problem stops once ``max |g| ≤ tol`` (or when
    the line search finds no decrease). Returns ``(x, iterations, converged)``: ``iterations`` of the
    slowest problem, and ``converged`` [P] (bool) true for the problems whose final gradient has
    ``max |g| ≤ tol`` — false for those stopped by ``max_iter`` or by a line search that found no decrease
    with the gradient still above ``tol``.

    Finished problems leave the batch. If ``fun`` has an attribute ``restrict`` (``fun.restrict(keep)``
    returns the same functions for the problems at positions ``keep`` of ``fun``'s batch, again with a
    ``restrict``), the solver drops them at the first iteration they are done, so they cost nothing
    afterwards; otherwise they stay in the batch with a zero step. Either way every problem follows the
    iterates it would follow alone: its direction, step length and curvature pairs depend on its own
    values only.
    """
    x = x0.clone()
    out = x0.clone()                                      # finished problems are written here
    converged = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
    f, g = fun(x)
    P, D = x.shape
    rows = torch.arange(P, device=x.device)               # the problems still in the batch
    S = x.new_zeros(P, D, 0)
    Y = x.new_zeros(P, D, 0)
    gamma = x.new_ones(P)
    stalled = torch.zeros(P, dtype=torch.bool, device=x.device)
    iterations = 0
    # Per iteration the work on small batches is dominated by the number of tensor operations, not by
    # their size, so operations that cannot change a value (masks that are all true, a fallback no
    # problem needs) are skipped; the arithmetic of every problem is the same as without the skips.
    for iterations in range(1, max_iter + 1):           # noqa: B007 -- the count is returned
        active = (g.abs().amax(1) > tol) & ~stalled
        everyone = bool(active.all())
        if hasattr(fun, "restrict") and not everyone:
            done = ~active                                # drop the finished problems from the batch
            out[rows[done]] = x[done]
            converged[rows[done]] = g[done].abs().amax(1) <= tol
            alive = active.nonzero().squeeze(1)
            rows, x, f, g, S, Y, gamma, stalled = (t[alive] for t in (rows, x, f, g, S, Y, gamma, stalled))
            active = active[alive]
            everyone = True                               # every problem left is running
            fun = fun.restrict(alive) if rows.numel() else None
            if fun is None:
                iterations -= 1
                break
        elif not everyone and not bool(active.any()):
            iterations -= 1
            break
        n_active = rows.numel()
        if S.shape[2] == 0:                               # first step: along −g, at most unit length
            d = -g / g.norm(dim=1, keepdim=True).clamp_min(1.0)
        else:
            St, Yt = S.transpose(1, 2), Y.transpose(1, 2)
            SY = St @ Y                                                             # [P, h, h]
            diag = torch.diagonal(SY, dim1=1, dim2=2)
            R = torch.triu(SY) + torch.diag_embed((diag == 0).to(x.dtype))        # 1 for discarded pairs
            gcol = g.unsqueeze(-1)
            u = St @ gcol                                                           # [P, h, 1]
            gamma3 = gamma[:, None, None]
            v = gamma3 * (Yt @ gcol)
            w = torch.linalg.solve_triangular(R, u, upper=True)
            inner = torch.diag_embed(diag) + gamma3 * (Yt @ Y)
            p = torch.linalg.solve_triangular(R.transpose(1, 2), inner @ w - v, upper=False)
            Hg = gamma[:, None] * g + (S @ p).squeeze(-1) - gamma[:, None] * (Y @ w).squeeze(-1)
            d = -Hg
        slope = (g * d).sum(1)
        bad = slope >= 0                                  # not a descent direction: fall back to −g
        if bool(bad.any()):
            d = torch.where(bad[:, None], -g, d)
            slope = torch.where(bad, -(g * g).sum(1), slope)
        if not everyone:
            d = d * active[:, None]
        t = x.new_ones(n_active)
        slack = 8 * EPS * f.abs()
        for _ in range(60):
            f_new, g_new = fun(x + t[:, None] * d)
            # Armijo, with a few ulps of slack: near the optimum the decrease is below rounding
            ok = f_new <= f + 1e-4 * t * slope + slack
            if not everyone:
                ok = ok | ~active
            if ok.all():
                break
            t = torch.where(ok, t, 0.5 * t)
        else:                                             # no decrease found: freeze these problems
            stalled = stalled | ~ok
            t = torch.where(ok, t, torch.zeros_like(t))
            f_new, g_new = fun(x + t[:, None] * d)
        s = t[:, None] * d
        x = x + s
        yv = g_new - g
        sy = (s * yv).sum(1)
        valid = sy > 1e-12 * s.norm(dim=1) * yv.norm(dim=1)      # keep H positive definite
        gamma = torch.where(valid, sy / (yv * yv).sum(1).clamp_min(1e-300), gamma)
        if not bool(valid.all()):
            keep = valid[:, None].to(x.dtype)
            s, yv = s * keep, yv * keep
        S = torch.cat([S, s.unsqueeze(-1)], 2)[:, :, -history:]
        Y = torch.cat([Y, yv.unsqueeze(-1)], 2)[:, :, -history:]
        f, g = f_new, g_new
    out[rows] = x
    converged[rows] = g.abs().amax(1) <= tol
    return out, iterations, converged


@single_threaded()
def fit_logistic_many(X: torch.Tensor, y: torch.Tensor, n_classes: int, *, C: float = 1.0,
                      sample_weight: torch.Tensor | None = None, init: tuple | None = None,
                      max_iter: int = 1000,
                      tol: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Fit ``P`` multinomial L2 logistic regressions at once (batched L-BFGS, float64).

    Problem ``p`` minimises ``C Σ_i w_pi CE(softmax(W_p x_pi + b_p), y_pi) + ½‖W_p‖_F²``; the solver works
    on that objective divided by ``C Σ_i w_pi`` (a mean loss, so ``tol`` does not depend on ``m``), in
    rescaled variables (see the comment in the code), and stops a problem when the largest entry of its
    gradient in those variables is at most ``tol``.

    Parameters
    ----------
    X : Tensor [P, m, n]; y : integer Tensor [P, m] in ``0 .. n_classes − 1``
    sample_weight : Tensor [P, m], optional
        Non-negative weights (0 drops a sample, to pad problems of different sizes into one batch).
    init : (W [P, K, n], b [P, K]), optional
        Starting point (default zero), e.g. the fit on a smaller training set (a warm start).

    Returns
    -------
    W : [P, K, n]; b : [P, K]; iterations : int (of the slowest problem);
    converged : bool Tensor [P]
        Whether each problem ended with its gradient (in the solver's variables) at most ``tol``; a
        :class:`~sklearn.exceptions.ConvergenceWarning` names how many did not.

    Memory: one float64 copy of ``X`` (centred and rescaled in place) plus ``O(P·m·K + P·K·n)``; when
    problems converge the solver copies the rows of those still running. The full copy stays referenced
    by this function until the solve ends, so from the first drop on the peak is up to two copies.
    """
    X = torch.as_tensor(X)
    if X.ndim != 3 or 0 in X.shape:
        raise ValueError(f"X must have shape [P, m, n] with P, m, n ≥ 1, got {list(X.shape)}")
    if not torch.isfinite(X).all():
        raise ValueError("X must be finite, got NaN or infinite entries")
    W, b, iterations, converged = _fit_logistic(X.to(DTYPE, copy=True), y, n_classes, C=C,
                                                sample_weight=sample_weight, init=init, max_iter=max_iter,
                                                tol=tol)
    _warn_unconverged(converged, "fit_logistic_many", max_iter, tol)
    return W, b, iterations, converged


def _fit_logistic(X: torch.Tensor, y, n_classes: int, *, C: float, sample_weight, init, max_iter: int,
                  tol: float):
    """:func:`fit_logistic_many` on a float64 ``X`` [P, m, n] that it may overwrite (no further copy), without
    the warning: returns ``(W, b, iterations, converged)``."""
    C = _positive("C", C)
    K = _count("n_classes", n_classes, 2)
    _count("max_iter", max_iter)
    _positive("tol", tol)
    P, m, n = X.shape
    y = torch.as_tensor(y, device=X.device).to(torch.int64)
    if tuple(y.shape) != (P, m):
        raise ValueError(f"y must have shape [{P}, {m}], got {list(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= K:
        raise ValueError(f"y must hold labels in [0, {K - 1}], got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    weight = (torch.ones(P, m, dtype=DTYPE, device=X.device) if sample_weight is None
              else torch.as_tensor(sample_weight, dtype=DTYPE, device=X.device))
    if tuple(weight.shape) != (P, m) or bool((weight < 0).any()):
        raise ValueError(f"sample_weight must be non-negative with shape [{P}, {m}], got shape "
                         f"{list(weight.shape)}")
    onehot = torch.nn.functional.one_hot(y, K).to(DTYPE)                       # [P, m, K]
    total_weight = weight.sum(1).clamp_min(1e-12)                              # [P]
    scale = 1.0 / (C * total_weight)                                           # [P]
    # Change of variables: the solver sees centred features, x' = (x − x̄) / r, and variables V = W · diag(r),
    # b' = b + W x̄. The minimiser is the same (the intercept is not penalised, so it absorbs the
    # centring). With more samples than features, r is each feature's standard deviation, so that L-BFGS
    # does not fight features of very different scales (hundreds of iterations otherwise); with fewer,
    # r = 1: the iterates then stay in the span of the samples, where the isotropic penalty keeps the
    # problem well conditioned, and standardising (a few samples give noisy scales) would spoil that.
    mean = (weight.unsqueeze(1) @ X).squeeze(1) / total_weight[:, None]                      # [P, n]
    Xc = X.sub_(mean[:, None, :])                                                             # in place
    second = torch.zeros(P, n, dtype=DTYPE, device=X.device)
    for rows in range(0, m, 4096):                    # Σ_i w_i x_i² in row blocks (no [P, m, n] temporary)
        block = Xc[:, rows: rows + 4096]
        second += (weight[:, None, rows: rows + 4096] @ (block * block)).squeeze(1)
    sd = (second / total_weight[:, None]).sqrt()
    # r is floored at 1/√(C Σw), the spread at which a feature's data curvature (~ sd²/r²) falls to the
    # penalty's (1/(C Σw r²)). Without the floor, a feature nearly constant on a training set (a ReLU unit
    # of the digits features active on one image of hundreds: sd ~ 0.002) gets a penalty a thousand times
    # its data curvature (the solver then stopped at max_iter, gradient ~ 1e-3), and one exactly constant
    # is centred to rounding residue, ~EPS·|x̄|, so that r = sd gave its weight a penalty curvature ~1e33
    # times the others': the first line search found no decrease and the fit froze at its start. Features
    # with sd above the floor (every synthetic design here) are rescaled exactly as before.
    sd = torch.where(total_weight[:, None] > n, torch.maximum(sd, scale.sqrt()[:, None]), torch.ones_like(sd))
    Xc.div_(sd[:, None, :])
    inv_sd2 = sd.pow(-2)

    def objective(Xc, onehot, weight, inv_sd2, scale):
        """The mean objective and its gradient for the problems whose data these are, and a way to keep
        only some of them (the solver drops converged problems; the rows are copied once, at the drop)."""
        Q = Xc.shape[0]

        def fun(v_flat):
            V = v_flat.view(Q, K, n + 1)
            Vw, vb = V[..., :n], V[..., n]                                     # weights, intercept
            logp = _log_softmax(Xc @ Vw.transpose(1, 2) + vb[:, None, :])      # [Q, m, K]
            ce = -(onehot * logp).sum(-1)                                      # [Q, m]
            penalty = Vw * inv_sd2[:, None, :]                                 # ∂(½‖W‖²)/∂V
            f = C * (weight * ce).sum(1) + 0.5 * (Vw * penalty).sum((1, 2))
            resid = (logp.exp() - onehot) * weight.unsqueeze(-1)               # [Q, m, K]
            grad = torch.cat([C * resid.transpose(1, 2) @ Xc + penalty, C * resid.sum(1).unsqueeze(-1)], 2)
            return f * scale, grad.reshape(Q, -1) * scale[:, None]

        fun.restrict = lambda keep: objective(Xc[keep], onehot[keep], weight[keep], inv_sd2[keep],
                                              scale[keep])
        return fun

    if init is None:
        v0 = torch.zeros(P, K * (n + 1), dtype=DTYPE, device=X.device)
    else:
        W0, b0 = (torch.as_tensor(t, dtype=DTYPE, device=X.device) for t in init)
        if W0.shape != (P, K, n) or b0.shape != (P, K):
            raise ValueError(f"init must be (W [{P}, {K}, {n}], b [{P}, {K}]), got {list(W0.shape)} and "
                             f"{list(b0.shape)}")
        v0 = torch.cat([W0 * sd[:, None, :], (b0 + (W0 * mean[:, None, :]).sum(-1)).unsqueeze(-1)], 2)
        v0 = v0.reshape(P, -1)
    fun = objective(Xc, onehot, weight, inv_sd2, scale)
    del X, Xc                   # the solver holds the data through ``fun`` and frees it as problems finish
    # 20 curvature pairs, not L-BFGS's usual 10: near m ≈ n these problems are ill conditioned, and the
    # longer memory cut the chapter's iterations by about a fifth (same optimum, to the tolerance)
    v, iterations, converged = _lbfgs_many(fun, v0, max_iter=max_iter, tol=tol, history=20)
    V = v.view(P, K, n + 1)
    W = V[..., :n] / sd[:, None, :]
    return W, V[..., n] - (W * mean[:, None, :]).sum(-1), iterations, converged


class LogisticRegression(_LinearSoftmax):
    """Multinomial logistic regression with an L2 penalty, fitted with L-BFGS in float64.

    Minimises ``C Σ_i CE(softmax(W x_i + b), y_i) + ½‖W‖_F²`` (intercept not penalised), scikit-learn's
    objective for ``LogisticRegression(C=C)`` with three or more classes. With two classes this model
    keeps one weight vector per class; its difference ``w_1 − w_0`` equals the binary weight vector that
    scikit-learn fits with ``2C``.

    Parameters
    ----------
    C : float
        Inverse strength of the penalty (positive).
    max_iter : int
        L-BFGS iterations at most.
    tol : float
        Stop when the gradient of the objective divided by ``C m`` has no entry above ``tol``.

    Attributes
    ----------
    coef_ : [K, n]; intercept_ : [K]; n_classes_ : int; n_iter_ : int; converged_ : bool (the gradient
    reached ``tol``; a :class:`~sklearn.exceptions.ConvergenceWarning` is issued when it did not)
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-7):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    @single_threaded()
    def fit(self, X, y) -> LogisticRegression:
        _positive("C", self.C)
        _count("max_iter", self.max_iter)
        _positive("tol", self.tol)
        X = _features(X)
        y, K = _labels(y, X.shape[0])
        W, b, iterations, converged = fit_logistic_many(X[None], y[None], K, C=self.C, max_iter=self.max_iter,
                                                        tol=self.tol)
        self.n_classes_, self.n_iter_, self.converged_ = K, iterations, bool(converged[0])
        self.coef_, self.intercept_ = W[0], b[0]
        return self

    @single_threaded()
    def fit_batch(self, X, y) -> list[LogisticRegression]:
        """Fit one copy of this model per training set, all at once (one batched L-BFGS problem).

        ``X`` [P, m, n], ``y`` [P, m]: ``P`` training sets of the same size, each holding every class
        ``0 .. K−1``. Returns ``P`` fitted copies (this estimator is left unfitted)."""
        _positive("C", self.C)
        _count("max_iter", self.max_iter)
        _positive("tol", self.tol)
        X = torch.as_tensor(X, dtype=DTYPE)
        if X.ndim != 3:
            raise ValueError(f"X must have shape [P, m, n] (P training sets), got {list(X.shape)}")
        y = torch.as_tensor(y)
        if y.shape != X.shape[:2]:
            raise ValueError(f"y must have shape {list(X.shape[:2])}, got {list(y.shape)}")
        checked = [(_features(Xp), *_labels(yp, Xp.shape[0])) for Xp, yp in zip(X, y, strict=True)]
        K = checked[0][2]
        if any(k != K for _, _, k in checked):
            raise ValueError(f"every training set in y must hold the same classes 0 .. {K - 1}")
        W, b, iterations, converged = fit_logistic_many(X, torch.stack([c[1] for c in checked]), K, C=self.C,
                                                        max_iter=self.max_iter, tol=self.tol)
        fitted = []
        for Wp, bp, ok in zip(W, b, converged.tolist(), strict=True):
            model = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol)
            model.n_classes_, model.n_iter_, model.coef_, model.intercept_ = K, iterations, Wp, bp
            model.converged_ = ok
            fitted.append(model)
        return fitted


# ----------------------------------------------------------------------------------------------------
# Gaussian mixtures and exact errors of linear classifiers
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mixture:
    """Classes ``k = 0 .. K−1`` with equal priors and ``x | y = k ~ N(μ_k, Σ)``, where
    ``Σ = diag(std) R diag(std)`` and ``R = (1 − ρ) I + ρ 𝟙𝟙ᵀ`` (equicorrelated).

    Attributes
    ----------
    means : Tensor [K, n]; std : Tensor [n]; correlation : float (ρ in [0, 1))
    """

    means: torch.Tensor
    std: torch.Tensor
    correlation: float

    def __post_init__(self):
        means = check_tensor("means", self.means, ndim=2, dtype=DTYPE)
        if means.shape[0] < 2:
            raise ValueError(f"means must have shape [K, n] with K ≥ 2 classes, got {list(means.shape)}")
        std = check_tensor("std", self.std, ndim=1, dtype=DTYPE)
        if std.shape != (means.shape[1],) or not bool((std > 0).all()):
            raise ValueError(f"std must have shape [{means.shape[1]}] (one per feature) with positive "
                             "entries, "
                             f"got shape {list(std.shape)} and minimum {std.min().item():.4g}")
        # ρ = 1 makes Σ singular (every solve divides by 1 − ρ): refused, not NaN
        correlation = check_real("correlation", self.correlation, low=0, high=1, high_open=True)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "correlation", correlation)

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    def covariance(self) -> torch.Tensor:
        """``Σ`` [n, n]."""
        n, rho = self.n_features, self.correlation
        R = (1 - rho) * torch.eye(n, dtype=DTYPE) + rho
        return self.std[:, None] * R * self.std[None, :]

    def solve(self, v: torch.Tensor) -> torch.Tensor:
        """``Σ⁻¹ v`` for ``v`` [..., n], in O(n) (Sherman–Morrison on ``R``)."""
        n, rho = self.n_features, self.correlation
        u = v / self.std
        u = (u - rho / (1 - rho + n * rho) * u.sum(-1, keepdim=True)) / (1 - rho)
        return u / self.std

    def quadratic(self, a: torch.Tensor) -> torch.Tensor:
        """``aᵀ Σ a`` for ``a`` [..., n], in O(n)."""
        u = a * self.std
        return (1 - self.correlation) * u.pow(2).sum(-1) + self.correlation * u.sum(-1).pow(2)

    def sample(self, m: int, seed: int | torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``m`` samples: ``X`` [m, n] float64, ``y`` [m] int64 (labels uniform on the classes)."""
        seed = resolve_seed(seed, "generative.Mixture.sample")
        m = _count("m", m)
        gen = make_generator(seed)
        y = torch.randint(0, self.n_classes, (m,), generator=gen)
        z = torch.randn(m, self.n_features, generator=gen, dtype=DTYPE)
        common = torch.randn(m, 1, generator=gen, dtype=DTYPE)
        rho = self.correlation
        # (√(1−ρ) z + √ρ c) σ + μ_y, in place in z: the same roundings as out of place, one [m, n] buffer
        X = z.mul_(math.sqrt(1 - rho)).add_(math.sqrt(rho) * common).mul_(self.std).add_(self.means[y])
        return X, y

    def bayes_classifier(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` of the Bayes classifier: ``W_k = Σ⁻¹ μ_k``, ``b_k = log π_k − ½ μ_kᵀ Σ⁻¹ μ_k``."""
        W = self.solve(self.means)
        b = -math.log(self.n_classes) - 0.5 * (self.means * W).sum(-1)
        return W, b

    def nb_limit(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` that naive Bayes converges to: the true means and ``σ² = diag(Σ)``."""
        var = self.std.pow(2)
        W = self.means / var
        b = -math.log(self.n_classes) - 0.5 * (self.means * W).sum(-1)
        return W, b

    @single_threaded()
    def error(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Exact misclassification probability of ``argmax_k (W x + b)_k`` under the mixture.

        ``W`` [..., K, n] and ``b`` [..., K]; batched for two and three classes. Given ``y = k`` the score
        differences ``(W_j − W_k) x + b_j − b_k`` are jointly Gaussian, so the probability of a correct
        answer is a Gaussian orthant probability: ``Φ`` for ``K = 2``; for ``K = 3`` a bivariate normal
        probability by Owen's T function (batched too); for ``K > 3`` an interval when the differences are
        collinear (e.g. collinear class means), Genz's algorithm (scipy, absolute accuracy ~1e-6) otherwise.
        """
        W, b = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE)
        K = self.n_classes
        if W.shape[-2:] != (K, self.n_features) or b.shape != W.shape[:-1]:
            raise ValueError(f"W must have shape [..., {K}, {self.n_features}] and b [..., {K}], got "
                             f"{list(W.shape)} and {list(b.shape)}")
        if K == 2:
            a = W[..., 1, :] - W[..., 0, :]
            c = b[..., 1] - b[..., 0]
            sd = self.quadratic(a).sqrt()
            scores = (a.unsqueeze(-2) * self.means).sum(-1) + c.unsqueeze(-1)          # [..., 2]
            normal = torch.distributions.Normal(0.0, 1.0)
            # class 0 is wrong when the score is > 0, class 1 when it is < 0
            wrong = torch.stack([normal.cdf(scores[..., 0] / sd), normal.cdf(-scores[..., 1] / sd)], -1)
            return wrong.mean(-1)
        Sigma = self.covariance()
        if K == 3:                                   # bivariate orthants, batched (Owen's T function)
            wrong = 0.0
            for k in range(3):
                others = [j for j in range(3) if j != k]
                A = W[..., others, :] - W[..., k : k + 1, :]                            # [..., 2, n]
                mean = A @ self.means[k] + b[..., others] - b[..., k : k + 1]          # [..., 2]
                cov = A @ Sigma @ A.transpose(-1, -2)                                  # [..., 2, 2]
                wrong = wrong + 1.0 - _bivariate_all_negative(mean.numpy(), cov.numpy())
            return torch.as_tensor(wrong / 3, dtype=DTYPE)
        if W.ndim != 2:
            raise ValueError(f"for more than three classes give one classifier, W [K, n]; "
                             f"got {list(W.shape)}")
        wrong = 0.0
        for k in range(K):
            others = [j for j in range(K) if j != k]
            A = W[others] - W[k]
            mean = (A @ self.means[k] + b[others] - b[k]).numpy()
            cov = (A @ Sigma @ A.T).numpy()
            wrong += 1.0 - _all_negative_probability(mean, cov)
        return torch.tensor(wrong / K, dtype=DTYPE)

    def logistic_risk(self, W: torch.Tensor, b: torch.Tensor, *, nodes: int = 80) -> torch.Tensor:
        """Population cross-entropy ``E[−log softmax(W x + b)_y]`` (nats) of two-class classifiers
        ``W`` [..., 2, n], ``b`` [..., 2]: the score difference is Gaussian given the class, so the
        expectation is a one-dimensional Gauss–Hermite quadrature with ``nodes`` points."""
        if self.n_classes != 2:
            raise ValueError(f"logistic_risk is for two classes, got {self.n_classes}")
        W, b = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE)
        a = W[..., 1, :] - W[..., 0, :]
        c = b[..., 1] - b[..., 0]
        sd = self.quadratic(a).sqrt()
        x, w = np.polynomial.hermite.hermgauss(nodes)
        x, w = torch.tensor(x, dtype=DTYPE), torch.tensor(w, dtype=DTYPE) / math.sqrt(math.pi)
        risk = 0.0
        for k, sign in ((0, 1.0), (1, -1.0)):           # −log p(k|x) = softplus(±score)
            mean = (a * self.means[k]).sum(-1) + c
            score = mean.unsqueeze(-1) + math.sqrt(2.0) * sd.unsqueeze(-1) * x
            risk = risk + 0.5 * (torch.nn.functional.softplus(sign * score) * w).sum(-1)
        return risk

    def bayes_error(self) -> float:
        return float(self.error(*self.bayes_classifier()))

    def asymptotic_errors(self) -> dict[str, float]:
        """Errors of the m → ∞ limits: ``nb`` (true means, ``diag(Σ)``), ``lr`` and ``bayes``.

        The classes share one covariance, so the true posterior is a softmax of a linear function and
        the population minimiser of the logistic loss is the Bayes classifier: ``lr == bayes``.
        """
        bayes = self.bayes_error()
        return {"nb": float(self.error(*self.nb_limit())), "lr": bayes, "bayes": bayes}


def _bivariate_all_negative(mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``P(d_1 < 0, d_2 < 0)`` for ``d ~ N(mean, cov)``, batched (``mean`` [..., 2], ``cov`` [..., 2, 2]):
    with ``h_j = −mean_j/σ_j`` and correlation ``r``, Owen's formula
    ``Φ₂(h, k; r) = ½Φ(h) + ½Φ(k) − T(h, (k − rh)/(h√(1−r²))) − T(k, (h − rk)/(k√(1−r²))) − ½·[hk < 0]``
    (Owen 1956), exact to rounding; zero standard deviations are treated as the limit of tiny ones."""
    from scipy.special import owens_t
    sd = np.sqrt(np.maximum(np.stack([cov[..., 0, 0], cov[..., 1, 1]], -1), 1e-300))
    h, k = (-mean / sd)[..., 0], (-mean / sd)[..., 1]
    r = np.clip(cov[..., 0, 1] / (sd[..., 0] * sd[..., 1]), -1 + 1e-12, 1 - 1e-12)
    h = np.where(h == 0, 1e-300, h)
    k = np.where(k == 0, 1e-300, k)
    root = np.sqrt(1 - r * r)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        value = (0.5 * stats.norm.cdf(h) + 0.5 * stats.norm.cdf(k) - owens_t(h, (k - r * h) / (h * root))
                 - owens_t(k, (h - r * k) / (k * root)) - 0.5 * (h * k < 0))
    return np.clip(value, 0.0, 1.0)


def _all_negative_probability(mean: np.ndarray, cov: np.ndarray) -> float:
    """``P(d < 0 componentwise)`` for ``d ~ N(mean, cov)``."""
    vals, vecs = np.linalg.eigh(cov)
    if vals[-1] <= 0:
        return float(np.all(mean < 0))
    if vals[:-1].max(initial=0.0) <= 1e-10 * vals[-1]:        # rank one: d = mean + a ζ, ζ ~ N(0, 1)
        a = vecs[:, -1] * math.sqrt(vals[-1])
        lo, hi = -np.inf, np.inf
        for mj, aj in zip(mean, a, strict=True):
            if abs(aj) <= 1e-12 * np.abs(a).max():
                if mj >= 0:
                    return 0.0
            elif aj > 0:
                hi = min(hi, -mj / aj)
            else:
                lo = max(lo, -mj / aj)
        return float(max(0.0, stats.norm.cdf(hi) - stats.norm.cdf(lo)))
    return float(stats.multivariate_normal.cdf(np.zeros_like(mean), mean=mean, cov=cov, allow_singular=True,
                                               abseps=1e-7, releps=1e-7, rng=np.random.default_rng(0)))


def mixture(n: int, *, n_classes: int = 2, correlation: float = 0.0, mean_scale: float = 1.0) -> Mixture:
    """The chapter's Gaussian mixture in dimension ``n``.

    Following the paper's simulation: class 0 has mean ``−𝟙``, class ``k ≥ 1`` mean ``2^{k−1} 𝟙`` (times
    ``mean_scale``); the first ``⌊n/2⌋`` features have standard deviation ``√n``, the others 1; the
    features are equicorrelated with coefficient ``correlation`` (0: naive Bayes's model is exact).
    With ``mean_scale = 1`` every unit-variance feature separates classes 0 and 1 by two standard
    deviations, whatever ``n``: the per-feature signal stays bounded away from zero.
    """
    n = _count("n", n)
    n_classes = _count("n_classes", n_classes, 2)
    correlation = check_real("correlation", correlation, low=0, high=1, high_open=True)
    mean_scale = _positive("mean_scale", mean_scale)
    levels = torch.tensor([-1.0] + [2.0 ** (k - 1) for k in range(1, n_classes)], dtype=DTYPE)
    means = mean_scale * levels[:, None] * torch.ones(n, dtype=DTYPE)
    std = torch.ones(n, dtype=DTYPE)
    std[: n // 2] = math.sqrt(n)
    return Mixture(means, std, float(correlation))


def gaussian_mixture(m: int, n: int, *, n_classes: int = 2, correlation: float = 0.0, seed: int | None = None,
                     mean_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``m`` samples ``(X [m, n] float64, y [m] int64)`` of :func:`mixture` ``(n, ...)``."""
    seed = resolve_seed(seed, "generative.gaussian_mixture")
    return mixture(n, n_classes=n_classes, correlation=correlation, mean_scale=mean_scale).sample(m, seed)


def _nb_curve_constants(mixture: Mixture) -> dict[str, torch.Tensor | float]:
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
    return dict(
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
        return normal.cdf(-c["A"] / (2 * torch.sqrt(c["B"] + (4 * c["T"] + 2 * c["B2"]) / m)))
    kappa = 4 * (m + 1) / m**2
    lam = 2 / (m - 2)
    A, n = c["A"], c["n"]
    Q = c["B"] + kappa * c["T"] + lam * (c["B2"] + kappa * c["T2"])
    u = A / (2 * Q.sqrt())
    var_N = kappa * c["B"] + lam * c["Snn"]
    cov_NQ = 2 * kappa * c["C1"] + 2 * lam * c["Snq"]
    var_Q = 4 * kappa * c["C2"] + 2 * kappa**2 * c["T4"] + 4 * lam * c["Sqq"]
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


def lr_error_coefficient(mixture: Mixture) -> dict[str, float | torch.Tensor]:
    """LR's asymptotic excess 0–1 error on a two-class ``mixture``: ``E ε(h_LR,m) − ε_Bayes ≈ c/m`` with
    ``c = tr(H₀₁ I⁻¹)/2``.

    The classes share a covariance, so LR's model is right and its population minimiser is the Bayes
    classifier ``θ* = (a*, c*)`` (the difference of the two rows). LR's estimate is asymptotically
    ``N(θ*, I⁻¹/m)``, with ``I`` the Fisher information, here the Hessian of the population logistic risk at
    ``θ*``; the exact 0–1 error (:meth:`Mixture.error`) is smooth in ``θ`` with zero gradient at its minimum
    ``θ*`` and Hessian ``H₀₁``, so ``E ε − ε* ≈ ½ E δᵀH₀₁δ = tr(H₀₁ I⁻¹)/(2m)``. Both Hessians by automatic
    differentiation (float64). The penalty of :class:`LogisticRegression` biases ``θ`` by ``O(1/m)`` and
    the 0–1 error by ``O(1/m²)``; it is not included.

    Returns ``{"coefficient": c, "trace": tr(H₀₁ I⁻¹), "hessian": H₀₁, "fisher": I}``.
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
    return {"coefficient": trace / 2, "trace": trace, "hessian": hessian, "fisher": fisher}


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
    if mixture.n_classes != 2:
        raise ValueError(f"the simulation is for two classes, got a mixture with {mixture.n_classes}")
    m, repeats = _count("m", m, 3), _count("repeats", repeats)
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
    ``nan`` if it never does, ``m_grid[0]`` if it starts below. ``m_grid`` positive, both finite."""
    level = check_real("level", level)
    m = check_tensor("m_grid", m_grid, dtype=DTYPE, positive=True).detach().cpu().numpy()
    v = check_tensor("values", values, dtype=DTYPE).detach().cpu().numpy()
    if m.ndim != 1 or v.shape != m.shape:
        raise ValueError(f"m_grid and values must be 1-D of the same length, got {m.shape} and {v.shape}")
    below = np.nonzero(v <= level)[0]
    if below.size == 0:
        return float("nan")
    j = int(below[0])
    if j == 0:
        return float(m[0])
    frac = (v[j - 1] - level) / (v[j - 1] - v[j])
    return float(np.exp(np.log(m[j - 1]) + frac * (np.log(m[j]) - np.log(m[j - 1]))))


@single_threaded()
def bootstrap_crossings(m_grid, curves, level: float, *, draws: int,
                        generator: torch.Generator) -> tuple[float, np.ndarray]:
    """:func:`first_crossing` of the mean of ``curves`` [S, G] (one row per stream, one column per ``m`` in
    ``m_grid``) and of ``draws`` bootstrap means: each draw resamples the ``S`` rows with replacement, one
    ``torch.randint(0, S, (S,), generator=generator)`` per draw, in order. Returns ``(m*, crossings)``, the
    latter a float array [draws] (``nan`` where a draw never crosses). Single-threaded: each draw is a few
    operations on a tiny tensor, which a multi-threaded torch runs ten times slower on a busy machine."""
    curves = check_tensor("curves", curves, dtype=DTYPE)
    if curves.ndim != 2:
        raise ValueError(f"curves must have shape [streams, sizes], got {list(curves.shape)}")
    draws = _count("draws", draws)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    S = curves.shape[0]
    resampled = (curves[torch.randint(0, S, (S,), generator=generator)].mean(0) for _ in range(draws))
    crossings = np.array([first_crossing(m_grid, mean, level) for mean in resampled])
    return first_crossing(m_grid, curves.mean(0), level), crossings


# ----------------------------------------------------------------------------------------------------
# Learning curves: many fits at once
# ----------------------------------------------------------------------------------------------------

def random_orders(y, n_orders: int, *, length: int | None = None, disjoint: bool = False,
                  seed: int | None = None) -> torch.Tensor:
    """``n_orders`` random orders of a pool [n_orders, length] (row indices of ``y``), each starting with
    one sample of every class, so that every prefix of at least ``K`` samples contains all classes.

    ``disjoint=False``: each order is a random permutation of the whole pool (truncated to ``length``);
    ``disjoint=True``: order ``s`` permutes only the rows ``s·length .. (s+1)·length − 1``, so that the
    orders share no sample (independent training sets when the pool is i.i.d.).
    """
    seed = resolve_seed(seed, "generative.random_orders")
    y, K = _labels(y, torch.as_tensor(y).shape[0])
    n_orders = _count("n_orders", n_orders)
    M = y.shape[0]
    if length is None:
        length = M // n_orders if disjoint else M
    length = _count("length", length, K)
    if length * (n_orders if disjoint else 1) > M:
        limit = M // n_orders if disjoint else M
        raise ValueError(f"length must be at most {limit} for a pool of {M} samples"
                         f"{' split into ' + str(n_orders) + ' blocks' if disjoint else ''}, got {length}")
    gen = make_generator(seed)
    orders = []
    for s in range(n_orders):
        block = torch.arange(s * length, (s + 1) * length) if disjoint else torch.arange(M)
        perm = block[torch.randperm(block.numel(), generator=gen)]
        labels = y[perm]
        if any(not bool((labels == k).any()) for k in range(K)):
            raise ValueError(f"block {s} of the pool misses a class; use a larger length")
        first = torch.stack([perm[labels == k][0] for k in range(K)])
        head = first[torch.randperm(K, generator=gen)]
        rest = perm[~torch.isin(perm, first)]
        orders.append(torch.cat([head, rest])[:length])
    return torch.stack(orders)


def _grid(m_grid, orders) -> torch.Tensor:
    ends = torch.as_tensor(m_grid, dtype=torch.int64)
    if ends.ndim != 1 or ends.numel() < 1 or bool((ends[1:] <= ends[:-1]).any()):
        raise ValueError(f"m_grid must be a strictly increasing 1-D sequence, got {ends.tolist()}")
    if int(ends[0]) < 1 or int(ends[-1]) > orders.shape[1]:
        raise ValueError(f"m_grid must lie in [1, {orders.shape[1]}] (the length of the orders), "
                         f"got {ends.tolist()}")
    return ends


@single_threaded()
def nb_prefix_fits(X, y, orders, m_grid, *, var_smoothing: float = 1e-9):
    """Naive Bayes fitted on the first ``m`` samples of every order, for every ``m`` in ``m_grid``.

    One pass of :func:`theorylab.kernels.prefix_class_stats` (the Triton kernel on a GPU, the float64
    reference on a CPU) gives the per-class statistics of all prefixes. Returns ``W`` [S, G, K, n] and
    ``b`` [S, G, K] (float64).
    """
    X = _features(X)
    y, K = _labels(y, X.shape[0])
    orders = torch.as_tensor(orders, dtype=torch.int64).to(X.device)
    ends = _grid(m_grid, orders).to(X.device)
    counts, means, variances = _class_stats(X, y.to(X.device), orders, ends, K)
    _, _, W, b = nb_parameters(counts, means, variances, var_smoothing)
    return W, b


@single_threaded()
def lr_prefix_fits(X, y, orders, m_grid, *, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-7,
                   return_converged: bool = False):
    """Logistic regression fitted on the first ``m`` samples of every order, for every ``m`` in
    ``m_grid``. Returns ``W`` [S, G, K, n] and ``b`` [S, G, K], and with ``return_converged=True`` also
    ``converged`` [S, G] (bool: the fit's gradient reached ``tol``, see :func:`fit_logistic_many`). Fits that
    did not converge raise a :class:`~sklearn.exceptions.ConvergenceWarning` either way.

    One batched L-BFGS problem per ``m`` over all ``S`` orders, warm-started from the fits on the previous
    prefix (the optimum does not depend on the start). Not one problem for the whole grid: padding every
    prefix to the longest with zero sample weights (which :func:`fit_logistic_many` supports) would hold
    ``S · G`` copies of up to ``max(m_grid)`` rows and lose the warm starts. Peak memory is one float64
    copy of the largest training sets, ``S · max(m_grid) · n · 8`` bytes (the gathered rows are centred
    in place), plus the pool."""
    X = _features(X)
    y, K = _labels(y, X.shape[0])
    orders = torch.as_tensor(orders, dtype=torch.int64).to(X.device)
    y = y.to(X.device)
    ends = _grid(m_grid, orders)
    Ws, bs, oks = [], [], []
    for m in ends.tolist():
        rows = orders[:, :m]
        init = (Ws[-1], bs[-1]) if Ws else None        # warm start from the previous prefix
        # X[rows] is a fresh float64 gather: the solver centres it in place (one copy of the data)
        W, b, _, ok = _fit_logistic(X[rows], y[rows], K, C=C, sample_weight=None, init=init,
                                    max_iter=max_iter, tol=tol)
        Ws.append(W)
        bs.append(b)
        oks.append(ok)
    converged = torch.stack(oks, 1)
    _warn_unconverged(converged, "lr_prefix_fits", max_iter, tol)
    W, b = torch.stack(Ws, 1), torch.stack(bs, 1)
    return (W, b, converged) if return_converged else (W, b)


@single_threaded()
def test_errors(W, b, X_test, y_test) -> torch.Tensor:
    """Test error of every linear classifier ``argmax(W x + b)``: ``W`` [..., K, n], ``b`` [..., K] →
    errors [...]."""
    X_test = _features(X_test, "X_test")
    y_test = torch.as_tensor(y_test).to(torch.int64)
    if y_test.shape != (X_test.shape[0],):
        raise ValueError(f"y_test must have shape [{X_test.shape[0]}], got {list(y_test.shape)}")
    W, b = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE)
    if W.shape[-1] != X_test.shape[1] or b.shape != W.shape[:-1]:
        raise ValueError(f"W must have shape [..., K, {X_test.shape[1]}] and b [..., K], got {list(W.shape)} "
                         f"and {list(b.shape)}")
    return _error_rates(W, b, X_test, y_test)


def _error_rates(W, b, X, y) -> torch.Tensor:
    logits = torch.einsum("...kn,tn->...tk", W, X.to(W.device)) + b.unsqueeze(-2)
    return (logits.argmax(-1) != y.to(W.device)).double().mean(-1)


test_errors.__test__ = False   # not a pytest test


@single_threaded()
def learning_curves(X_pool, y_pool, X_test, y_test, m_grid, *, n_orders: int, seed: int | None = None,
                    C: float = 1.0, var_smoothing: float = 1e-9, max_iter: int = 1000) -> dict:
    """Test errors of naive Bayes and logistic regression trained on the first ``m`` samples of
    ``n_orders`` random orders of the pool, for every ``m`` in ``m_grid``.

    Returns ``{"m": [G], "nb": [S, G], "lr": [S, G]}`` (errors as fractions).
    """
    seed = resolve_seed(seed, "generative.learning_curves")
    orders = random_orders(y_pool, n_orders, length=int(max(m_grid)), seed=seed)
    W_nb, b_nb = nb_prefix_fits(X_pool, y_pool, orders, m_grid, var_smoothing=var_smoothing)
    W_lr, b_lr = lr_prefix_fits(X_pool, y_pool, orders, m_grid, C=C, max_iter=max_iter)
    return {"m": torch.as_tensor(m_grid), "nb": test_errors(W_nb, b_nb, X_test, y_test),
            "lr": test_errors(W_lr, b_lr, X_test, y_test)}


EXPLORE_GRID = dict(ns=(8, 16, 32, 64), n_classes=(2, 3, 4), correlations=(0.0, 0.1, 0.2, 0.3),
                    sizes=(6, 12, 24, 48, 96, 192, 384), streams=8, n_test=2000)


@single_threaded()
def explore_table(ns=EXPLORE_GRID["ns"], n_classes=EXPLORE_GRID["n_classes"],
                  correlations=EXPLORE_GRID["correlations"], *, sizes=EXPLORE_GRID["sizes"],
                  streams: int = EXPLORE_GRID["streams"], n_test: int = EXPLORE_GRID["n_test"],
                  seed: int | None = None) -> dict:
    """Learning curves of NB and LR (``C = 1``) on ``mixture(n, n_classes=K, correlation=ρ)`` for every
    ``(n, K, ρ)``: the table behind the chapter's Explore panel.

    For each ``(n, K, ρ)``: a pool of ``streams`` disjoint sample streams plus ``n_test`` test samples; the
    sizes ``m`` in ``sizes`` with ``2K ≤ m ≤ 12 n``. The samples come from the named stream
    ``generative-explore-sample[n=…,K=…,rho=…]`` and the orders from ``generative-explore-orders[…]`` of
    ``THEORYLAB_SEED`` (or, when ``seed`` is given, from ``seed`` and ``seed + 1`` for every setting).
    NB comes from :func:`nb_prefix_fits`; for each ``(n, K)`` the logistic regressions of all correlations ×
    streams × sizes are **one** batched L-BFGS problem, the training sets padded to the largest with zero
    sample weights. Returns ``{(n, K, ρ): {"m": [G], "nb": [G], "lr": [G], "nb_se": [G], "lr_se": [G],
    "nb_limit": float, "bayes": float}}``: mean test errors over the streams and their standard errors
    over the streams (training-set variation; the test set is shared by the streams and its own noise,
    about ``√(ε(1 − ε)/n_test)``, is common to them), Python floats. The chapter ships the result at
    ``THEORYLAB_SEED = 0`` (:func:`stored_explore_table`); the full table takes a minute or two on one core.
    """
    from .seeding import seed as named_stream
    streams = _count("streams", streams, 2)
    n_test = _count("n_test", n_test)
    table = {}
    for K in n_classes:
        for n in ns:
            grid = [m for m in sizes if 2 * K <= m <= 12 * n]
            length = grid[-1]
            cases, problems = [], []
            for rho in correlations:
                mix = mixture(n, n_classes=K, correlation=rho)
                name = f"n={n},K={K},rho={rho}"
                sample_seed = named_stream(f"generative-explore-sample[{name}]") if seed is None else seed
                order_seed = named_stream(f"generative-explore-orders[{name}]") if seed is None else seed + 1
                X, y = mix.sample(streams * length + n_test, seed=sample_seed)
                pool, labels = X[:-n_test], y[:-n_test]
                orders = random_orders(labels, streams, length=length, disjoint=True, seed=order_seed)
                cases.append((rho, mix, X[-n_test:], y[-n_test:], nb_prefix_fits(pool, labels, orders, grid)))
                problems += [(pool[orders[s, :m]], labels[orders[s, :m]])
                             for s in range(streams) for m in grid]
            X_all = torch.zeros(len(problems), length, n, dtype=DTYPE)
            y_all = torch.zeros(len(problems), length, dtype=torch.int64)
            weight = torch.zeros(len(problems), length, dtype=DTYPE)
            for p, (Xp, yp) in enumerate(problems):          # pad every training set to `length` rows
                X_all[p, : len(yp)], y_all[p, : len(yp)], weight[p, : len(yp)] = Xp, yp, 1.0
            W_lr, b_lr, _, converged = _fit_logistic(X_all, y_all, K, C=1.0, sample_weight=weight, init=None,
                                                     max_iter=1000, tol=1e-7)
            _warn_unconverged(converged, f"explore_table (n = {n}, K = {K})", 1000, 1e-7)
            W_lr = W_lr.view(len(correlations), streams, len(grid), K, n)
            b_lr = b_lr.view(len(correlations), streams, len(grid), K)
            for i, (rho, mix, X_test, y_test, (W_nb, b_nb)) in enumerate(cases):
                limits = mix.asymptotic_errors()
                err_nb = test_errors(W_nb, b_nb, X_test, y_test)
                err_lr = test_errors(W_lr[i], b_lr[i], X_test, y_test)
                table[n, K, rho] = dict(
                    m=list(grid), nb=err_nb.mean(0).tolist(), lr=err_lr.mean(0).tolist(),
                    nb_se=(err_nb.std(0) / math.sqrt(streams)).tolist(),
                    lr_se=(err_lr.std(0) / math.sqrt(streams)).tolist(),
                    nb_limit=limits["nb"], bayes=limits["bayes"])
    return table


EXPLORE_TABLE_FILE = "data/generative_explore_table.json"   # inside the package


def stored_explore_table() -> dict:
    """:func:`explore_table` with its default arguments, as computed once and shipped with the package
    (``theorylab/data/generative_explore_table.json``, read with ``importlib.resources``; a test
    recomputes part of it): ``{(n, K, ρ): row}``."""
    from importlib.resources import files
    rows = json.loads(files("theorylab").joinpath(EXPLORE_TABLE_FILE).read_text())["rows"]
    return {(row["n"], row["K"], row["rho"]): {k: v for k, v in row.items() if k not in ("n", "K", "rho")}
            for row in rows}


def write_explore_table(path=None) -> None:
    """Recompute :func:`explore_table` (at ``THEORYLAB_SEED = 0``, a minute or two) and write the file
    :func:`stored_explore_table` reads (``path`` defaults to it)::

        python -c "from theorylab import generative; generative.write_explore_table()"
    """
    import os
    import pathlib
    if os.environ.get("THEORYLAB_SEED", "0").strip() not in ("", "0"):
        raise RuntimeError("write_explore_table stores the table of THEORYLAB_SEED = 0; unset THEORYLAB_SEED")
    path = pathlib.Path(path or pathlib.Path(__file__).parent / EXPLORE_TABLE_FILE)
    rows = [{"n": n, "K": K, "rho": rho,
             **{k: ([round(x, 6) for x in v] if k in ("nb", "lr", "nb_se", "lr_se") else
                    round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}}
            for (n, K, rho), row in explore_table().items()]
    about = ("chapter 5's Explore table: theorylab.generative.explore_table() with its default arguments at "
             "THEORYLAB_SEED = 0, rounded to 6 decimals. Regenerate with "
             "`python -c \"from theorylab import generative; generative.write_explore_table()\"`; "
             "do not edit.")
    path.write_text(json.dumps({"about": about, "rows": rows}, indent=1) + "\n")


# ----------------------------------------------------------------------------------------------------
# Samples needed
# ----------------------------------------------------------------------------------------------------

def _fresh(learner):
    if isinstance(learner, BaseEstimator):
        from sklearn.base import clone
        return clone(learner)
    if callable(learner):
        return learner()
    raise TypeError(f"learner must be an estimator (fit/predict) or a callable returning one, "
                    f"got {learner!r}")


@single_threaded()
def samples_to_reach(learner, sampler: Callable, target_error: float, *, n_test: int, repeats: int,
                     seed: int | None = None, rtol: float = 0.0, m_max: int = 1 << 16) -> int:
    """The smallest training-set size ``m`` whose mean test error is at most ``target_error``.

    Parameters
    ----------
    learner : estimator or callable
        An estimator with ``fit`` and ``predict`` (cloned for every fit), or a function returning a
        fresh one. If it has a ``fit_batch`` method (:class:`LogisticRegression`), the ``repeats``
        training sets of one size are fitted together with it.
    sampler : callable
        ``sampler(m, seed=s) -> (X [m, n], y [m])``, e.g. ``functools.partial(gaussian_mixture, n=64)``.
    target_error : float in (0, 1)
    n_test : int
        Size of the test set, drawn once as ``sampler(n_test, seed=seed)``.
    repeats : int
        Training sets per size; the ``r``-th is ``sampler(m, seed=seed + 1 + r)`` (redrawn with a later seed
        while it misses a class), so every size sees the same seeds.
    rtol : float
        Stop the bisection once the bracket is narrower than ``rtol`` times its upper end (0: down to
        one sample). The answer is then at most that fraction above the exact one.
    m_max : int
        Give up (``ValueError``) if even this many samples miss the target.

    Search: ``m = K, 2K, 4K, …`` until the mean error is at most the target, then bisection between the
    last two sizes (the mean error is assumed to decrease with ``m``; with finite ``repeats`` it is
    noisy, so the answer is a size where the curve crosses the target, within its noise). Returns the
    upper end of the final bracket.
    """
    seed = resolve_seed(seed, "generative.samples_to_reach")
    if not callable(sampler):
        raise TypeError(f"sampler must be callable, got {sampler!r}")
    target_error = check_real("target_error", target_error, low=0, high=1, low_open=True, high_open=True)
    n_test, repeats = _count("n_test", n_test), _count("repeats", repeats)
    rtol = check_real("rtol", rtol, low=0, high=1, high_open=True)
    X_test, y_test = sampler(n_test, seed=seed)
    X_test = _features(X_test, "X_test")
    y_test, K = _labels(y_test, X_test.shape[0], "y_test")
    cache: dict[int, float] = {}

    def training_set(m: int, r: int):
        for offset in range(1000):
            X, y = sampler(m, seed=seed + 1 + r + offset * repeats)
            if torch.unique(torch.as_tensor(y)).numel() == K:
                return X, y
        raise ValueError(f"sampler({m}, ...) keeps missing a class")

    def mean_error(m: int) -> float:
        if m not in cache:
            sets = [training_set(m, r) for r in range(repeats)]
            model = _fresh(learner)
            if hasattr(model, "fit_batch"):          # all repeats as one batched problem
                fitted = model.fit_batch(torch.stack([torch.as_tensor(X) for X, _ in sets]),
                                         torch.stack([torch.as_tensor(y) for _, y in sets]))
            else:
                fitted = [_fresh(learner).fit(X, y) for X, y in sets]
            if all(hasattr(f, "coef_") and hasattr(f, "intercept_") for f in fitted):   # linear-softmax
                W = torch.stack([torch.as_tensor(f.coef_, dtype=DTYPE) for f in fitted])
                b = torch.stack([torch.as_tensor(f.intercept_, dtype=DTYPE) for f in fitted])
                errors = _error_rates(W, b, X_test, y_test)
            else:
                errors = torch.tensor([(torch.as_tensor(f.predict(X_test)) != y_test).double().mean().item()
                                       for f in fitted], dtype=DTYPE)
            cache[m] = errors.mean().item()
        return cache[m]

    lo, hi = None, K
    while mean_error(hi) > target_error:
        lo, hi = hi, 2 * hi
        if hi > m_max:
            raise ValueError(f"target_error {target_error} not reached with m_max = {m_max} samples")
    if lo is None:
        return hi
    while hi - lo > max(1.0, rtol * hi):
        mid = (lo + hi) // 2
        if mean_error(mid) <= target_error:
            hi = mid
        else:
            lo = mid
    return hi


# ----------------------------------------------------------------------------------------------------
# Pretrained features
# ----------------------------------------------------------------------------------------------------

@single_threaded()
def pretrained_digit_features(*, hidden: int = 32, steps: int = 300, lr: float = 0.01,
                              seed: int | None = None) -> dict:
    """Features of a small network pretrained on half of scikit-learn's digits, for the other half.

    The 1797 images (64 pixels scaled to [0, 1], 10 classes) are split at random into two halves. A
    one-hidden-layer ReLU network (64 → ``hidden`` → 10) is trained on the first half (full-batch Adam,
    ``steps`` steps, cross-entropy), then frozen. Its hidden activations on the second half, standardised
    with the first half's mean and standard deviation (part of the frozen feature map), are the
    "pretrained features".

    Returns ``{"features": [M, hidden], "labels": [M], "pretrain_accuracy": float,
    "transfer_accuracy": float}`` (the network's own accuracy on the second half).
    """
    seed = resolve_seed(seed, "generative.pretrained_digit_features")
    from sklearn.datasets import load_digits

    hidden, steps = _count("hidden", hidden), _count("steps", steps)
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    gen = make_generator(seed)
    perm = torch.randperm(len(y), generator=gen)
    first_half, second_half = perm[: len(y) // 2], perm[len(y) // 2:]
    net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / math.sqrt(p.shape[-1])))
    # Full-batch Adam written out: constructing a torch.optim optimiser imports torch._dynamo, which
    # takes about two seconds, longer than this training.
    params = list(net.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    for step in range(1, steps + 1):
        loss = torch.nn.functional.cross_entropy(net(X[first_half]), y[first_half])
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, m1, m2 in zip(params, grads, first, second, strict=True):
                m1.mul_(0.9).add_(g, alpha=0.1)
                m2.mul_(0.999).addcmul_(g, g, value=0.001)
                p.sub_(lr * (m1 / (1 - 0.9**step)) / ((m2 / (1 - 0.999**step)).sqrt() + 1e-8))
    with torch.no_grad():
        body = net[:2]
        h_first, h_second = body(X[first_half]).double(), body(X[second_half]).double()
        mu, sd = h_first.mean(0), h_first.std(0)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        acc_first = (net(X[first_half]).argmax(1) == y[first_half]).double().mean().item()
        acc_second = (net(X[second_half]).argmax(1) == y[second_half]).double().mean().item()
    return {"features": (h_second - mu) / sd, "labels": y[second_half], "pretrain_accuracy": acc_first,
            "transfer_accuracy": acc_second}
