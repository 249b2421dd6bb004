"""What the kernel tests (``tests/test_kernel_<op>.py``, one file per public op of
:mod:`theorylab.kernels`, marked ``kernel``) share: where the kernels run, the one comparison of a
kernel's output with its reference, the mark for the tests that only make sense in Triton's CPU
interpreter, and the inputs that a topic's tests build the same way.

The kernels run in Triton's CPU interpreter (conftest.py turns it on before they are imported), or
compiled on a GPU with ``THEORYLAB_KERNEL_DEVICE=cuda`` (``make gpu-check``), so every kernel test builds
its inputs on ``DEVICE``. Shapes are small and odd (not multiples of the block sizes) so that a wrong
mask or an off-by-one tile shows; the kernels compute in float32 and their references run in float64 on
the same inputs.
"""

import os
import subprocess
import sys

import pytest
import torch

#: Where the kernels run: the CPU (Triton's interpreter) or "cuda" (compiled; ``make gpu-check``).
DEVICE = torch.device(os.environ.get("THEORYLAB_KERNEL_DEVICE", "cpu"))
ON_GPU = DEVICE.type == "cuda"
interpreter_only = pytest.mark.skipif(ON_GPU, reason="checks the CPU interpreter's dispatch")


def assert_close_to_reference(got, want, *, rtol, atol, what):
    """Assert that a kernel's output ``got`` matches its reference ``want`` elementwise:
    ``|got - want| ≤ atol + rtol·|want|`` (``torch.testing.assert_close``: same shape and dtype, NaN
    and inf where the other has them). Both are compared on the CPU, whatever device they were computed
    on; a failure names ``what`` (the op and which of its outputs, e.g. ``"lsa_moments"`` or
    ``"relu_gn_matvec: W part"``) before torch's report of the mismatch."""
    torch.testing.assert_close(got.cpu(), want.cpu(), rtol=rtol, atol=atol,
                               msg=lambda report: f"{what} does not match its reference: {report}")


def lsa_inputs(batch, n, d, seed=0, dtype=torch.float32):
    """``X, y, x_query, y_query, p, K`` for :func:`theorylab.kernels.lsa_moments`, on ``DEVICE``."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=gen, dtype=dtype).to(DEVICE) for shape in
                 [(batch, n, d), (batch, n), (batch, d), (batch,), (d + 1,), (d + 1, d)])


def collapse_directions_inputs(P, dtype, seed=0):
    """``size, total, lambda_w, lambda_h, s_w, s_h`` for :func:`theorylab.kernels.collapse_directions`:
    ``P`` directions (each a tensor of shape [P] and dtype ``dtype``), on ``DEVICE``."""
    gen = torch.Generator().manual_seed(seed)
    size = torch.randint(2, 60, (P,), generator=gen).to(dtype)
    total = torch.full((P,), 100.0, dtype=dtype)
    lam = (0.005 + 0.03 * torch.rand(P, generator=gen, dtype=torch.float64)).to(dtype)
    s0 = (0.2 + torch.rand(P, generator=gen, dtype=torch.float64)).to(dtype)
    return [x.to(DEVICE) for x in (size, total, lam, lam * 0.7, s0, s0 * 1.3)]


def prefix_class_stats_inputs(M, n, K, S, L, seed=0, offset=0.0, device=DEVICE):
    """``X`` [M, n] (float32, spread 2 around ``offset``), ``y`` [M] (labels in [0, K)) and ``order``
    [S, L] (S orders of L distinct rows) for :func:`theorylab.kernels.prefix_class_stats`, on
    ``device``."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(M, n, generator=g) * 2.0 + offset
    y = torch.randint(0, K, (M,), generator=g)
    order = torch.stack([torch.randperm(M, generator=g)[:L] for _ in range(S)])
    return X.to(device), y.to(device), order.to(device)



def classifier_stats_inputs(n, d, m, classes=4, seed=0):
    """``X`` [n, d], ``labels`` [n] (in [0, classes)), ``W`` [m, d], ``b`` [m], ``positive`` [m] and
    ``negative`` [m] (two different classes per classifier) for
    :func:`theorylab.kernels.classifier_stats`, on ``DEVICE``."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen)
    W = torch.randn(m, d, generator=gen)
    b = torch.randn(m, generator=gen)
    labels = torch.randint(0, classes, (n,), generator=gen)
    pos = torch.randint(0, classes, (m,), generator=gen)
    neg = (pos + torch.randint(1, classes, (m,), generator=gen)) % classes
    return tuple(t.to(DEVICE) for t in (X, labels, W, b, pos, neg))

#: (n, d, m) for the relu_gauss_newton kernels; the last two have several tiles in n, d and m at once
#: (BLOCK 32), so that mode 2's atomic adds into OUT_W from different sample tiles meet on the same
#: (neuron, input) tiles.
RELU_GN_SHAPES = [(1, 1, 1), (37, 5, 45), (70, 33, 3), (5, 70, 65), (33, 32, 32), (64, 17, 31),
                  (70, 40, 45), (97, 65, 70)]


def relu_gn_inputs(n, d, m, seed=0):
    """``X`` [n, d], ``W`` [m, d], ``v`` [m], ``dW`` [m, d], ``dv`` [m] (standard normal, float32) for
    :func:`theorylab.kernels.relu_gn_sq_norms` and :func:`theorylab.kernels.relu_gn_matvec`, on
    ``DEVICE``."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=gen).to(DEVICE)
                 for shape in [(n, d), (m, d), (m,), (m, d), (m,)])


#: Run in a fresh process by the compiled checks of the relu_gauss_newton kernels
#: (``python -c RELU_GN_COMPILED_CHECK cuda sq_norms|matvec``): conftest.py turns Triton's interpreter on
#: for the test process, so the compiled kernel needs a process without it. Prints "ok" when the op
#: matches its reference at rtol 1e-5 on shapes larger than ``RELU_GN_SHAPES``.
RELU_GN_COMPILED_CHECK = """
import sys, torch
from theorylab.kernels import (relu_gn_matvec, relu_gn_matvec_reference, relu_gn_sq_norms,
                               relu_gn_sq_norms_reference)
device, op = sys.argv[1], sys.argv[2]
gen = torch.Generator().manual_seed(0)
for n, d, m in [(257, 96, 130), (1000, 64, 300), (97, 65, 70)]:
    shapes = [(n, d), (m, d), (m,), (m, d), (m,)]
    X, W, v, dW, dv = (torch.randn(*s, generator=gen).to(device) for s in shapes)
    if op == "sq_norms":
        want = relu_gn_sq_norms_reference(*(t.double() for t in (X, W, v)))
        got = relu_gn_sq_norms(X, W, v, backend="triton").double()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    else:
        want_W, want_v = relu_gn_matvec_reference(*(t.double() for t in (X, W, v, dW, dv)))
        got_W, got_v = relu_gn_matvec(X, W, v, dW, dv, backend="triton")
        scale = max(want_W.abs().max().item(), want_v.abs().max().item())
        torch.testing.assert_close(got_W.double(), want_W, rtol=1e-5, atol=1e-5 * scale)
        torch.testing.assert_close(got_v.double(), want_v, rtol=1e-5, atol=1e-5 * scale)
print("ok")
"""


def run_without_interpreter(code, *args, timeout=600):
    """Run ``python -c code *args`` in a fresh process without ``TRITON_INTERPRET`` (so its kernels are
    compiled) and return the ``subprocess.CompletedProcess`` (text output captured)."""
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
