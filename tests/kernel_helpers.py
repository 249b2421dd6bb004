"""What the kernel tests (``tests/test_kernel_<op>.py``, marked ``kernel``) share: where the kernels
run, and the mark for the tests that only make sense in Triton's CPU interpreter.

The kernels run in Triton's CPU interpreter (conftest.py turns it on before they are imported), or
compiled on a GPU with ``THEORYLAB_KERNEL_DEVICE=cuda`` (``make gpu-check``). Shapes are small and odd
(not multiples of the block sizes) so that a wrong mask or an off-by-one tile shows; the kernels
compute in float32 and their references run in float64 on the same inputs.
"""

import os

import pytest
import torch

#: Where the kernels run: the CPU (Triton's interpreter) or "cuda" (compiled; ``make gpu-check``).
DEVICE = torch.device(os.environ.get("THEORYLAB_KERNEL_DEVICE", "cpu"))
ON_GPU = DEVICE.type == "cuda"
interpreter_only = pytest.mark.skipif(ON_GPU, reason="checks the CPU interpreter's dispatch")


def lsa_inputs(batch, n, d, seed=0, dtype=torch.float32):
    """``X, y, x_query, y_query, p, K`` for :func:`theorylab.kernels.lsa_moments`, on ``DEVICE``."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=gen, dtype=dtype).to(DEVICE) for shape in
                 [(batch, n, d), (batch, n), (batch, d), (batch,), (d + 1,), (d + 1, d)])
