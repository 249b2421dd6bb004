"""Input checks and small numerics shared by the modules of :mod:`theorylab.generative`."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

DTYPE = torch.float64
EPS = torch.finfo(DTYPE).eps

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


def _labels(y, m: int | None, name: str = "y") -> tuple[torch.Tensor, int]:
    """Labels as int64 [m] (``m=None``: any length); they must be exactly 0 .. K − 1 with K ≥ 2 (every
    class present)."""
    wrong_type = TypeError(f"{name} must be a tensor or an array of integer class labels, got "
                           f"{type(y).__name__}")
    if isinstance(y, str | bytes) or y is None:
        raise wrong_type
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError):
        raise wrong_type from None
    if y.is_floating_point():
        if not torch.isfinite(y).all() or (y != y.round()).any():
            raise ValueError(f"{name} must hold integer class labels, got {y[:5].tolist()}…")
    elif y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    y = y.to(torch.int64)
    if m is None and y.ndim == 1:
        m = y.shape[0]
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"{name} must have shape [{m}] (one label per row of X), got {list(y.shape)}")
    classes = torch.unique(y)
    if classes.numel() < 2:
        raise ValueError(f"{name} must contain at least two classes, got the single class {classes.tolist()}")
    if not torch.equal(classes, torch.arange(classes.numel(), device=classes.device)):
        raise ValueError(f"{name} must hold the labels 0 .. K-1 with every class present, got "
                         f"{classes.tolist()}")
    return y, classes.numel()


def _warn_unconverged(converged: torch.Tensor, where: str, max_iter: int, tol: float) -> None:
    """A :class:`sklearn.exceptions.ConvergenceWarning` when some logistic fits stopped with a gradient
    above ``tol`` (after ``max_iter`` iterations, or where the line search found no decrease)."""
    missed = int((~converged).sum())
    if missed:
        warnings.warn(f"{where}: {missed} of {converged.numel()} logistic regressions did not converge "
                      f"(largest gradient entry above tol = {tol:g} after max_iter = {max_iter} iterations"
                      f" or a line search without decrease); their coefficients are not the optimum",
                      ConvergenceWarning, stacklevel=3)
