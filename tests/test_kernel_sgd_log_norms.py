"""``sgd_log_norms`` (chapter 7's linearised SGD: the growth rate of log‖e‖ for every learning rate ×
run) against its torch reference and a float64 loop on odd shapes, and the distribution of the data it
draws itself (Philox)."""

import pytest
import torch
from kernel_helpers import DEVICE, assert_close_to_reference

from theorylab.kernels import sgd_log_norms, sgd_log_norms_reference

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("runs, steps, batch, d, burn", [(3, 5, 3, 7, 1), (2, 4, 1, 19, 0), (1, 3, 5, 33, 2)])
def test_sgd_log_norms_matches_reference_on_odd_shapes(runs, steps, batch, d, burn):
    gen = torch.Generator().manual_seed(runs * 100 + d)
    lam = torch.rand(d, generator=gen) + 0.5
    lrs = torch.tensor([0.05, 0.3, 1.5])                          # the last one diverges
    e0 = torch.randn(runs, d, generator=gen)
    X = torch.randn(runs, steps, batch, d, generator=gen)
    on = [t.to(DEVICE) for t in (lam, lrs, e0, X)]
    got, got_e = sgd_log_norms(*on[:3], steps=steps, batch=batch, burn_in=burn, X=on[3], backend="triton")
    got, got_e = got.cpu(), got_e.cpu()
    want, want_e = sgd_log_norms_reference(lam, lrs, e0, steps=steps, batch=batch, burn_in=burn, X=X)
    # Not bitwise, and it cannot be: the kernel sums the float32 products x_k e_k of each dot product with
    # tl.sum (a tree over the BLOCK_D lanes on the GPU, numpy's pairwise sum in the interpreter) and torch's
    # einsum sums them in another order, and on the GPU tl.sqrt / tl.log are not torch's sqrt / log, so
    # every step may differ in the last bits. Renormalising e every step keeps these differences from
    # compounding: on these shapes they are at most 3 ulp (measured in the interpreter) for values of
    # order 1, so we allow 32 float32 epsilons, absolute and relative, ten times that.
    tol = 32 * torch.finfo(torch.float32).eps
    assert_close_to_reference(got, want, rtol=tol, atol=tol, what="sgd_log_norms: rates")
    assert_close_to_reference(got_e, want_e, rtol=tol, atol=tol, what="sgd_log_norms: final directions")
    assert (got[2] > 0).all()                                      # measured, not overflowed
    # float64 library path on the same data agrees to float32 rounding
    lib = torch.empty_like(want)
    for r in range(runs):
        e = e0[r].double() / e0[r].double().norm()
        for k, lr in enumerate(lrs.tolist()):
            v, acc = e.clone(), 0.0
            for t in range(steps):
                x = X[r, t].double() * lam.double().sqrt()
                v = v - lr / batch * x.T @ (x @ v)
                n = v.norm()
                acc += n.log().item() if t >= burn else 0.0
                v = v / n
            lib[k, r] = acc / (steps - burn)
    assert_close_to_reference(got, lib, rtol=tol, atol=tol, what="sgd_log_norms: rates vs a float64 loop")


def test_sgd_log_norms_generated_data_is_gaussian_in_distribution():
    """Philox batches: with a small step the growth rate of log‖e‖ is −η uᵀΣu per step to first order, so
    Σ = λI gives −ηλ (plus O(η²)); compare the mean over runs with that."""
    lam = torch.full((5,), 2.0)
    e0 = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    rates, _ = sgd_log_norms(lam.to(DEVICE), torch.tensor([0.01], device=DEVICE),
                             e0.to(DEVICE), steps=20, batch=1, seed=7, backend="triton")
    rates = rates.cpu()
    eta = 0.01
    # second-order terms: ½η²E‖H₁u‖² − η²E(uᵀH₁u)² = η²λ²((d + 2)/2 − 3) ≈ 2·10⁻⁴; the mean over 8 runs of
    # 20 steps has a standard error of about 2·10⁻³ (the per-step log factor has s.d. ≈ √2 ηλ)
    assert rates.mean().item() == pytest.approx(-eta * 2.0, abs=0.008)
    assert rates.std().item() > 0                                   # the runs see different data
