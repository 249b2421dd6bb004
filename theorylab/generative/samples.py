"""How many training samples a learner needs to reach a target error."""

from __future__ import annotations

from collections.abc import Callable

import torch
from sklearn.base import BaseEstimator

from ..seeding import resolve_seed
from ..utils.threads import single_threaded
from ..utils.validation import check_int, check_real
from ._checks import DTYPE, _features, _labels
from .curves import (
    _error_rates,
)


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
    n_test, repeats = check_int("n_test", n_test, low=1), check_int("repeats", repeats, low=1)
    rtol = check_real("rtol", rtol, low=0, high=1, high_open=True)
    m_max = check_int("m_max", m_max, low=1)
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
