"""``relu_gn_matvec`` (the Gauss–Newton matrix–vector product ``H u = Jᵀ (J u) / n``, ``u = (dW, dv)``, of
chapter 4's two-layer ReLU network) against its torch reference on small odd shapes, some with several
tiles along every axis, and compiled on a CUDA GPU at float32 accuracy."""

import pytest
import torch
from kernel_helpers import (
    RELU_GN_COMPILED_CHECK,
    RELU_GN_SHAPES,
    assert_close_to_reference,
    relu_gn_inputs,
    run_without_interpreter,
)

from theorylab.kernels import relu_gn_matvec, relu_gn_matvec_reference


@pytest.mark.kernel
@pytest.mark.parametrize("shape", RELU_GN_SHAPES)
def test_relu_gn_matvec_kernel_matches_reference(shape):
    X, W, v, dW, dv = relu_gn_inputs(*shape, seed=1)
    got_W, got_v = relu_gn_matvec(X, W, v, dW, dv, backend="triton")
    want_W, want_v = relu_gn_matvec_reference(*(t.double() for t in (X, W, v, dW, dv)))
    assert got_W.shape == W.shape and got_v.shape == v.shape
    scale = max(want_W.abs().max().item(), want_v.abs().max().item()) + 1
    assert_close_to_reference(got_W.double(), want_W, rtol=1e-5, atol=1e-5 * scale,
                              what="relu_gn_matvec: the W part")
    assert_close_to_reference(got_v.double(), want_v, rtol=1e-5, atol=1e-5 * scale,
                              what="relu_gn_matvec: the v part")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the compiled kernel)")
def test_relu_gn_matvec_compiled_on_cuda_is_float32_accurate():
    """The compiled kernel, not the interpreter (conftest.py turns it on for this process, so the check
    runs in a fresh one without it), at rtol 1e-5: TF32 matmuls (relative error ~1e-3) would fail.
    Not marked ``kernel``: ``make gpu-check`` already runs the test above compiled."""
    done = run_without_interpreter(RELU_GN_COMPILED_CHECK, "cuda", "matvec")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
