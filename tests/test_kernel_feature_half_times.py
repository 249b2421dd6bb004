"""``feature_half_times``, the per-feature Runge–Kutta integration of chapter 2's ODE held in
registers, against its torch reference; a feature that starts past half and one that never gets there;
its input checks."""

import math

import pytest
import torch
from kernel_helpers import DEVICE, assert_close_to_reference

from theorylab.kernels import feature_half_times, feature_half_times_reference

pytestmark = pytest.mark.kernel


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
    assert_close_to_reference(got[0], want[0], rtol=1e-4, atol=1e-4, what="feature_half_times: half times")
    assert_close_to_reference(got[1], want[1], rtol=1e-5, atol=1e-6, what="feature_half_times: final values")


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

