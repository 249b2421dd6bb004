"""Which implementation a launcher runs: Triton or the torch reference."""

from __future__ import annotations

import os

import torch

BACKENDS = ("auto", "triton", "torch")


def interpreter_on() -> bool:
    """True when Triton's CPU interpreter is enabled (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0", "false", "False")


def use_triton(tensor: torch.Tensor, backend: str = "auto") -> bool:
    """Decide whether to launch the Triton kernel for ``tensor``.

    ``backend="auto"`` picks Triton for CUDA tensors, or for CPU tensors when the interpreter is on,
    and the torch reference otherwise; ``"triton"`` and ``"torch"`` force a choice.
    """
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
