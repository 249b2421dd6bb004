import math

import numpy as np
import pytest
import torch

from theorylab import batchsize as bs

F64 = torch.float64


def spike(d, theta):
    lam = torch.ones(d, dtype=F64)
    lam[0] += theta
    return lam


def test_marchenko_pastur_edges_mass_and_moments():
    for q in (0.25, 1.0, 4.0):
        law = bs.marchenko_pastur(q)
        assert law.lower == pytest.approx((1 - math.sqrt(q)) ** 2)
        assert law.upper == pytest.approx((1 + math.sqrt(q)) ** 2)
        theta = torch.linspace(0, math.pi, 20001, dtype=F64)       # x = 1 + q − 2√q cos θ
        x = 1 + q - 2 * math.sqrt(q) * torch.cos(theta)
        weight = law.density(x) * 2 * math.sqrt(q) * torch.sin(theta)   # density · dx/dθ
        mass = torch.trapezoid(weight, theta).item()
        mean = torch.trapezoid(x * weight, theta).item()
        second = torch.trapezoid(x**2 * weight, theta).item()
        assert mass == pytest.approx(1 - law.atom, abs=2e-3)
        assert mean == pytest.approx(1.0, abs=2e-3)                   # the atom sits at 0
        assert second - 1 == pytest.approx(q, abs=5e-3)              # variance q
        assert law.cdf(torch.tensor([law.upper + 1.0])).item() == pytest.approx(1.0, abs=1e-9)
    assert bs.marchenko_pastur(4.0).atom == pytest.approx(0.75)
    assert bs.wigner_edge(4.0) == 5.0


def test_spike_outlier_above_and_below_bbp():
    top, overlap = bs.spike_outlier(3.0, 1.0)
    assert top == pytest.approx(4 * (1 + 1 / 3)) and overlap == pytest.approx((1 - 1 / 9) / (1 + 1 / 3))
    assert bs.spike_outlier(0.5, 1.0) == (4.0, 0.0)
    assert bs.bbp_batch(2.0, 400) == 100.0
    # the learning-rate law (2/λ₁)/(1 + B_c/B) with B_c = d/θ above BBP
    assert bs.outlier_learning_rate(9.0, 100, 64) == pytest.approx((2 / 10) / (1 + (100 / 9) / 64))


def test_batch_hessian_eigenvalues_match_dense_eigensolver_and_are_seeded():
    lam = spike(7, 2.0)
    for batch in (3, 7, 11):
        spectra, overlap = bs.batch_hessian_eigenvalues(lam, batch, 2, seed=5, spike_overlap=True)
        again = bs.batch_hessian_eigenvalues(lam, batch, 2, seed=5)
        torch.testing.assert_close(spectra, again)
        gen = torch.Generator().manual_seed(5)
        X = torch.randn(2, batch, 7, generator=gen, dtype=F64) * lam.sqrt()
        vals, vecs = torch.linalg.eigh(X.transpose(1, 2) @ X / batch)
        torch.testing.assert_close(spectra, vals.flip(-1), atol=1e-10, rtol=0)
        torch.testing.assert_close(overlap, vecs[:, 0, -1] ** 2, atol=1e-10, rtol=0)
        if batch < 7:
            assert (spectra[:, batch:].abs() < 1e-12).all()


def test_subsample_at_full_batch_is_the_data_hessian():
    X = torch.randn(9, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    full = torch.linalg.eigvalsh(X.T @ X / 9)[-1]
    torch.testing.assert_close(bs.subsample_top_eigenvalue(X, 9, 3, seed=1), full.expand(3))


def test_ms_threshold_is_the_root_and_matches_closed_forms():
    for d, batch in ((1, 1), (5, 3), (50, 7), (100, 1000)):
        closed = bs.isotropic_ms_threshold(d, batch)
        assert bs.ms_threshold(torch.ones(d, dtype=F64), batch) == pytest.approx(closed, rel=1e-13)
    lam = torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=F64)
    for batch in (1, 4, 32):
        eta = bs.ms_threshold(lam, batch)
        assert bs.ms_rate(eta, lam, batch) == pytest.approx(1.0, abs=1e-10)
        assert bs.ms_rate(0.99 * eta, lam, batch) < 1 < bs.ms_rate(1.01 * eta, lam, batch)
        assert eta <= 2 * batch / lam.sum().item() and eta <= 2 / ((1 + 1 / batch) * 3.0)


def test_ms_rate_is_the_full_operator_radius():
    """The d²×d² second-moment operator built from the fourth-moment formula has the same radius."""
    lam = torch.tensor([2.0, 1.0, 0.3], dtype=F64)
    Sigma, d, batch, eta = torch.diag(lam), 3, 2, 0.4
    basis = torch.eye(d * d, dtype=F64).reshape(d * d, d, d)
    columns = []
    for S in basis:
        ES = (1 + 1 / batch) * Sigma @ S @ Sigma + torch.trace(Sigma @ S) / batch * Sigma
        columns.append((S - eta * (Sigma @ S + S @ Sigma) + eta**2 * ES).reshape(-1))
    T = torch.stack(columns, 1)
    assert torch.linalg.eigvals(T).abs().max().item() == pytest.approx(bs.ms_rate(eta, lam, batch), rel=1e-10)


def test_second_moment_step_matches_monte_carlo():
    lam = torch.tensor([2.0, 0.5], dtype=F64)
    s = torch.tensor([1.0, 3.0], dtype=F64)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(200000, 3, 2, generator=gen, dtype=F64) * lam.sqrt()
    e = torch.randn(200000, 2, generator=gen, dtype=F64) * s.sqrt()
    r = torch.einsum("nbd,nd->nb", x, e)
    e_new = e - 0.2 / 3 * torch.einsum("nb,nbd->nd", r, x)
    mc = (e_new**2).mean(0)
    torch.testing.assert_close(mc, bs.second_moment_step(0.2, lam, 3, s), rtol=0.02, atol=0)


def test_kurtosis_threshold_closed_form_and_monte_carlo():
    """Inputs x = Σ^{1/2} z with independent z_k, E z⁴ = κ: 1 + 1/B becomes 1 + (κ − 2)/B."""
    lam = torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=F64)
    assert bs.ms_threshold(lam, 4, kurtosis=3.0) == bs.ms_threshold(lam, 4)
    for d, batch, kappa in ((10, 3, 1.0), (5, 1, 1.5), (50, 7, 6.0)):
        closed = 2 * batch / (d + batch + kappa - 2)
        got = bs.ms_threshold(torch.ones(d, dtype=F64), batch, kurtosis=kappa)
        assert got == pytest.approx(closed, rel=1e-13)
    for batch, kappa in ((2, 1.0), (1, 9.0)):
        eta = bs.ms_threshold(lam, batch, kurtosis=kappa)
        assert bs.ms_rate(eta, lam, batch, kurtosis=kappa) == pytest.approx(1.0, abs=1e-10)
    # random signs (κ = 1): one step of the diagonal second moment, by Monte Carlo
    gen = torch.Generator().manual_seed(4)
    lam2, s = torch.tensor([2.0, 0.5], dtype=F64), torch.tensor([1.0, 3.0], dtype=F64)
    z = torch.randint(0, 2, (200000, 3, 2), generator=gen).to(F64) * 2 - 1
    x = z * lam2.sqrt()
    e = torch.randn(200000, 2, generator=gen, dtype=F64) * s.sqrt()
    e_new = e - 0.2 / 3 * torch.einsum("nb,nbd->nd", torch.einsum("nbd,nd->nb", x, e), x)
    want = bs.second_moment_step(0.2, lam2, 3, s, kurtosis=1.0)
    torch.testing.assert_close((e_new**2).mean(0), want, rtol=0.02, atol=0)
    assert not torch.allclose(want, bs.second_moment_step(0.2, lam2, 3, s), rtol=0.05)   # κ matters here
    with pytest.raises(ValueError, match="kurtosis must give"):
        bs.ms_threshold(lam, 1, kurtosis=1.0)


def test_rmsprop_state_prediction_has_the_mean_of_v_hat():
    lam = torch.tensor([1.0, 0.5, 0.25], dtype=F64)
    risk, v_hat, v_pred = bs.rmsprop_risk(lam, 2, [0.05], samples=200, noise=0.5, runs=2000, beta2=0.9,
                                          seed=1, return_state=True)
    assert risk.shape == (1, 2000) and v_hat.shape == v_pred.shape == (1, 2000, 3)
    diff = (v_hat - v_pred)[0] / lam
    se = diff.std(0) / math.sqrt(2000)
    assert (diff.mean(0).abs() < 4 * se).all()
    assert torch.equal(bs.rmsprop_risk(lam, 2, [0.05], samples=200, noise=0.5, runs=2000, beta2=0.9, seed=1),
                       risk)


def test_expansions_and_frozen_rmsprop():
    lam = spike(100, 9.0)
    assert bs.small_batch_threshold(lam, 1) == pytest.approx(bs.ms_threshold(lam, 1), rel=3e-3)
    assert bs.large_batch_threshold(lam, 1024) == pytest.approx(bs.ms_threshold(lam, 1024), rel=1e-6)
    lam = 1 / torch.arange(1, 21, dtype=F64)
    eta = [bs.frozen_rmsprop_threshold(lam, b, 0.5) for b in (1, 16, 1024)]
    assert eta[1] > eta[0] and eta[1] > eta[2]
    assert eta[0] == pytest.approx(0.5 * bs.ms_threshold(lam.sqrt(), 1))


def test_expected_risk_is_the_mean_of_simulated_sgd_and_best_lr():
    lam = torch.tensor([1.0, 0.5, 0.25], dtype=F64)
    runs = bs.sgd_risk(lam, 2, [0.3], samples=40, noise=0.3, runs=4000, seed=2)
    exact = bs.expected_sgd_risk(lam, 2, [0.3], samples=40, noise=0.3)
    se = runs.std().item() / math.sqrt(4000)
    assert abs(runs.mean().item() - exact.item()) < 4 * se
    grid = torch.logspace(-2, 0, 9, dtype=F64)
    risk = (grid.log() - math.log(0.1)) ** 2 + 1
    assert bs.best_lr(grid, risk) == pytest.approx(0.1, rel=1e-6)
    assert bs.loglog_slope([1, 2, 4], [3.0, 6.0, 12.0]) == pytest.approx(1.0)
    r = bs.rmsprop_risk(lam, 2, [1e-3, 1e-2], samples=20, noise=0.3, runs=3, beta2=0.9, seed=0)
    assert r.shape == (2, 3) and torch.isfinite(r).all()


def test_lyapunov_exponents_of_gd_like_steps():
    # B large and η small: every run contracts at about log|1 − ηλ_min| per step
    lam = torch.tensor([1.0, 0.5], dtype=F64)
    ex = bs.lyapunov_exponents(lam, 400, [0.1], runs=3, steps=200, burn_in=50, seed=0)
    assert ex.shape == (1, 3)
    assert ex.mean().item() == pytest.approx(math.log(1 - 0.05), rel=0.05)


@pytest.mark.parametrize("call, match", [
    (lambda: bs.marchenko_pastur(0.0), "q must be >"),
    (lambda: bs.spike_outlier(-1.0, 1.0), "theta"),
    (lambda: bs.ms_threshold([1.0, -1.0], 2), "eigenvalues must be positive"),
    (lambda: bs.ms_threshold([1.0], 0), "batch must be an integer"),
    (lambda: bs.ms_rate(0.0, [1.0], 1), "lr must be >"),
    (lambda: bs.batch_hessian_eigenvalues(torch.ones(2, 2), 2, 1), "eigenvalues must have 1 dimension"),
    (lambda: bs.subsample_top_eigenvalue(torch.ones(4, 2), 5, 1), "batch must be an integer in"),
    (lambda: bs.lyapunov_exponents([1.0], 1, [-0.1], runs=1, steps=2), "lrs must be positive"),
    (lambda: bs.rmsprop_risk([1.0], 1, [0.1], samples=2, noise=0.1, runs=1, beta2=1.0), "beta2"),
    (lambda: bs.best_lr([0.1, 0.2, 0.3], [1.0, 2.0, 3.0]), "end of the grid"),
    (lambda: bs.best_lr([1.0, 0.5, 0.1], [2.0, 1.0, 2.0]), "strictly increasing"),
    (lambda: bs.second_moment_step(0.1, [1.0, 2.0], 1, torch.ones(3, dtype=F64)),
     "must end in the dimension"),
    (lambda: bs.large_batch_threshold(torch.tensor([10.0, 9.9, 9.9], dtype=F64), 100), "batch must exceed"),
    (lambda: bs.marchenko_pastur("1"), "q must be a real number"),
])
def test_validation(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_numpy_scalars_are_accepted():
    assert bs.isotropic_ms_threshold(np.int64(5), np.int32(3)) == pytest.approx(6 / 9)


# --------------------------------------------------------------------------------------------------
# sgd_log_norms' Philox offsets and input checks (the kernel against its reference:
# tests/test_kernel_sgd_log_norms.py)
# --------------------------------------------------------------------------------------------------

def test_philox_offsets_need_int64_beyond_the_chapter_scale():
    """The kernel draws x_b at step t from Philox offsets (t·B + b)·BLOCK_D + k, computed in int64."""
    from kernels.batch_sgd_grid import max_philox_offset
    assert max_philox_offset(steps=5, batch=3, d=7) == (4 * 3 + 2) * 16 + 15
    full = max_philox_offset(steps=2000, batch=1024, d=400)           # the chapter's full scale
    assert full == 2000 * 1024 * 512 - 1 and full < 2**31 - 1          # ≈ 1.05·10⁹: fits int32, by 2×
    # a little over twice the steps, or d up to the kernel's 1024 with 2100 steps, would overflow int32
    assert max_philox_offset(steps=4200, batch=1024, d=400) > 2**31 - 1
    assert max_philox_offset(steps=2100, batch=1024, d=1024) > 2**31 - 1


def test_kernel_validates():
    from theorylab.kernels import sgd_log_norms
    lam, e0 = torch.ones(3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="X must have shape"):
        sgd_log_norms(lam, torch.tensor([0.1]), e0, steps=4, batch=2, X=torch.ones(2, 4, 2, 5))
    with pytest.raises(ValueError, match="lrs must be positive"):
        sgd_log_norms(lam, torch.tensor([-0.1]), e0, steps=4, batch=2)
    with pytest.raises(ValueError, match="burn_in"):
        sgd_log_norms(lam, torch.tensor([0.1]), e0, steps=4, batch=2, burn_in=4)
    with pytest.raises(ValueError, match="seed must be an integer"):
        sgd_log_norms(lam, torch.tensor([0.1]), e0, steps=4, batch=2, seed=2**31)


# --- momentum (Adam's EMA momentum with a frozen preconditioner) -----------------------------------------

def test_momentum_map_at_zero_beta_is_the_sgd_map():
    lam = torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)
    a = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    moments = torch.stack([a, torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)], 1)
    step = bs.momentum_second_moment_step(0.3, lam, 4, 0.0, moments, noise=0.7)
    sgd = bs.second_moment_step(0.3, lam, 4, a, noise=0.7)
    torch.testing.assert_close(step[:, 0], sgd, rtol=1e-15, atol=0)
    for B in (1, 3, 50):
        assert bs.momentum_ms_threshold(lam, B, 0.0) == pytest.approx(bs.ms_threshold(lam, B), rel=1e-14)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("batch", [1, 3, 16, 256])
def test_momentum_threshold_is_where_the_full_map_turns_unstable(beta, batch):
    lam = 1 / torch.arange(1, 7, dtype=torch.float64)
    eta = bs.momentum_ms_threshold(lam, batch, beta)
    below = bs.momentum_ms_rate(eta * (1 - 1e-7), lam, batch, beta)
    above = bs.momentum_ms_rate(eta * (1 + 1e-7), lam, batch, beta)
    assert below < 1 < above
    # the stable set is an interval: every smaller step size is stable
    for fraction in (0.05, 0.3, 0.6, 0.9, 0.99):
        assert bs.momentum_ms_rate(fraction * eta, lam, batch, beta) < 1
    assert eta < 2 * (1 + beta) / ((1 - beta) * lam.max().item())     # below heavy ball's noise-free bound


def test_momentum_moments_match_simulation():
    lam = torch.tensor([1.0, 0.6, 0.3, 0.1], dtype=torch.float64)
    runs = bs.momentum_sgd_moments(lam, 2, 0.5, 0.9, steps=20, runs=20_000, seed=1)
    exact = torch.zeros(4, 3, dtype=torch.float64)
    exact[:, 0] = 1.0
    for _ in range(20):
        exact = bs.momentum_second_moment_step(0.5, lam, 2, 0.9, exact)
    z = (runs.mean(0) - exact) / (runs.std(0) / runs.shape[0] ** 0.5)
    assert z.abs().max() < 4.5             # 12 comparisons, each Gaussian to a good approximation


def test_frozen_adam_threshold_scales_like_rmsprop():
    lam = 1 / torch.arange(1, 11, dtype=torch.float64)
    rmsprop = bs.frozen_rmsprop_threshold(lam, 8, 0.5)
    assert bs.frozen_adam_threshold(lam, 8, 0.5, 0.0) == pytest.approx(rmsprop, rel=1e-14)
    assert bs.frozen_adam_threshold(lam, 8, 1.0, 0.9) == pytest.approx(
        2 * bs.frozen_adam_threshold(lam, 8, 0.5, 0.9), rel=1e-14)   # linear in σ


@pytest.mark.parametrize("call, error, message", [
    (lambda: bs.momentum_ms_threshold([1.0, 0.5], 4, 1.0), ValueError, "beta must be < 1"),
    (lambda: bs.momentum_ms_threshold([1.0, 0.5], 4, -0.1), ValueError, "beta must be ≥ 0"),
    (lambda: bs.momentum_ms_threshold([1.0, 0.5], 0, 0.5), ValueError, "batch"),
    (lambda: bs.momentum_ms_threshold([1.0, 0.5], 4, 0.5, method="exact"), ValueError,
     "method must be one of"),
    (lambda: bs.momentum_second_moment_step(0.1, [1.0, 0.5], 4, 0.5, torch.zeros(3, 3)), ValueError,
     "moments must have shape"),
    (lambda: bs.momentum_sgd_moments([1.0], 2, 0.1, 0.5, steps=3, runs=1), ValueError,
     "runs must be an integer ≥ 2"),
    (lambda: bs.frozen_adam_threshold([1.0], 2, 0.0, 0.5), ValueError, "noise must be > 0"),
    # issue 14, the last cases of tools/bad_inputs.py (before: accepted, NaN out, errors inside torch)
    (lambda: bs.batch_hessian_eigenvalues([1.0, 0.5], 2, 1, spike_overlap="yes"), TypeError,
     "spike_overlap must be True or False"),
    (lambda: bs.rmsprop_risk([1.0], 1, [0.1], samples=2, noise=0.1, runs=1, beta2=0.9, return_state="yes"),
     TypeError, "return_state must be True or False"),
    (lambda: bs.second_moment_step("0.1", [1.0, 2.0], 1, torch.ones(2, dtype=F64)), TypeError,
     "lr must be a tensor or an array of numbers"),
    (lambda: bs.second_moment_step(None, [1.0, 2.0], 1, torch.ones(2, dtype=F64)), TypeError,
     "lr must be a tensor or an array of numbers"),
    (lambda: bs.second_moment_step(True, [1.0, 2.0], 1, torch.ones(2, dtype=F64)), TypeError,
     "lr must be a number or a tensor of learning rates, got bool"),
    (lambda: bs.second_moment_step(math.nan, [1.0, 2.0], 1, torch.ones(2, dtype=F64)), ValueError,
     "lr must hold finite numbers"),
    (lambda: bs.second_moment_step(math.inf, [1.0, 2.0], 1, torch.ones(2, dtype=F64)), ValueError,
     "lr must hold finite numbers"),
    (lambda: bs.second_moment_step(0.0, [1.0, 2.0], 1, torch.ones(2, dtype=F64)), ValueError,
     "lr must be positive, got a minimum of 0"),
    (lambda: bs.second_moment_step(0.1, [1.0, 2.0], 1, -torch.ones(2, dtype=F64)), ValueError,
     "s must be non-negative, got a minimum of -1"),
])
def test_momentum_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("kurtosis", [1.0, 2.0, 3.0, 9.0])
@pytest.mark.parametrize("beta", [0.0, 0.9, 0.99])
def test_momentum_closed_form_equals_the_dense_map(kurtosis, beta):
    """The root of Σ ηλ/(2 − η(ρ + (κ − 2)/B)λ) = B (capped by heavy ball) against bisection on the spectral
    radius of the full 3d × 3d moment map, on spectra with a spike, a spread and ties."""
    spectra = [1 / torch.arange(1, 9, dtype=torch.float64), torch.ones(6, dtype=torch.float64),
               torch.tensor([50.0, 1.0, 1.0, 0.5], dtype=torch.float64)]
    for lam in spectra:
        for batch in (1, 4, 64):
            closed = bs.momentum_ms_threshold(lam, batch, beta, kurtosis=kurtosis)
            dense = bs.momentum_ms_threshold(lam, batch, beta, kurtosis=kurtosis, method="dense")
            assert closed == pytest.approx(dense, rel=1e-9)


def test_momentum_threshold_is_sgd_at_a_smaller_batch():
    """η^β(B) = η_ms(ρB)/ρ with ρ = (1 − β)/(1 + β): at β = 0.9, ρ = 1/19."""
    lam = 1 / torch.arange(1, 21, dtype=torch.float64)
    for b in (1, 2, 8, 64):
        sgd = bs.ms_threshold(lam, b)
        assert bs.momentum_ms_threshold(lam, 19 * b, 0.9) == pytest.approx(19 * sgd, rel=1e-13)
        assert bs.frozen_adam_threshold(lam, 19 * b, 0.5, 0.9) == pytest.approx(
            19**0.5 * bs.frozen_rmsprop_threshold(lam, b, 0.5), rel=1e-13)
    assert bs.momentum_ms_threshold(lam, 1, 0.99) < 2 / lam.sum().item()     # the trace bound, for any β
