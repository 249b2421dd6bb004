"""``relu_gn_sq_norms`` (the per-sample squared gradient norms ``‖∇_θ f(x_i)‖²`` of chapter 4's two-layer
ReLU network; their mean is the Gauss–Newton trace) against its torch reference on small odd shapes, and
compiled on a CUDA GPU at float32 accuracy."""

import pytest
import torch
from kernel_helpers import (
    RELU_GN_COMPILED_CHECK,
    RELU_GN_SHAPES,
    assert_close_to_reference,
    relu_gn_inputs,
    run_without_interpreter,
)

from theorylab.kernels import relu_gn_sq_norms, relu_gn_sq_norms_reference


@pytest.mark.kernel
@pytest.mark.parametrize("shape", RELU_GN_SHAPES)
def test_relu_gn_sq_norms_kernel_matches_reference(shape):
    X, W, v, _, _ = relu_gn_inputs(*shape)
    got = relu_gn_sq_norms(X, W, v, backend="triton")
    want = relu_gn_sq_norms_reference(X.double(), W.double(), v.double())
    assert got.shape == (shape[0],) and got.dtype == torch.float32
    assert_close_to_reference(got.double(), want, rtol=1e-5, atol=1e-5 * (want.abs().max().item() + 1),
                              what="relu_gn_sq_norms")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the compiled kernel)")
def test_relu_gn_sq_norms_compiled_on_cuda_is_float32_accurate():
    """The compiled kernel, not the interpreter (conftest.py turns it on for this process, so the check
    runs in a fresh one without it), at rtol 1e-5: TF32 matmuls (relative error ~1e-3) would fail.
    Not marked ``kernel``: ``make gpu-check`` already runs the test above compiled."""
    done = run_without_interpreter(RELU_GN_COMPILED_CHECK, "cuda", "sq_norms")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
