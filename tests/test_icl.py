import math

import pytest
import torch

from theorylab import icl


def test_closed_forms():
    assert icl.optimal_step_size(20, 5, 0.5) == pytest.approx(20 / 26.25)
    assert icl.optimal_risk(20, 5, 0.5) == pytest.approx(0.25 + 5 * 6.25 / 26.25)
    # the risk of one step is minimised at η* with value L*
    for n, d, s in [(1, 1, 0.0), (10, 4, 1.0), (40, 8, 0.5)]:
        eta = icl.optimal_step_size(n, d, s)
        assert icl.one_step_gd_risk(eta, n, d, s) == pytest.approx(icl.optimal_risk(n, d, s))
        assert icl.one_step_gd_risk(eta * 1.01, n, d, s) > icl.optimal_risk(n, d, s)
    assert icl.relu_step_size(20, 4, 0.5) == pytest.approx(20 / (19 + 12 + 4))
    assert icl.relu_optimal_risk(20, 4, 0.0) == pytest.approx(0.5 - icl.relu_step_size(20, 4, 0.0) / 4)


@pytest.mark.parametrize("args, error, match", [
    ((0, 5, 0.5), ValueError, "n must"), ((10, 0, 0.5), ValueError, "d must"),
    ((10, 5, -0.1), ValueError, "sigma must"), ((10.0, 5, 0.5), TypeError, "n must"),
    ((10, 5, float("nan")), ValueError, "sigma must"), ((10, 5, float("inf")), ValueError, "sigma must"),
    ((True, 5, 0.5), TypeError, "n must"), ((10, 5, "0.5"), TypeError, "sigma must"),
])
def test_closed_forms_validate(args, error, match):
    for fn in (icl.optimal_step_size, icl.optimal_risk, icl.relu_step_size, icl.relu_optimal_risk):
        with pytest.raises(error, match=match):
            fn(*args)


def test_numpy_scalars_are_accepted():
    np = pytest.importorskip("numpy")
    assert icl.optimal_step_size(np.int64(20), np.int32(5), np.float32(0.5)) == pytest.approx(20 / 26.25)
    assert icl.one_step_gd_risk(np.float64(0.5), np.int64(10), 4, 1.0) == pytest.approx(
        icl.one_step_gd_risk(0.5, 10, 4, 1.0))
    X, *_ = icl.sample_prompts(np.int64(2), np.int64(4), np.int64(3), np.float64(0.5), generator=0)
    assert X.shape == (2, 4, 3)


def test_predictors_and_layer_validate():
    X, y, xq, _ = icl.sample_prompts(4, 5, 3, 0.5, generator=0)
    bad = X.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="X must hold finite"):
        icl.one_step_gd_predict(bad, y, xq, 0.5)
    with pytest.raises(TypeError, match="share one dtype"):
        icl.one_step_gd_predict(X, y.float(), xq, 0.5)
    with pytest.raises(ValueError, match=r"gamma must be a scalar or have shape \[3, 3\]"):
        icl.one_step_gd_predict(X, y, xq, torch.eye(2))
    with pytest.raises(ValueError, match="gamma must hold finite"):
        icl.one_step_gd_predict(X, y, xq, float("inf"))
    with pytest.raises(ValueError, match="sigma must"):
        icl.ridge_predict(X, y, xq, float("nan"))
    with pytest.raises(ValueError, match=r"weight_cov must have shape \[3, 3\]"):
        icl.ridge_predict(X, y, xq, 0.5, weight_cov=torch.eye(2))
    with pytest.raises(ValueError, match="init_scale must"):
        icl.LinearSelfAttention(3, init_scale=float("inf"))
    with pytest.raises(ValueError, match="init_scale must"):
        icl.LinearSelfAttention(3, init_scale=0.0)
    with pytest.raises(TypeError, match="d must"):
        icl.LinearSelfAttention(3.0)
    with pytest.raises(ValueError, match="lr must"):
        icl.train_lsa(5, 3, 0.5, steps=1, batch=2, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="steps must"):
        icl.train_lsa(5, 3, 0.5, steps=0, batch=2, progress=False)
    with pytest.raises(ValueError, match="prompts must"):
        icl.streamed_risk(5, 3, 0.5, gamma=1.0, prompts=4, chunks=8)
    with pytest.raises(ValueError, match="condition must"):
        icl.random_covariance(3, condition=float("nan"))
    with pytest.raises(ValueError, match="prediction and target"):
        icl.mc_risk(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError, match="X must be a torch.Tensor"):
        icl.gradient_at_zero(X.numpy(), y)
    with pytest.raises(ValueError, match=r"X must be a tensor of shape \[batch, n, d\]"):
        icl.gradient_at_zero(X[0], y)


def test_sample_prompts_shapes_and_reproducibility():
    X, y, xq, yq = icl.sample_prompts(4, 7, 3, 0.5, generator=1)
    assert (X.shape, y.shape, xq.shape, yq.shape) == ((4, 7, 3), (4, 7), (4, 3), (4,))
    assert X.dtype == torch.float64
    again = icl.sample_prompts(4, 7, 3, 0.5, generator=1)
    assert all(torch.equal(a, b) for a, b in zip((X, y, xq, yq), again, strict=True))
    other = icl.sample_prompts(4, 7, 3, 0.5, generator=2)
    assert not torch.equal(X, other[0])


def test_sample_prompts_noiseless_linear_and_covariances():
    X, y, xq, yq = icl.sample_prompts(3, 10, 4, 0.0, generator=0)
    w = torch.linalg.lstsq(X, y.unsqueeze(-1)).solution.squeeze(-1)
    torch.testing.assert_close((w * xq).sum(-1), yq)
    cov = icl.random_covariance(3, 9.0, seed=1)
    X, *_ = icl.sample_prompts(20_000, 5, 3, 0.1, cov=cov, generator=3)
    empirical = torch.einsum("bni,bnj->ij", X, X) / (X.shape[0] * X.shape[1])
    assert icl.relative_error(empirical, cov) < 0.02


def test_relu_response_moments():
    # E[y x] has norm 1/2 for every prompt's neuron; E y² = 1/2 + σ².
    X, y, _, _ = icl.sample_prompts(20_000, 8, 3, 0.0, response="relu", generator=4)
    assert (y.pow(2).mean() - 0.5).abs() < 0.01
    assert (y >= 0).all(dim=1).float().mean() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch=0), "batch must"),
    (dict(cov=torch.eye(4)), r"cov must have shape \[3, 3\]"),
    (dict(cov=torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])), "cov must be symmetric"),
    (dict(cov=torch.full((3, 3), float("nan"))), "cov must be finite"),
    (dict(weight_cov=torch.eye(3) * float("inf")), "weight_cov must be finite"),
    (dict(cov=-torch.eye(3)), "cov must be positive definite"),
    (dict(weight_cov=torch.zeros(3, 3)), "weight_cov must be positive definite"),
    (dict(response="cubic"), "response must be one of"),
    (dict(response="relu", weight_cov=torch.eye(3)), "weight_cov applies"),
])
def test_sample_prompts_validates(kwargs, match):
    args = dict(batch=2, n=4, d=3, sigma=0.5) | kwargs
    with pytest.raises(ValueError, match=match):
        icl.sample_prompts(args.pop("batch"), args.pop("n"), args.pop("d"), args.pop("sigma"), **args)


def lsa_by_definition(layer, X, y, xq):
    """f(Z)[d+1, n+1] with explicit matrices, one prompt at a time."""
    out = []
    d, n = X.shape[-1], X.shape[1]
    W_pv, W_kq = layer.W_pv.detach().double(), layer.W_kq.detach().double()
    mask = torch.ones(n + 1, dtype=torch.float64)
    if layer.mask_query:
        mask[-1] = 0
    for b in range(X.shape[0]):
        Z = torch.zeros(d + 1, n + 1, dtype=torch.float64)
        Z[:d, :n], Z[d, :n], Z[:d, n] = X[b].T, y[b], xq[b]
        out.append((Z + W_pv @ Z @ torch.diag(mask) @ Z.T @ W_kq @ Z / n)[d, n])
    return torch.stack(out)


@pytest.mark.parametrize("mask_query", [True, False])
def test_layer_matches_its_definition(mask_query):
    X, y, xq, _ = icl.sample_prompts(5, 6, 3, 0.5, generator=5)
    layer = icl.LinearSelfAttention(3, mask_query=mask_query, init_scale=1.0, seed=2, dtype=torch.float64)
    torch.testing.assert_close(layer(X, y, xq), lsa_by_definition(layer, X, y, xq))


def test_preconditioner_is_gauge_invariant_and_gives_the_odd_part():
    X, y, xq, _ = icl.sample_prompts(50, 6, 3, 0.5, generator=6)
    layer = icl.LinearSelfAttention(3, init_scale=1.0, seed=3, dtype=torch.float64)
    gamma = layer.preconditioner()
    # odd part: (ŷ(y) − ŷ(−y)) / 2 = gᵀΓx_q
    with torch.no_grad():
        odd = (layer(X, y, xq) - layer(X, -y, xq)) / 2
    torch.testing.assert_close(odd, icl.one_step_gd_predict(X, y, xq, gamma))
    with torch.no_grad():
        layer.W_pv[-1] *= 2.5
        layer.W_kq /= 2.5
    torch.testing.assert_close(layer.preconditioner(), gamma)


def test_one_step_gd_and_ridge_predictors():
    X, y, xq, _ = icl.sample_prompts(4, 30, 3, 0.0, generator=7)
    g = torch.einsum("bn,bnd->bd", y, X) / 30
    torch.testing.assert_close(icl.one_step_gd_predict(X, y, xq, 0.5), 0.5 * (g * xq).sum(-1))
    # noiseless ridge recovers w exactly, hence y_q
    w = torch.linalg.lstsq(X, y.unsqueeze(-1)).solution.squeeze(-1)
    torch.testing.assert_close(icl.ridge_predict(X, y, xq, 0.0), (w * xq).sum(-1), rtol=1e-6, atol=1e-8)
    # noiseless with fewer samples than dimensions: the minimum-norm interpolant, finite
    X2, y2, xq2, _ = icl.sample_prompts(4, 2, 5, 0.0, generator=8)
    pred = icl.ridge_predict(X2, y2, xq2, 0.0)
    w_min = torch.linalg.pinv(X2) @ y2.unsqueeze(-1)
    torch.testing.assert_close(pred, (w_min.squeeze(-1) * xq2).sum(-1))
    with pytest.raises(ValueError, match="gamma must"):
        icl.one_step_gd_predict(X, y, xq, torch.eye(2))
    with pytest.raises(ValueError, match="y must have shape"):
        icl.ridge_predict(X, y[:, :5], xq, 0.5)


def test_streamed_risk_equals_direct_monte_carlo_on_the_same_prompts():
    n, d, sigma = 8, 3, 0.5
    result = icl.streamed_risk(n, d, sigma, gamma=0.7, prompts=1000, chunks=4, seed=9, backend="torch")
    gen = torch.Generator().manual_seed(9)
    errors = []
    for _ in range(4):
        X, y, xq, yq = icl.sample_prompts(250, n, d, sigma, generator=gen, dtype=torch.float32)
        errors.append((icl.one_step_gd_predict(X.double(), y.double(), xq.double(), 0.7) - yq.double()) ** 2)
    assert result.prompts == 1000
    assert result.risk == pytest.approx(torch.cat(errors).mean().item(), rel=1e-5)
    # risk_at rescales the predictor
    assert result.risk_at(1.0)[0] == pytest.approx(result.risk)
    assert result.risk_at(result.best_scale)[0] <= result.risk_at(0.9 * result.best_scale)[0]
    with pytest.raises(ValueError, match="exactly one"):
        icl.streamed_risk(n, d, sigma, prompts=100)
    with pytest.raises(ValueError, match="chunks"):
        icl.streamed_risk(n, d, sigma, gamma=1.0, prompts=100, chunks=1)


def test_streamed_risk_through_the_triton_kernel_agrees_with_torch():
    kwargs = dict(gamma=0.8, prompts=60, chunks=3, seed=2)
    triton_path = icl.streamed_risk(7, 3, 0.5, backend="triton", **kwargs)
    torch_path = icl.streamed_risk(7, 3, 0.5, backend="torch", **kwargs)
    torch.testing.assert_close(triton_path.chunk_moments, torch_path.chunk_moments, rtol=1e-5, atol=1e-5)


def test_monte_carlo_optimum_matches_eta_star():
    n, d, sigma = 10, 3, 1.0
    result = icl.streamed_risk(n, d, sigma, gamma=1.0, prompts=64_000, seed=1, backend="torch")
    eta = icl.optimal_step_size(n, d, sigma)
    assert abs(result.best_scale - eta) < 4 * result.best_scale_se
    assert 4 * result.best_scale_se < 0.02 * eta


def test_train_lsa_reaches_eta_star_quickly():
    n, d, sigma = 10, 3, 1.0
    layer = icl.train_lsa(n, d, sigma, steps=800, batch=512, progress=False)
    eta = icl.optimal_step_size(n, d, sigma)
    assert icl.relative_error(layer.preconditioner(), eta * torch.eye(d)) < 0.04
    again = icl.train_lsa(n, d, sigma, steps=20, batch=16, progress=False, seed=4)
    same = icl.train_lsa(n, d, sigma, steps=20, batch=16, progress=False, seed=4)
    assert torch.equal(again.W_kq, same.W_kq)
    with pytest.raises(ValueError, match="steps must"):
        icl.train_lsa(n, d, sigma, steps=0, batch=4)


def test_train_lsa_draws_what_sample_prompts_draws():
    """The training loop draws its batches without re-checking them: the same layer as a loop through the
    public, checked functions."""
    from functools import partial

    from theorylab.seeding import make_generator
    from theorylab.training import train

    n, d, sigma, seed = 6, 3, 0.5, 9
    cov = icl.random_covariance(d, 4.0, seed=1)
    layer = icl.train_lsa(n, d, sigma, steps=15, batch=8, cov=cov, weight_cov=torch.linalg.inv(cov),
                          seed=seed, progress=False)
    manual = icl.LinearSelfAttention(d, seed=seed)
    draw = partial(icl.sample_prompts, 8, n, d, sigma, cov=cov, weight_cov=torch.linalg.inv(cov),
                   generator=make_generator(seed + 1), dtype=torch.float32)

    def loss(_step):
        X, y, x_query, y_query = draw()
        return (manual(X, y, x_query) - y_query).pow(2).mean()

    train(manual.parameters(), loss, steps=15, lr=0.02, progress=False)
    assert torch.equal(layer.W_kq, manual.W_kq) and torch.equal(layer.W_pv, manual.W_pv)
    with pytest.raises(ValueError, match="weight_cov applies"):
        icl.train_lsa(n, d, sigma, steps=1, batch=2, response="relu", weight_cov=torch.eye(d))


def test_random_covariance():
    cov = icl.random_covariance(4, 16.0, seed=0)
    eig = torch.linalg.eigvalsh(cov)
    torch.testing.assert_close(eig, torch.tensor([0.25, 0.25 * 16 ** (1 / 3), 0.25 * 16 ** (2 / 3), 4.0],
                                                 dtype=torch.float64))
    assert math.isclose(torch.det(cov).item(), 1.0, rel_tol=1e-9)
    with pytest.raises(ValueError, match="condition"):
        icl.random_covariance(3, 0.5)


@pytest.mark.parametrize("n", [20, 100, 1000])
def test_at_scale_trained_budget_keeps_its_power(n):
    """The at-scale check of chapter 1 allows a trained layer 2 % of L* of paired excess risk. At the
    full-scale settings (d = 64, n = 100 and 1000) and the CPU one (d = 4, n = 20) that budget must stay
    well below plain GD's excess (so `scale-trained-power` can pass), and by (eq-icl-excess) it must
    allow a relative error of Γ̂ of at least the 3 % granted to the optimiser elsewhere."""
    d, sigma = (4, 0.5) if n == 20 else (64, 0.5)
    L_star, eta = icl.optimal_risk(n, d, sigma), icl.optimal_step_size(n, d, sigma)
    plain_excess = icl.one_step_gd_risk(1.0, n, d, sigma) - L_star
    assert plain_excess > 2 * 0.02 * L_star
    allowed_relative_error = math.sqrt(0.02 * L_star / (eta * d))
    assert allowed_relative_error > 0.03


def test_restarts_keep_the_start_that_does_not_stall():
    """At (n, d, σ) = (62, 4, 0.5) the start at seed 1000 stalls at a spurious stationary point (Γ̂ ~30 %
    off η*I, whatever the learning rate); restarts keep the run with the lowest final training loss."""
    n, d, sigma = 62, 4, 0.5
    target = icl.optimal_step_size(n, d, sigma) * torch.eye(d, dtype=torch.float64)
    kw = dict(steps=200, batch=128, seed=1000, progress=False)
    stalled = icl.train_lsa(n, d, sigma, **kw)
    best = icl.train_lsa(n, d, sigma, restarts=2, **kw)
    assert icl.relative_error(stalled.preconditioner().double(), target) > 0.2
    assert icl.relative_error(best.preconditioner().double(), target) < 0.05
    # the stall point has a large even part (the chapter's description); the kept start has almost none
    X, y, x_q, _ = icl.sample_prompts(2000, n, d, sigma, generator=3, dtype=torch.float32)
    assert stalled.nuisance_fraction(X, y, x_q) > 0.2 > 0.05 > best.nuisance_fraction(X, y, x_q)
    with pytest.raises(ValueError, match="restarts"):
        icl.train_lsa(n, d, sigma, restarts=0, **kw)
