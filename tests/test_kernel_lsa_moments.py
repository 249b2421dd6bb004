"""``lsa_moments`` (linear self-attention's risk moments over a batch of prompts) against its torch
reference: odd shapes, the largest d the kernel takes, float64 input, the one-step-GD special case,
and its input checks."""

import pytest
import torch
from kernel_helpers import DEVICE, assert_close_to_reference, lsa_inputs

from theorylab.kernels import lsa_moments, lsa_moments_reference

pytestmark = pytest.mark.kernel

SHAPES = [(1, 1, 1), (7, 13, 5), (9, 33, 3), (5, 70, 9), (6, 17, 17), (3, 300, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_lsa_moments_matches_reference(shape):
    inputs = lsa_inputs(*shape)
    got = lsa_moments(*inputs, backend="triton")
    want = lsa_moments_reference(*(t.double() for t in inputs))
    assert got.dtype == torch.float64 and got.shape == (3,)
    assert_close_to_reference(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item(), what="lsa_moments")


def test_lsa_moments_beyond_the_kernels_largest_d_runs_the_reference():
    """K's [d, d] block lives in registers, so the Triton path stops at MAX_TRITON_D (compile_check)."""
    from theorylab.kernels.lsa_moments import MAX_TRITON_D

    inputs = lsa_inputs(2, 3, MAX_TRITON_D + 1, dtype=torch.float64)
    assert torch.equal(lsa_moments(*inputs), lsa_moments_reference(*inputs))
    with pytest.raises(ValueError, match=f"d ≤ {MAX_TRITON_D}"):
        lsa_moments(*inputs, backend="triton")


def test_lsa_moments_float64_inputs_reach_the_kernel_as_float32():
    inputs = lsa_inputs(3, 11, 5, dtype=torch.float64)
    got = lsa_moments(*inputs, backend="triton")
    assert_close_to_reference(got, lsa_moments_reference(*inputs), rtol=1e-4, atol=1e-8,
                              what="lsa_moments (float64 inputs)")


def test_lsa_moments_one_step_gd_special_case():
    # p = e_{d+1}, K = [Γ; 0] gives the one-step GD prediction gᵀΓx_q.
    batch, n, d = 11, 19, 6
    X, y, x_q, y_q, _, _ = lsa_inputs(batch, n, d, seed=1)
    gamma = torch.randn(d, d, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    p = torch.zeros(d + 1, device=DEVICE)
    p[d] = 1.0
    K = torch.cat([gamma, torch.zeros(1, d, device=DEVICE)])
    g = torch.einsum("bn,bnd->bd", y.double(), X.double()) / n
    y_hat = torch.einsum("bi,ij,bj->b", g, gamma.double(), x_q.double())
    want = torch.stack([(y_hat**2).sum(), (y_hat * y_q.double()).sum(), (y_q.double() ** 2).sum()])
    assert_close_to_reference(lsa_moments(X, y, x_q, y_q, p, K, backend="triton"), want, rtol=1e-5, atol=1e-4,
                              what="lsa_moments (one-step GD)")


@pytest.mark.parametrize("position, bad, match", [
    (0, torch.zeros(2, 3), "X must have shape"),
    (1, torch.zeros(2, 4), "y must have shape"),
    (2, torch.zeros(2, 5), "x_query must have shape"),
    (3, torch.zeros(3), "y_query must have shape"),
    (4, torch.zeros(3), "p must have shape"),
    (5, torch.zeros(3, 3), "K must have shape"),
])
def test_lsa_moments_validates_shapes(position, bad, match):
    inputs = list(lsa_inputs(2, 3, 3))
    inputs[position] = bad
    with pytest.raises(ValueError, match=match):
        lsa_moments(*inputs)


def test_lsa_moments_validates_dtypes():
    inputs = list(lsa_inputs(2, 3, 3))
    inputs[0] = inputs[0].to(torch.int64)
    with pytest.raises(TypeError, match="X must have a floating dtype"):
        lsa_moments(*inputs)

