"""``ordered_lowrank``, ``y_s = U_{:, :b_s} V_{:, :b_s}ᵀ x_s`` with one rank per sample, forward and
backward against its torch reference, and its input checks."""

import pytest
import torch
from kernel_helpers import DEVICE, ON_GPU, assert_close_to_reference

from theorylab.kernels import ordered_lowrank, ordered_lowrank_reference

pytestmark = pytest.mark.kernel

#: ordered_lowrank's tl.dot uses TF32 tensor cores on a GPU (10-bit mantissa): relative error ~1e-3.
LOWRANK_RTOL = 1e-2 if ON_GPU else 1e-5

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
    assert_close_to_reference(y.double(), y64.detach(), rtol=LOWRANK_RTOL, atol=LOWRANK_RTOL * scale,
                              what="ordered_lowrank: y")
    for name, got, want in zip("xUV", leaves, leaves64, strict=True):
        assert_close_to_reference(got.grad.double(), want.grad, rtol=LOWRANK_RTOL,
                                  atol=LOWRANK_RTOL * (want.grad.abs().max().item() + 1.0),
                                  what=f"ordered_lowrank: the gradient of {name}")


@pytest.mark.parametrize("fill", [0, 1, "max"])
def test_ordered_lowrank_uniform_ranks(fill):
    batch, rank = 40, 35  # two row blocks, two rank tiles
    ranks = torch.full((batch,), rank if fill == "max" else fill, device=DEVICE)
    x, U, V, _ = lowrank_inputs(batch, 20, 24, rank, seed=1)
    keep = rank if fill == "max" else fill
    want = x.double() @ V[:, :keep].double() @ U[:, :keep].T.double()
    got = ordered_lowrank(x, U, V, ranks, backend="triton")
    assert_close_to_reference(got.double(), want, rtol=LOWRANK_RTOL,
                              atol=1e-4 + LOWRANK_RTOL * want.abs().max().item(),
                              what=f"ordered_lowrank (every rank {fill})")


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

