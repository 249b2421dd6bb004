"""Gaussian naive Bayes and multinomial logistic regression as linear-softmax classifiers, and
many logistic regressions fitted at once (batched L-BFGS)."""

from __future__ import annotations

import torch
from sklearn.base import BaseEstimator

from ..kernels import prefix_class_stats
from ..utils.numerics import lbfgs_many
from ..utils.threads import single_threaded
from ..utils.validation import check_choice, check_int, check_integers, check_real, check_tensor
from ._checks import DTYPE, _features, _labels, _log_softmax, _warn_unconverged


def _class_stats(X, y, orders, ends, K, backend: str = "auto"):
    """:func:`theorylab.kernels.prefix_class_stats`. ``backend="auto"``: the Triton kernel on CUDA tensors
    and the float64 torch reference otherwise (also under Triton's interpreter: the kernel computes in
    float32, and the estimators here are compared with formulas to 1e-12); ``"triton"`` or ``"torch"``
    forces one."""
    backend = check_choice("backend", backend, ("auto", "triton", "torch"))
    if backend == "auto" and not X.is_cuda:
        backend = "torch"
    return prefix_class_stats(X, y, orders, ends, K, backend=backend)


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
    counts = check_tensor("counts", counts, dtype=DTYPE, positive=True)    # each class seen at least once
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
    X = check_tensor("X", X, finite=False, nonempty=False)
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
    C = check_real("C", C, low=0, low_open=True)
    K = check_int("n_classes", n_classes, low=2)
    check_int("max_iter", max_iter, low=1)
    check_real("tol", tol, low=0, low_open=True)
    P, m, n = X.shape
    y = check_integers("y", y).to(X.device)
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
    v, iterations, converged = lbfgs_many(fun, v0, max_iter=max_iter, tol=tol, history=20)
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
        check_real("C", self.C, low=0, low_open=True)
        check_int("max_iter", self.max_iter, low=1)
        check_real("tol", self.tol, low=0, low_open=True)
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
        check_real("C", self.C, low=0, low_open=True)
        check_int("max_iter", self.max_iter, low=1)
        check_real("tol", self.tol, low=0, low_open=True)
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
