"""Learning curves measured: many fits on nested training sets (prefixes of random orders) at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..seeding import make_generator, resolve_seed
from ..utils.threads import single_threaded
from ..utils.validation import check_bool, check_int, check_integers, check_tensor
from ._checks import DTYPE, _features, _labels, _warn_unconverged
from .estimators import (
    _class_stats,
    _fit_logistic,
    nb_parameters,
)


def random_orders(y, n_orders: int, *, length: int | None = None, disjoint: bool = False,
                  seed: int | None = None) -> torch.Tensor:
    """``n_orders`` random orders of a pool [n_orders, length] (row indices of ``y``), each starting with
    one sample of every class, so that every prefix of at least ``K`` samples contains all classes.

    ``disjoint=False``: each order is a random permutation of the whole pool (truncated to ``length``);
    ``disjoint=True``: order ``s`` permutes only the rows ``s·length .. (s+1)·length − 1``, so that the
    orders share no sample (independent training sets when the pool is i.i.d.).
    """
    seed = resolve_seed(seed, "generative.random_orders")
    y, K = _labels(y, None)
    n_orders = check_int("n_orders", n_orders, low=1)
    disjoint = check_bool("disjoint", disjoint)
    M = y.shape[0]
    if length is None:
        length = M // n_orders if disjoint else M
    length = check_int("length", length, low=K)
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


def _orders(orders, pool: int) -> torch.Tensor:
    """``orders`` [S, length] as int64 row indices into a pool of ``pool`` samples."""
    return check_integers("orders", orders, ndim=2, low=0, high=pool - 1)


def _grid(m_grid, orders) -> torch.Tensor:
    ends = check_integers("m_grid", m_grid, ndim=1)
    if bool((ends[1:] <= ends[:-1]).any()):
        raise ValueError(f"m_grid must be a strictly increasing 1-D sequence, got {ends.tolist()}")
    if int(ends[0]) < 1 or int(ends[-1]) > orders.shape[1]:
        raise ValueError(f"m_grid must lie in [1, {orders.shape[1]}] (the length of the orders), "
                         f"got {ends.tolist()}")
    return ends


@single_threaded()
def nb_prefix_fits(X, y, orders, m_grid, *, var_smoothing: float = 1e-9, backend: str = "auto"):
    """Naive Bayes fitted on the first ``m`` samples of every order, for every ``m`` in ``m_grid``.

    One pass of :func:`theorylab.kernels.prefix_class_stats` gives the per-class statistics of all
    prefixes (``backend="auto"``: the Triton kernel on CUDA tensors, the float64 torch reference
    otherwise; ``"triton"`` or ``"torch"`` forces one). Returns ``W`` [S, G, K, n] and ``b`` [S, G, K]
    (float64).
    """
    X = _features(X)
    y, K = _labels(y, X.shape[0])
    orders = _orders(orders, X.shape[0]).to(X.device)
    ends = _grid(m_grid, orders).to(X.device)
    counts, means, variances = _class_stats(X, y.to(X.device), orders, ends, K, backend)
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
    orders = _orders(orders, X.shape[0]).to(X.device)
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
    y_test = check_integers("y_test", y_test, low=0)
    if y_test.shape != (X_test.shape[0],):
        raise ValueError(f"y_test must have shape [{X_test.shape[0]}], got {list(y_test.shape)}")
    W, b = check_tensor("W", W, dtype=DTYPE), check_tensor("b", b, dtype=DTYPE)
    if W.ndim < 2 or W.shape[-1] != X_test.shape[1] or b.shape != W.shape[:-1]:
        raise ValueError(f"W must have shape [..., K, {X_test.shape[1]}] and b [..., K], got {list(W.shape)} "
                         f"and {list(b.shape)}")
    if int(y_test.max()) >= W.shape[-2]:
        raise ValueError(f"y_test must hold labels in [0, {W.shape[-2] - 1}] (K = {W.shape[-2]} rows of W), "
                         f"got a maximum of {int(y_test.max())}")
    return _error_rates(W, b, X_test, y_test)


def _error_rates(W, b, X, y) -> torch.Tensor:
    logits = torch.einsum("...kn,tn->...tk", W, X.to(W.device)) + b.unsqueeze(-2)
    return (logits.argmax(-1) != y.to(W.device)).double().mean(-1)


test_errors.__test__ = False   # not a pytest test


@dataclass(frozen=True)
class LearningCurves:
    """Test errors of NB and LR along nested training sets (:func:`learning_curves`).

    Attributes
    ----------
    m : Tensor [G], the training-set sizes (``m_grid``).
    nb : Tensor [S, G], float64, naive Bayes's test error (a fraction) on the first ``m[g]`` samples of
        order ``s``.
    lr : Tensor [S, G], float64, the same for logistic regression.
    """

    m: torch.Tensor
    nb: torch.Tensor
    lr: torch.Tensor


@single_threaded()
def learning_curves(X_pool, y_pool, X_test, y_test, m_grid, *, n_orders: int, seed: int | None = None,
                    C: float = 1.0, var_smoothing: float = 1e-9, max_iter: int = 1000,
                    backend: str = "auto") -> LearningCurves:
    """Test errors of naive Bayes and logistic regression trained on the first ``m`` samples of
    ``n_orders`` random orders of the pool, for every ``m`` in ``m_grid``.

    Returns a :class:`LearningCurves` (``m`` [G], ``nb`` and ``lr`` [S, G], errors as fractions);
    ``backend`` as in :func:`nb_prefix_fits`.
    """
    seed = resolve_seed(seed, "generative.learning_curves")
    pool = _features(X_pool, "X_pool")
    _labels(y_pool, pool.shape[0], "y_pool")
    ends = check_integers("m_grid", m_grid, ndim=1, low=1, high=pool.shape[0])
    orders = random_orders(y_pool, n_orders, length=int(ends.max()), seed=seed)
    W_nb, b_nb = nb_prefix_fits(X_pool, y_pool, orders, m_grid, var_smoothing=var_smoothing,
                                backend=backend)
    W_lr, b_lr = lr_prefix_fits(X_pool, y_pool, orders, m_grid, C=C, max_iter=max_iter)
    return LearningCurves(m=torch.as_tensor(m_grid), nb=test_errors(W_nb, b_nb, X_test, y_test),
                          lr=test_errors(W_lr, b_lr, X_test, y_test))
