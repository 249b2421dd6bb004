"""One vocabulary for bad input at the public boundary.

A wrong *type* raises ``TypeError``, a wrong *value* raises ``ValueError``; both name the argument and
show the value. Numpy scalars are accepted wherever Python numbers are; values must be finite unless a
function documents otherwise. Each helper returns the checked value converted to a plain Python number
or a tensor, so a caller writes ``n = check_int("n", n, low=1)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["check_int", "check_real", "check_bool", "check_float_dtype", "check_tensor", "check_choice",
           "check_same_shape", "check_instance", "check_integers"]


def _is_bool(value) -> bool:
    return isinstance(value, bool | np.bool_)


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (Python or numpy integers; not bools or floats)."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"≥ {low}" if high is None else (f"≤ {high}" if low is None else f"in [{low}, {high}]")
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    return value


def check_real(name: str, value, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """``value`` as a ``float`` in the interval given by ``low``/``high`` (closed unless ``*_open``).

    Python and numpy reals and 0-d tensors are accepted; bools, strings and None are not. NaN is never
    accepted; infinity only with ``finite=False``.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '≥'} {low:g}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '≤'} {high:g}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` as a ``bool`` (Python or numpy bools; not ``0``/``1``, strings or None: a flag given
    ``"no"`` would otherwise be read as true)."""
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_float_dtype(name: str, value) -> torch.dtype:
    """``value`` if it is a floating torch dtype (``torch.float32``, ``torch.float64``, ...), else a
    ``TypeError``: parameters of an integer dtype cannot be drawn or trained."""
    if not (isinstance(value, torch.dtype) and value.is_floating_point):
        raise TypeError(f"{name} must be a floating torch dtype such as torch.float64, got {value!r}")
    return value


def check_instance(name: str, value, cls: type | tuple[type, ...]):
    """``value`` if it is an instance of ``cls``, else a ``TypeError`` naming the argument and the class."""
    if not isinstance(value, cls):
        wanted = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
        article = "an" if wanted[0].lower() in "aeiou" else "a"
        raise TypeError(f"{name} must be {article} {wanted}, got {type(value).__name__}")
    return value


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_tensor(name: str, value, *, ndim: int | None = None, dtype: torch.dtype | None = None,
                 finite: bool = True, nonempty: bool = True, nonnegative: bool = False,
                 positive: bool = False) -> torch.Tensor:
    """``value`` (a tensor, array or nested list of numbers) as a tensor, checked.

    ``dtype`` converts (float64 for theory computations); without it, tensors and arrays keep a
    floating dtype, integer and bool input become float64, and Python lists become float64. ``ndim``
    is the required number of dimensions. ``nonnegative`` requires every entry ≥ 0, ``positive`` > 0.
    """
    wrong_type = TypeError(f"{name} must be a tensor or an array of numbers, got {type(value).__name__}")
    if isinstance(value, str | bytes) or value is None:
        raise wrong_type
    try:
        # straight to ``dtype``: a Python list of floats must not pass through float32 on its way
        if isinstance(value, torch.Tensor | np.ndarray):
            tensor = torch.as_tensor(value)
        else:   # Python numbers and lists: float64 unless asked otherwise
            tensor = torch.as_tensor(value, dtype=dtype or torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise wrong_type from None
    if tensor.is_complex():
        raise TypeError(f"{name} must be real, got dtype {tensor.dtype}")
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {list(tensor.shape)}")
    if nonempty and tensor.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {list(tensor.shape)}")
    if finite and not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must hold finite numbers, got NaN or infinity")
    if nonnegative and (tensor < 0).any():
        raise ValueError(f"{name} must be non-negative, got a minimum of {tensor.min().item():.4g}")
    if positive and (tensor <= 0).any():
        raise ValueError(f"{name} must be positive, got a minimum of {tensor.min().item():.4g}")
    return tensor


def check_integers(name: str, value, *, ndim: int | None = None, low: int | None = None,
                   high: int | None = None, nonempty: bool = True) -> torch.Tensor:
    """``value`` (a tensor, array or nested list of integers: sizes, indices, labels) as an int64 tensor on
    its device, checked.

    Integer dtypes and integer-valued floats are accepted; strings, None, bools, complex numbers,
    fractional or non-finite values are not. ``ndim`` is the required number of dimensions; every entry
    must lie in ``[low, high]``.
    """
    wrong_type = TypeError(f"{name} must be a tensor or an array of integers, got {type(value).__name__}")
    if isinstance(value, str | bytes) or value is None:
        raise wrong_type
    try:
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError):
        raise wrong_type from None
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must hold integers, got dtype {tensor.dtype}")
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {list(tensor.shape)}")
    if nonempty and tensor.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {list(tensor.shape)}")
    if tensor.is_floating_point():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name} must hold finite integers, got NaN or infinity")
        if (tensor != tensor.round()).any():
            raise ValueError(f"{name} must hold integers, got fractional values such as "
                             f"{tensor[tensor != tensor.round()][0].item()!r}")
    tensor = tensor.to(torch.int64)
    if tensor.numel() and low is not None and int(tensor.min()) < low:
        raise ValueError(f"{name} must hold integers ≥ {low}, got a minimum of {int(tensor.min())}")
    if tensor.numel() and high is not None and int(tensor.max()) > high:
        raise ValueError(f"{name} must hold integers ≤ {high}, got a maximum of {int(tensor.max())}")
    return tensor


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape (no silent broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {list(a.shape)} and "
                         f"{list(b.shape)}")
