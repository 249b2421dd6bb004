"""Small statistics the chapters share: slopes on log-log axes, paired comparisons, means with their
standard errors.

Inputs are tensors, NumPy arrays or nested lists of numbers, checked with
:mod:`theorylab.utils.validation` (a wrong type raises ``TypeError``, a wrong value ``ValueError``, both
naming the argument); values must be finite. Arrays of samples put the samples on the last axis:
``[rows, samples]``. Results are Python floats or float64 NumPy arrays. A standard error is the sample
standard deviation (``ddof=1``) over ``√samples``; a z statistic whose samples are all equal has a zero
standard error and is ``±inf`` (``nan`` when the mean is 0 too), as NumPy divides.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .validation import check_tensor

__all__ = ["finite_std", "loglog_slope", "mcnemar_counts", "mcnemar_z", "paired_log_drop_z",
           "geometric_mean_rows", "mean_and_standard_error", "paired_difference_z"]

DTYPE = torch.float64


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (both 1-D [n], n ≥ 2, positive), e.g. the exponent
    of a learning rate in the batch size (chapter 7) or of a sample count in the dimension (chapter 5).
    Computed in float64 torch.
    """
    x = check_tensor("x", x, ndim=1, dtype=DTYPE, positive=True)
    y = check_tensor("y", y, ndim=1, dtype=DTYPE, positive=True)
    if x.numel() != y.numel() or x.numel() < 2:
        raise ValueError(f"x and y must have the same length ≥ 2, got {x.numel()} and {y.numel()}")
    x, y = x.log(), y.log()
    x = x - x.mean()
    return ((x * (y - y.mean())).sum() / (x * x).sum()).item()


def _wrong(name: str, value) -> np.ndarray:
    """``value`` as a 1-D boolean NumPy array (True where a classifier is wrong)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    if value.dtype != np.bool_:
        raise TypeError(f"{name} must be a 1-D boolean array (True where the classifier is wrong), got "
                        f"dtype {value.dtype} and shape {list(value.shape)}")
    if value.ndim != 1:
        raise ValueError(f"{name} must be a 1-D boolean array (True where the classifier is wrong), got "
                         f"shape {list(value.shape)}")
    return value


def mcnemar_counts(wrong_first, wrong_second) -> tuple[int, int]:
    """``(n10, n01)``: the test points only the first classifier gets wrong, and those only the second
    gets wrong (``wrong_*``: boolean arrays [n] over the same points)."""
    first, second = _wrong("wrong_first", wrong_first), _wrong("wrong_second", wrong_second)
    if first.shape != second.shape:
        raise ValueError(f"wrong_first and wrong_second must have the same shape, got {list(first.shape)} "
                         f"and {list(second.shape)}")
    return int(np.sum(first & ~second)), int(np.sum(~first & second))


def mcnemar_z(wrong_first, wrong_second) -> float:
    """McNemar's ``z = (n10 − n01)/√(n10 + n01)`` (0 when the two never disagree): approximately standard
    normal when the classifiers have the same error rate, positive when the first is worse
    (``wrong_*``: boolean arrays [n], True where that classifier is wrong on the point)."""
    n10, n01 = mcnemar_counts(wrong_first, wrong_second)
    return (n10 - n01) / math.sqrt(max(n10 + n01, 1))


def _samples(name: str, value, *, min_samples: int, positive: bool = False) -> np.ndarray:
    """``value`` as a float64 NumPy array [rows, samples] with at least ``min_samples`` samples (a NumPy
    float64 input comes back as a view of itself, so the arithmetic below sees the caller's numbers)."""
    array = check_tensor(name, value, ndim=2, dtype=DTYPE, positive=positive).detach().cpu().numpy()
    if array.shape[1] < min_samples:
        raise ValueError(f"{name} must have at least {min_samples} samples (columns), got shape "
                         f"{list(array.shape)}")
    return array


def paired_log_drop_z(values) -> np.ndarray:
    """How far ``values`` fall from each row to the next, in standard errors: paired by column.

    ``values`` [rows, samples] (rows ≥ 2, samples ≥ 2, positive), e.g. a measurement at increasing
    settings (rows) of independent runs (columns). For each step ``k`` the drops
    ``log values[k] − log values[k + 1]`` [samples] give ``mean / (std(ddof=1)/√samples)``, a paired t
    statistic, positive where the values fall. Returns [rows − 1].
    """
    values = _samples("values", values, min_samples=2, positive=True)
    if values.shape[0] < 2:
        raise ValueError(f"values must have at least 2 rows, got shape {list(values.shape)}")
    drops = np.log(values[:-1]) - np.log(values[1:])          # [steps, samples]
    return drops.mean(1) / (drops.std(1, ddof=1) / np.sqrt(drops.shape[1]))


def geometric_mean_rows(values) -> np.ndarray:
    """The geometric mean of each row: ``exp(mean(log values, axis 1))``; ``values`` [rows, samples],
    positive. Returns [rows]."""
    values = _samples("values", values, min_samples=1, positive=True)
    return np.exp(np.log(values).mean(1))


def mean_and_standard_error(samples) -> tuple[np.ndarray, np.ndarray]:
    """The mean of each row of ``samples`` [rows, n] (n ≥ 2) and its standard error
    ``std(ddof=1)/√n``: two arrays [rows]."""
    samples = _samples("samples", samples, min_samples=2)
    return samples.mean(1), samples.std(1, ddof=1) / np.sqrt(samples.shape[1])


def paired_difference_z(first, second) -> np.ndarray:
    """The paired z of ``second − first``: per row, the mean of the differences over their standard
    error, ``mean(d) / (std(d, ddof=1)/√n)`` with ``d = second − first``; positive where ``second`` is
    larger. ``first`` and ``second`` [rows, n] (n ≥ 2), paired by position. Returns [rows]."""
    first = _samples("first", first, min_samples=2)
    second = _samples("second", second, min_samples=2)
    if first.shape != second.shape:
        raise ValueError(f"first and second must have the same shape, got {list(first.shape)} and "
                         f"{list(second.shape)}")
    diff = second - first
    return diff.mean(1) / (diff.std(1, ddof=1) / np.sqrt(diff.shape[1]))


def finite_std(values) -> float:
    """Standard deviation (``ddof = 0``) of the finite entries of ``values`` (any shape), e.g. bootstrap
    draws of a crossing, where a draw that never crosses is :data:`~theorylab.utils.numerics.NEVER`
    (``inf``) and a ratio of two such draws is NaN. NaN if no entry is finite."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size else math.nan
