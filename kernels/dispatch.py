"""Which implementation a launcher runs: Triton or the torch reference."""

from __future__ import annotations

import numbers

import numpy as np
import torch
import triton
from triton.runtime.interpreter import InterpretedFunction

BACKENDS = ("auto", "triton", "torch")


@triton.jit
def _probe(x_ptr):
    pass


def interpreter_on() -> bool:
    """True when the kernels were built for Triton's CPU interpreter.

    Triton reads ``TRITON_INTERPRET`` once, when ``@triton.jit`` decorates a kernel (with its own
    truthiness: ``1``/``true``/``on``…), so this asks Triton how a kernel of this package was actually
    built instead of re-reading the variable.
    """
    return isinstance(_probe, InterpretedFunction)


def use_triton(tensor: torch.Tensor, backend: str = "auto") -> bool:
    """Decide whether to launch the Triton kernel for ``tensor``.

    ``backend="auto"`` picks Triton for CUDA tensors, or for CPU tensors when the interpreter is on,
    and the torch reference otherwise; ``"triton"`` and ``"torch"`` force a choice.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    runnable = tensor.is_cuda or (tensor.device.type == "cpu" and interpreter_on())
    if backend == "triton" and not runnable:
        raise RuntimeError(
            "backend='triton' needs a CUDA tensor or TRITON_INTERPRET=1 set before import; "
            f"got a tensor on {tensor.device}")
    return runnable


def check_finite(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the first of ``tensors`` that holds NaN or infinity (``None`` is
    skipped): a launcher refuses non-finite input instead of returning NaN from it."""
    for name, tensor in tensors.items():
        if tensor is not None and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} must hold finite numbers, got NaN or infinity")


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """Raise ``TypeError`` unless ``tensors`` (``None`` is skipped) share one dtype, naming them all: mixed
    float32/float64 input would otherwise fail deep inside the torch reference (and be rounded to float32
    without a word on the Triton path)."""
    named = {name: t for name, t in tensors.items() if t is not None}
    if len({t.dtype for t in named.values()}) > 1:
        got = ", ".join(f"{name} {str(t.dtype).removeprefix('torch.')}" for name, t in named.items())
        raise TypeError(f"{', '.join(named)} must share one floating dtype, got {got}")


def check_int(name: str, value, *, low: int = 1) -> int:
    """``value`` as an ``int`` ≥ ``low``: Python or numpy integers (not bools); ``TypeError`` for another
    type, ``ValueError`` below ``low``. (The kernels do not import ``theorylab``: this is the kernels'
    copy of ``theorylab.utils.validation.check_int``.)"""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def check_real(name: str, value, *, low: float, high: float) -> float:
    """``value`` as a ``float`` in the open interval ``(low, high)``: Python or numpy reals (not bools)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not low < value < high:
        raise ValueError(f"{name} must lie in ({low:g}, {high:g}), got {value!r}")
    return value
