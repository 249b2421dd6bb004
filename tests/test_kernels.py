"""Triton kernels against their torch references, in Triton's CPU interpreter (see conftest.py), or
compiled on a GPU with ``THEORYLAB_KERNEL_DEVICE=cuda`` (``make gpu-check``).

Shapes are small and odd (not multiples of the block sizes) so that a wrong mask or an off-by-one
tile shows. The kernel computes in float32; the reference runs in float64 on the same inputs.
"""

import math
import os

import pytest
import torch

from theorylab.kernels import (
    feature_half_times,
    feature_half_times_reference,
    interpreter_on,
    lsa_moments,
    lsa_moments_reference,
    ordered_lowrank,
    ordered_lowrank_reference,
    use_triton,
)

pytestmark = pytest.mark.kernel

#: Where the kernels run: the CPU (Triton's interpreter) or "cuda" (compiled; ``make gpu-check``).
DEVICE = torch.device(os.environ.get("THEORYLAB_KERNEL_DEVICE", "cpu"))
ON_GPU = DEVICE.type == "cuda"
interpreter_only = pytest.mark.skipif(ON_GPU, reason="checks the CPU interpreter's dispatch")
#: ordered_lowrank's tl.dot uses TF32 tensor cores on a GPU (10-bit mantissa): relative error ~1e-3.
LOWRANK_RTOL = 1e-2 if ON_GPU else 1e-5

SHAPES = [(1, 1, 1), (7, 13, 5), (9, 33, 3), (5, 70, 9), (6, 17, 17), (3, 300, 2)]


def make_inputs(batch, n, d, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=gen, dtype=dtype).to(DEVICE) for shape in
                 [(batch, n, d), (batch, n), (batch, d), (batch,), (d + 1,), (d + 1, d)])


@interpreter_only
def test_interpreter_is_on_for_the_kernel_tests():
    assert interpreter_on(), "conftest.py must set TRITON_INTERPRET=1 before the kernels are imported"


@pytest.mark.parametrize("shape", SHAPES)
def test_lsa_moments_matches_reference(shape):
    inputs = make_inputs(*shape)
    got = lsa_moments(*inputs, backend="triton")
    want = lsa_moments_reference(*(t.double() for t in inputs))
    assert got.dtype == torch.float64 and got.shape == (3,)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_lsa_moments_beyond_the_kernels_largest_d_runs_the_reference():
    """K's [d, d] block lives in registers, so the Triton path stops at MAX_TRITON_D (compile_check)."""
    from theorylab.kernels.lsa_moments import MAX_TRITON_D

    inputs = make_inputs(2, 3, MAX_TRITON_D + 1, dtype=torch.float64)
    assert torch.equal(lsa_moments(*inputs), lsa_moments_reference(*inputs))
    with pytest.raises(ValueError, match=f"d ≤ {MAX_TRITON_D}"):
        lsa_moments(*inputs, backend="triton")


def test_lsa_moments_float64_inputs_reach_the_kernel_as_float32():
    inputs = make_inputs(3, 11, 5, dtype=torch.float64)
    got = lsa_moments(*inputs, backend="triton")
    assert torch.allclose(got, lsa_moments_reference(*inputs), rtol=1e-4)


def test_lsa_moments_one_step_gd_special_case():
    # p = e_{d+1}, K = [Γ; 0] gives the one-step GD prediction gᵀΓx_q.
    batch, n, d = 11, 19, 6
    X, y, x_q, y_q, _, _ = make_inputs(batch, n, d, seed=1)
    gamma = torch.randn(d, d, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    p = torch.zeros(d + 1, device=DEVICE)
    p[d] = 1.0
    K = torch.cat([gamma, torch.zeros(1, d, device=DEVICE)])
    g = torch.einsum("bn,bnd->bd", y.double(), X.double()) / n
    y_hat = torch.einsum("bi,ij,bj->b", g, gamma.double(), x_q.double())
    want = torch.stack([(y_hat**2).sum(), (y_hat * y_q.double()).sum(), (y_q.double() ** 2).sum()])
    torch.testing.assert_close(lsa_moments(X, y, x_q, y_q, p, K, backend="triton"), want,
                               rtol=1e-5, atol=1e-4)


@interpreter_only
def test_auto_backend_picks_triton_under_the_interpreter_and_torch_when_asked():
    X = torch.zeros(1, 1, 1)
    assert use_triton(X, "auto") and not use_triton(X, "torch")
    inputs = make_inputs(4, 5, 3, seed=3)
    torch.testing.assert_close(lsa_moments(*inputs, backend="torch"),
                               lsa_moments_reference(*inputs))
    with pytest.raises(ValueError, match="backend"):
        use_triton(X, "cuda")


@pytest.mark.parametrize("position, bad, match", [
    (0, torch.zeros(2, 3), "X must have shape"),
    (1, torch.zeros(2, 4), "y must have shape"),
    (2, torch.zeros(2, 5), "x_query must have shape"),
    (3, torch.zeros(3), "y_query must have shape"),
    (4, torch.zeros(3), "p must have shape"),
    (5, torch.zeros(3, 3), "K must have shape"),
])
def test_lsa_moments_validates_shapes(position, bad, match):
    inputs = list(make_inputs(2, 3, 3))
    inputs[position] = bad
    with pytest.raises(ValueError, match=match):
        lsa_moments(*inputs)


def test_lsa_moments_validates_dtypes():
    inputs = list(make_inputs(2, 3, 3))
    inputs[0] = inputs[0].to(torch.int64)
    with pytest.raises(TypeError, match="X must have a floating dtype"):
        lsa_moments(*inputs)


# ---------------------------------------------------------------------------------------------------
# ordered_lowrank: y_s = U_{:, :b_s} V_{:, :b_s}ᵀ x_s, forward and backward
# ---------------------------------------------------------------------------------------------------

LOWRANK_SHAPES = [(37, 45, 29, 19), (5, 3, 7, 2), (70, 33, 40, 65), (1, 1, 1, 1)]


def lowrank_inputs(batch, in_features, out_features, rank, seed=0, ranks=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_features, generator=gen)
    U = torch.randn(out_features, rank, generator=gen)
    V = torch.randn(in_features, rank, generator=gen)
    if ranks is None:
        ranks = torch.randint(0, rank + 1, (batch,), generator=gen)
    return x.to(DEVICE), U.to(DEVICE), V.to(DEVICE), ranks.to(DEVICE)


@pytest.mark.parametrize("shape", LOWRANK_SHAPES)
def test_ordered_lowrank_forward_and_backward_match_reference(shape):
    x, U, V, ranks = lowrank_inputs(*shape)
    grad_out = torch.randn(shape[0], shape[2], generator=torch.Generator().manual_seed(9)).to(DEVICE)
    leaves = [t.clone().requires_grad_() for t in (x, U, V)]
    leaves64 = [t.double().requires_grad_() for t in (x, U, V)]
    y = ordered_lowrank(*leaves, ranks, backend="triton")
    y64 = ordered_lowrank_reference(*leaves64, ranks)
    y.backward(grad_out)
    y64.backward(grad_out.double())
    scale = y64.abs().max().item() + 1.0
    torch.testing.assert_close(y.double(), y64.detach(), rtol=LOWRANK_RTOL, atol=LOWRANK_RTOL * scale)
    for got, want in zip(leaves, leaves64, strict=True):
        torch.testing.assert_close(got.grad.double(), want.grad, rtol=LOWRANK_RTOL,
                                   atol=LOWRANK_RTOL * (want.grad.abs().max().item() + 1.0))


@pytest.mark.parametrize("fill", [0, 1, "max"])
def test_ordered_lowrank_uniform_ranks(fill):
    batch, rank = 40, 35  # two row blocks, two rank tiles
    ranks = torch.full((batch,), rank if fill == "max" else fill, device=DEVICE)
    x, U, V, _ = lowrank_inputs(batch, 20, 24, rank, seed=1)
    keep = rank if fill == "max" else fill
    want = x.double() @ V[:, :keep].double() @ U[:, :keep].T.double()
    got = ordered_lowrank(x, U, V, ranks, backend="triton")
    torch.testing.assert_close(got.double(), want, rtol=LOWRANK_RTOL,
                               atol=1e-4 + LOWRANK_RTOL * want.abs().max().item())


def test_ordered_lowrank_validates():
    x, U, V, ranks = lowrank_inputs(4, 5, 6, 3)
    with pytest.raises(ValueError, match="ranks must lie in"):
        ordered_lowrank(x, U, V, ranks + 5)
    with pytest.raises(ValueError, match="V must have shape"):
        ordered_lowrank(x, U, V[:4], ranks)
    with pytest.raises(ValueError, match="same number of columns"):
        ordered_lowrank(x, U[:, :2], V, ranks)
    with pytest.raises(TypeError, match="ranks must be an int"):
        ordered_lowrank(x, U, V, ranks.float())
    with pytest.raises(ValueError, match="ranks must have shape"):
        ordered_lowrank(x, U, V, ranks[:2])


# ---------------------------------------------------------------------------------------------------
# feature_half_times: per-feature RK4 in registers
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("objective, depth", [("jepa", 1), ("jepa", 3), ("mae", 1), ("mae", 2)])
def test_feature_half_times_matches_reference(objective, depth):
    gen = torch.Generator().manual_seed(depth)
    n = 150  # more than one block of 128, not a multiple of it
    lam = (0.5 + torch.rand(n, generator=gen)).to(DEVICE)
    rho = (0.6 + 0.4 * torch.rand(n, generator=gen)).to(DEVICE)
    t_max = torch.full((n,), 60.0, device=DEVICE)
    got = feature_half_times(lam, rho, t_max, depth=depth, eps=0.1, objective=objective, n_steps=200,
                             backend="triton")
    want = feature_half_times_reference(lam, rho, t_max, depth=depth, eps=0.1, objective=objective,
                                        n_steps=200)
    assert torch.isfinite(want[0]).all()
    torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)


def test_feature_half_times_start_past_half_and_never():
    lam, rho = torch.tensor([1.0, 1.0], device=DEVICE), torch.tensor([0.2, 1.0], device=DEVICE)
    t_max = torch.tensor([5.0, 0.01], device=DEVICE)
    half, _ = feature_half_times(lam, rho, t_max, depth=2, eps=0.1, n_steps=10,
                                 backend="triton")
    assert half[0].item() == 0.0 and math.isinf(half[1].item())


def test_feature_half_times_validates():
    lam = torch.ones(3)
    with pytest.raises(ValueError, match="objective"):
        feature_half_times(lam, lam, lam, depth=1, eps=0.1, objective="byol")
    with pytest.raises(ValueError, match="rho must have the shape"):
        feature_half_times(lam, torch.ones(2), lam, depth=1, eps=0.1)
    with pytest.raises(ValueError, match="eps"):
        feature_half_times(lam, lam, lam, depth=1, eps=1.5)


@interpreter_only
def test_interpreter_detection_agrees_with_triton(tmp_path):
    """``interpreter_on`` asks Triton how the kernels were built, so any spelling Triton reads as true
    or false gives the same answer in both (it used to re-parse TRITON_INTERPRET its own way)."""
    import subprocess
    import sys
    # One fresh process re-imports, per spelling, the detection and a kernel module of its own, and
    # asks Triton how that kernel was built.
    code = ("import importlib, os\n"
            "from triton.runtime.interpreter import InterpretedFunction\n"
            "from theorylab.kernels import dispatch, feature_dynamics\n"
            "for value in ('1', 'true', 'on', '0', 'no', 'off', 'FALSE', '2'):\n"
            "    os.environ['TRITON_INTERPRET'] = value\n"
            "    importlib.reload(dispatch)\n"
            "    importlib.reload(feature_dynamics)\n"
            "    built = isinstance(feature_dynamics._rate, InterpretedFunction)\n"
            "    print(value, dispatch.interpreter_on(), built)\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.splitlines()
    assert len(out) == 8, out
    for line in out:
        value, ours, triton_says = line.split()
        assert ours == triton_says, line
    assert {line.split()[0]: line.split()[2] for line in out}["on"] == "True"    # both answers occur
    assert {line.split()[0]: line.split()[2] for line in out}["off"] == "False"


def test_prefix_class_stats_beyond_the_largest_class_count_runs_the_reference():
    from theorylab.kernels import prefix_class_stats, prefix_class_stats_reference
    from theorylab.kernels.prefix_class_stats import MAX_TRITON_CLASSES

    classes = MAX_TRITON_CLASSES + 1
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2 * classes, 3, generator=gen)
    y = torch.arange(2 * classes) % classes
    order = torch.randperm(2 * classes, generator=gen)[None]
    ends = torch.tensor([classes, 2 * classes])
    got = prefix_class_stats(X, y, order, ends, classes, backend="auto")
    for a, b in zip(got, prefix_class_stats_reference(X, y, order, ends, classes), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=f"n_classes ≤ {MAX_TRITON_CLASSES}"):
        prefix_class_stats(X, y, order, ends, classes, backend="triton")
