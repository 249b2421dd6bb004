"""Which implementation a launcher runs: Triton or the torch reference."""

from __future__ import annotations

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
