import math

import numpy as np
import pytest
import torch

from theorylab import jepa

LAM = torch.tensor([1.25, 1.0])
RHO = torch.tensor([0.5, 1.0])


def test_fixed_points():
    torch.testing.assert_close(jepa.fixed_point("jepa", RHO, depth=3), RHO.double() ** 3)
    torch.testing.assert_close(jepa.fixed_point("mae", RHO, depth=3), RHO.double() ** 0.75)


def test_ode_reaches_the_fixed_points_and_matches_the_exact_half_time():
    for objective in ("jepa", "mae"):
        exact = jepa.exact_half_time(objective, LAM, RHO, depth=2, eps=0.01)
        times = torch.linspace(0, 5 * exact.max().item(), 2001)
        traj = jepa.ode_trajectory(objective, LAM, RHO, depth=2, eps=0.01, times=times)
        assert traj.shape == (2001, 2) and traj[0, 0].item() == pytest.approx(0.01)
        fixed = jepa.fixed_point(objective, RHO, depth=2)
        torch.testing.assert_close(traj[-1], fixed, atol=1e-6, rtol=0)
        torch.testing.assert_close(jepa.half_time(times, traj, final=fixed), exact, rtol=1e-4, atol=0)


def test_time_to_a_fraction_matches_the_integrated_ode():
    for objective in ("jepa", "mae"):
        fixed = jepa.fixed_point(objective, RHO, depth=3)
        exact = jepa.exact_half_time(objective, LAM, RHO, depth=3, eps=0.01, fraction=0.9)
        times = torch.linspace(0, 1.2 * exact.max().item(), 6001)
        traj = jepa.ode_trajectory(objective, LAM, RHO, depth=3, eps=0.01, times=times)
        half = jepa.exact_half_time(objective, LAM, RHO, depth=3, eps=0.01)
        for fraction, want in ((0.9, exact), (0.5, half)):
            got = jepa.half_time(times, traj, final=fixed, fraction=fraction)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=0)


def test_half_time_scales_as_one_over_lambda():
    a = jepa.exact_half_time("mae", torch.tensor([1.0]), torch.tensor([0.7]), depth=3, eps=0.01)
    b = jepa.exact_half_time("mae", torch.tensor([2.0]), torch.tensor([0.7]), depth=3, eps=0.01)
    assert a.item() == pytest.approx(2 * b.item(), rel=1e-10)


def test_order_reversal_table():
    ratio = {}
    for obj in ("jepa", "mae"):
        for L in (1, 2, 3, 4):
            h = jepa.exact_half_time(obj, LAM, RHO, depth=L, eps=0.01)
            ratio[obj, L] = (h[0] / h[1]).item()
    assert [round(ratio["jepa", L], 2) for L in (1, 2, 3, 4)] == [0.81, 0.95, 1.19, 1.49]
    assert all(ratio["mae", L] < 1 for L in (1, 2, 3, 4))


def test_critical_time_is_the_leading_order():
    lam, rho = torch.tensor([1.0, 2.0]), torch.tensor([0.8, 1.0])
    for objective in ("jepa", "mae"):
        for depth in (1, 2, 3):
            errors = [(jepa.critical_time(objective, lam, rho, depth=depth, eps=eps)
                       / jepa.exact_half_time(objective, lam, rho, depth=depth, eps=eps) - 1).abs().max()
                      for eps in (1e-2, 1e-4, 1e-6)]
            assert errors[0] > errors[1] > errors[2]


def test_half_time_interpolates_and_handles_never():
    times = torch.tensor([0.0, 1.0, 2.0])
    values = torch.tensor([[0.0, 0.0], [0.5, 0.1], [2.0, 0.2]])
    out = jepa.half_time(times, values, final=torch.tensor([2.0, 1.0]))
    assert out[0].item() == pytest.approx(1.333333, rel=1e-5) and out[1].item() == math.inf   # NEVER


def test_gradient_descent_with_matrices_tracks_the_ode():
    exact = jepa.exact_half_time("jepa", LAM, RHO, depth=2, eps=0.05)
    run = jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.05, lr=0.2,
                                steps=int(2 * exact.max().item() / 0.2), record_every=5)
    measured = jepa.half_time(run.times, run.encoder, final=jepa.fixed_point("jepa", RHO, depth=2))
    torch.testing.assert_close(measured, exact, rtol=0.01, atol=0)


def test_sample_views_moments():
    x, y = jepa.sample_views(200_000, LAM, RHO, seed=1)
    torch.testing.assert_close((x * y).mean(0), LAM.double(), rtol=0.02, atol=0)
    torch.testing.assert_close((x * y).mean(0) / (x * x).mean(0), RHO.double(), rtol=0.02, atol=0)
    with pytest.raises(ValueError, match="rho must lie in"):
        jepa.sample_views(10, LAM, torch.tensor([0.5, 1.5]))


@pytest.mark.parametrize("call, match", [
    (lambda: jepa.fixed_point("byol", RHO, depth=2), "objective"),
    (lambda: jepa.fixed_point("jepa", RHO, depth=0), "depth"),
    (lambda: jepa.critical_time("jepa", LAM, RHO, depth=2, eps=0.0), "eps"),
    (lambda: jepa.critical_time("jepa", -LAM, RHO, depth=2, eps=0.1), "lam"),
    (lambda: jepa.critical_time("jepa", LAM, torch.tensor([0.5, 0.0]), depth=2, eps=0.1), "rho"),
    (lambda: jepa.critical_time("jepa", LAM, torch.tensor([0.5]), depth=2, eps=0.1), "same length"),
    (lambda: jepa.exact_half_time("jepa", LAM, RHO, depth=4, eps=0.5), "past the fraction"),
    (lambda: jepa.exact_half_time("jepa", LAM, RHO, depth=2, eps=0.01, fraction=1.0), "fraction"),
    (lambda: jepa.half_time([0.0, 1.0], [[0.0], [1.0]], fraction=0), "fraction"),
    (lambda: jepa.ode_trajectory("jepa", LAM, RHO, depth=2, eps=0.1, times=[0.0, 2.0, 1.0]), "increasing"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.1, lr=0.0, steps=3), "lr"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_population_run_ends_on_the_stationary_set_with_off_diagonal_entries():
    run = jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.05, lr=0.2, steps=1500, init_noise=0.05,
                                seed=4, record_every=50)
    W, V = run.final_encoder, run.final_predictor
    assert W.shape == V.shape == (2, 2)
    torch.testing.assert_close(torch.diagonal(W), run.encoder[-1])
    torch.testing.assert_close(V @ W, W @ torch.diag(RHO.double()), atol=1e-9, rtol=0)
    assert (W - torch.diag(torch.diagonal(W))).abs().max() > 1e-4   # off-diagonals grew and froze


def test_sample_half_time_ratio_standard_error_matches_the_spread_over_data_sets():
    ratios, ses = [], []
    for k in range(100):
        x, y = jepa.sample_views(4000, LAM, RHO, seed=100 + k)
        ratio, se = jepa.sample_half_time_ratio("jepa", x, y, depth=3, eps=0.01)
        ratios.append(ratio)
        ses.append(se)
    population = jepa.exact_half_time("jepa", LAM, RHO, depth=3, eps=0.01)
    spread = torch.tensor(ratios).std().item()
    assert abs(sum(ratios) / 100 - (population[0] / population[1]).item()) < 4 * spread / 10
    assert 0.75 < spread / (sum(ses) / 100) < 1.3      # the sd of 100 draws is known to ±15 % (2 s.e.)
    with pytest.raises(ValueError, match="n ≥ 2"):
        jepa.sample_half_time_ratio("jepa", torch.ones(1, 2), torch.ones(1, 2), depth=2, eps=0.01)


def test_temporal_example_moments():
    """The chapter's temporal example: an AR(1) latent seen at two time steps through fresh noise has
    λ = γ S and ρ = γ S / (S + N)."""
    gen = torch.Generator().manual_seed(7)
    n, gamma, S, N = 400_000, torch.tensor([0.9, 0.4]), torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0])
    s0 = torch.randn(n, 2, generator=gen, dtype=torch.float64) * S.sqrt()
    s1 = gamma * s0 + (1 - gamma**2).sqrt() * torch.randn(n, 2, generator=gen, dtype=torch.float64) * S.sqrt()
    x = s0 + torch.randn(n, 2, generator=gen, dtype=torch.float64) * N.sqrt()
    y = s1 + torch.randn(n, 2, generator=gen, dtype=torch.float64) * N.sqrt()
    lam, rho = (x * y).mean(0), (x * y).mean(0) / (x * x).mean(0)
    # sampling s.e. of mean(x y) is about sqrt((S+N)^2 / n) < 0.005; 4 s.e. below 0.02
    torch.testing.assert_close(lam, (gamma * S).double(), atol=0.02, rtol=0)
    torch.testing.assert_close(rho, (gamma * S / (S + N)).double(), atol=0.01, rtol=0)


@pytest.mark.parametrize("call, error, match", [
    # half_time: extra entries of `final` (or too few) are an error, not silently ignored
    (lambda: jepa.half_time([0.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], final=[1.0, 1.0, 5.0]), ValueError,
     "final"),
    (lambda: jepa.half_time([0.0, 1.0, 2.0], [[0.0], [1.0]]), ValueError, "values must have shape"),
    # ode_trajectory would integrate forever towards a NaN or infinite end time
    (lambda: jepa.ode_trajectory("jepa", LAM, RHO, depth=2, eps=0.1, times=[0.0, math.nan]), ValueError,
     "times"),
    (lambda: jepa.ode_trajectory("jepa", LAM, RHO, depth=2, eps=0.1, times=[0.0, math.inf]), ValueError,
     "times"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.1, lr=0.1, steps=3, record_every=0),
     ValueError, "record_every"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.1, lr=0.1, steps=3, init_noise=math.inf),
     ValueError, "init_noise"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.1, lr=0.1, steps=3, init_noise=-0.1),
     ValueError, "init_noise"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2.0, eps=0.1, lr=0.1, steps=3), TypeError,
     "depth"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2, eps="0.1", lr=0.1, steps=3), TypeError, "eps"),
    (lambda: jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.1, lr=0.1, steps=2.5), TypeError,
     "steps"),
    (lambda: jepa.train_moments("jepa", torch.eye(2), torch.eye(3), depth=2, eps=0.1, lr=0.1, steps=3),
     ValueError, "Cxx and Cxy"),
    (lambda: jepa.train_samples("jepa", torch.ones(8, 2), torch.ones(8, 2), depth=2, eps=0.1, lr=0.1, steps=3,
                                batch=9), ValueError, "batch"),
])
def test_validation_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_scalars_and_float32_data_are_accepted():
    import numpy as np
    run = jepa.train_population("jepa", LAM, RHO, depth=np.int64(2), eps=np.float32(0.05), lr=np.float32(0.2),
                                steps=np.int64(10), record_every=np.int64(5), init_noise=np.float64(0.01),
                                seed=0)
    assert run.encoder.shape == (3, 2)
    assert jepa.exact_half_time("jepa", LAM, RHO, depth=np.int64(2), eps=np.float32(0.01),
                                fraction=np.float32(0.5)).shape == (2,)
    x, y = jepa.sample_views(64, LAM, RHO, seed=0)
    run32 = jepa.train_samples("mae", x.float(), y.float(), depth=2, eps=0.05, lr=0.02, steps=5, batch=16,
                               seed=0)
    run64 = jepa.train_samples("mae", x, y, depth=2, eps=0.05, lr=0.02, steps=5, batch=16, seed=0)
    torch.testing.assert_close(run32.encoder, run64.encoder, rtol=1e-5,
                               atol=1e-9)   # float32 data only rounds


def test_train_moments_on_diagonal_moments_is_train_population():
    moments = (torch.diag(LAM.double() / RHO.double()), torch.diag(LAM.double()))
    a = jepa.train_moments("jepa", *moments, depth=2, eps=0.05, lr=0.2, steps=200, init_noise=0.01, seed=3,
                           record_every=10)
    b = jepa.train_population("jepa", LAM, RHO, depth=2, eps=0.05, lr=0.2, steps=200, init_noise=0.01, seed=3,
                              record_every=10)
    torch.testing.assert_close(a.encoder, b.encoder, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(a.final_encoder, b.final_encoder, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_balanced_scalar_gradient_descent_is_matrix_gradient_descent(objective):
    lam, rho = [1.5, 1.0, 0.7], [0.5, 1.0, 0.8]
    kwargs = dict(depth=2, eps=0.05, lr=0.2, steps=300, record_every=7)
    matrices = jepa.train_population(objective, lam, rho, init_noise=0.0, seed=0, **kwargs)
    scalars = jepa.train_balanced(objective, lam, rho, **kwargs)
    assert torch.equal(scalars.times, matrices.times)
    assert torch.allclose(scalars.encoder, matrices.encoder, rtol=1e-12, atol=1e-15)
    assert (scalars.encoder[-1] - scalars.encoder[0]).abs().min() > 1e-3     # it moved


def test_train_balanced_validates():
    with pytest.raises(ValueError, match="lr"):
        jepa.train_balanced("jepa", [1.0], [0.5], depth=2, eps=0.01, lr=0.0, steps=10)
    with pytest.raises(ValueError, match="steps"):
        jepa.train_balanced("jepa", [1.0], [0.5], depth=2, eps=0.01, lr=0.1, steps=0)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 3])
def test_fastest_rate_is_the_largest_slope_of_the_velocity(objective, depth):
    lam = torch.tensor([1.5, 0.7], dtype=torch.float64)
    rho, eps = torch.tensor([0.9, 0.4], dtype=torch.float64), 0.01
    rate = jepa.fastest_rate(objective, lam, rho, depth=depth, eps=eps)
    # brute force: finite differences of the velocity along each feature's path
    ends = jepa.fixed_point(objective, rho, depth=depth) ** (1 / depth)
    slopes = []
    for k in range(2):
        u = np.linspace(eps ** (1 / depth), ends[k].item(), 20001)
        v = jepa._velocity(objective, u, lam[k].item(), rho[k].item(), depth)
        slopes.append(np.abs(np.gradient(v, u)).max())
    assert rate == pytest.approx(max(slopes), rel=1e-3)
    # at the fixed point the slope is known in closed form (JEPA: λρ^{2L-1}; MAE: (L+1)λρ^{(L-1)/(L+1)})
    fp = ends.numpy()
    at_fixed = jepa._velocity_slope(objective, fp, lam.numpy(), rho.numpy(), depth)
    closed = (-lam * rho ** (2 * depth - 1) if objective == "jepa"
              else -(depth + 1) * lam * rho ** ((depth - 1) / (depth + 1))).numpy()
    np.testing.assert_allclose(at_fixed, closed, rtol=1e-12)
    assert rate >= np.abs(at_fixed).max()


def test_fastest_rate_rejects_bad_input():
    with pytest.raises(ValueError, match="points"):
        jepa.fastest_rate("jepa", [1.0], [0.5], depth=2, eps=0.01, points=1)
    with pytest.raises(ValueError, match="objective"):
        jepa.fastest_rate("byol", [1.0], [0.5], depth=2, eps=0.01)


def _panel_gd_deviation(objective, lam, rho, depth, eps):
    """Chapter 2's Explore panel: GD at a tenth of the flow's fastest time scale (at most 1/3000 of the
    race, at most 60 000 steps) against the ODE, in units of the fixed point."""
    lam, rho = torch.tensor(lam, dtype=torch.float64), torch.tensor(rho, dtype=torch.float64)
    end = 2.5 * jepa.exact_half_time(objective, lam, rho, depth=depth, eps=eps).max().item()
    lr = min(0.1 / jepa.fastest_rate(objective, lam, rho, depth=depth, eps=eps), end / 3000)
    steps = min(math.ceil(end / lr), 60_000)
    run = jepa.train_balanced(objective, lam, rho, depth=depth, eps=eps, lr=lr, steps=steps,
                              record_every=max(1, math.ceil(end / lr) // 30))
    ode = jepa.ode_trajectory(objective, lam, rho, depth=depth, eps=eps, times=run.times)
    return ((run.encoder - ode) / jepa.fixed_point(objective, rho, depth=depth)).abs().max().item()


def test_panel_gd_sits_on_the_flow():
    """The chapter's prose: within 1 % at the panel's default setting, about 8 % at the worst of 418
    random slider settings (JEPA, L = 1, ε = 10^-3.5, one feature far slower)."""
    for objective in ("jepa", "mae"):
        assert _panel_gd_deviation(objective, [1.25, 1.0], [0.5, 1.0], 3, 0.01) < 0.01
    assert _panel_gd_deviation("jepa", [1.0, 1.05], [0.8, 0.35], 1, 10**-3.5) < 0.08


def test_ode_trajectory_is_fast_and_right_on_a_stiff_race():
    """A deep encoder from a small start with one feature far slower: the horizon is ~10⁷ fastest time
    scales (an explicit method would take minutes); the stiff solver agrees with the exact half-times."""
    lam, rho = torch.tensor([1.85, 0.55], dtype=torch.float64), torch.tensor([1.0, 0.3], dtype=torch.float64)
    exact = jepa.exact_half_time("jepa", lam, rho, depth=4, eps=1e-4)
    assert exact.max() * jepa.fastest_rate("jepa", lam, rho, depth=4, eps=1e-4) > jepa.STIFF_HORIZON
    times = torch.linspace(0, 2.5 * exact.max().item(), 20001)
    traj = jepa.ode_trajectory("jepa", lam, rho, depth=4, eps=1e-4, times=times)
    half = jepa.half_time(times, traj, final=jepa.fixed_point("jepa", rho, depth=4))
    # within one grid step (~6e-4 of the horizon)
    assert ((half - exact).abs() <= times[1]).all()
