import pytest
import torch

from theorylab import lowrank as lr


def test_layer_shapes_forward_and_importance():
    layer = lr.OrderedLowRankLinear(5, 3, seed=1)
    assert layer.U.shape == (3, 3) and layer.V.shape == (5, 3) and layer.rank == 3
    x = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x, rank=2), x @ layer.product(2).T)
    torch.testing.assert_close(layer(x), x @ layer.product().T)
    with torch.no_grad():
        layer.U[:, 0] *= 3.0
        layer.V[:, 0] /= 3.0
    assert layer.importance().shape == (3,)
    torch.testing.assert_close(layer.importance()[0], (layer.U[:, 0].norm() * layer.V[:, 0].norm()).detach())


def test_per_sample_forward_matches_fixed_rank_forward():
    layer = lr.OrderedLowRankLinear(6, 4, rank=3, bias=True, seed=2)
    x = torch.randn(5, 6, dtype=torch.float64)
    ranks = torch.tensor([1, 2, 3, 3, 1])
    y = layer.forward_per_sample(x, ranks)
    for s in range(5):
        torch.testing.assert_close(y[s], layer(x[s:s + 1], rank=int(ranks[s]))[0])


@pytest.mark.parametrize("call, match", [
    (lambda: lr.OrderedLowRankLinear(4, 3, rank=5), "rank must be an integer in"),
    (lambda: lr.OrderedLowRankLinear(0, 3), "in_features"),
    (lambda: lr.OrderedLowRankLinear(4, 3)(torch.zeros(2, 4, dtype=torch.float64), rank=0), "rank must"),
    (lambda: lr.OrderedLowRankLinear(4, 3)(torch.zeros(2, 5, dtype=torch.float64)), "x must have shape"),
    (lambda: lr.fit_ordered(torch.zeros(3), steps=5, lr=0.1), "A must be a 2-D"),
    (lambda: lr.fit_ordered(torch.eye(3), steps=0, lr=0.1), "steps"),
    (lambda: lr.fit_ordered(torch.eye(3), steps=5, lr=0.1, cov=-torch.eye(3)), "positive semi-definite"),
    (lambda: lr.OrderedLowRankLinear(4, 3).forward_per_sample(torch.zeros(2, 4, dtype=torch.float64),
                                                               torch.tensor([0, 1])), "ranks must lie"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_ordered_loss_is_the_average_over_ranks():
    A, _, _ = lr.matrix_with_spectrum(4, 3, [3.0, 2.0, 1.0], seed=0)
    layer = lr.OrderedLowRankLinear(3, 4, seed=3)
    expected = sum((A - layer.product(b)).pow(2).sum() for b in (1, 2, 3)) / 3
    torch.testing.assert_close(lr.ordered_loss(layer, A).detach(), expected)
    torch.testing.assert_close(lr.ordered_loss(layer, A, ordered=False).detach(),
                               (A - layer.product()).pow(2).sum())
    # with an input covariance Σ = L Lᵀ the loss is ‖(A − W_b) L‖²
    L = torch.tril(torch.rand(3, 3, dtype=torch.float64)) + torch.eye(3, dtype=torch.float64)
    expected = sum(((A - layer.product(b)) @ L).pow(2).sum() for b in (1, 2, 3)) / 3
    torch.testing.assert_close(lr.ordered_loss(layer, A, cov_sqrt=L).detach(), expected)


def test_nested_truncated_svd_attains_the_eckart_young_bound():
    s = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)
    A, left, right = lr.matrix_with_spectrum(5, 4, s, seed=1)
    layer = lr.OrderedLowRankLinear(4, 5, rank=3)
    with torch.no_grad():
        layer.U.copy_(left * s.sqrt())
        layer.V.copy_(right * s.sqrt())
    bound = sum(s[b:].pow(2).sum() for b in (1, 2, 3)) / 3
    torch.testing.assert_close(lr.ordered_loss(layer, A).detach(), bound)
    assert lr.nested_errors(layer, A).max() < 1e-12
    torch.testing.assert_close(layer.importance(), s)


def test_fit_ordered_recovers_the_svd_quickly():
    A, left, right = lr.matrix_with_spectrum(6, 5, [3.0, 2.0, 1.5, 1.0, 0.5], seed=2)
    layer = lr.fit_ordered(A, steps=1500, lr=0.05, progress=False)
    assert lr.column_alignment(layer.U, left).min() > 0.999
    assert lr.nested_errors(layer, A).max() < 1e-4
    again = lr.fit_ordered(A, steps=10, lr=0.05, progress=False, seed=4)
    same = lr.fit_ordered(A, steps=10, lr=0.05, progress=False, seed=4)
    assert torch.equal(again.U, same.U)


def test_group_lasso_tails():
    layer = lr.OrderedLowRankLinear(2, 2, seed=0)
    with torch.no_grad():
        layer.U.copy_(torch.tensor([[3.0, 0.0], [4.0, 0.0]]))
        layer.V.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    # tails of U: ‖U‖ = 5, ‖U_{:,1:}‖ = 0; of V: 1, 0
    assert lr.hierarchical_group_lasso(layer, eps=0.0).item() == pytest.approx(6.0)


def test_helpers():
    P = torch.randn(6, 2, dtype=torch.float64)
    mixed = P @ torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(lr.principal_angle_cosines(P, mixed), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(lr.column_alignment(-P, P), torch.ones(2, dtype=torch.float64))
    root = lr.psd_sqrt(torch.diag(torch.tensor([4.0, 0.0])))
    torch.testing.assert_close(root, torch.diag(torch.tensor([2.0, 0.0], dtype=torch.float64)))
    ranks = lr.sample_ranks(1000, 4, generator=1)
    assert ranks.min() == 1 and ranks.max() == 4


def test_sampled_ordered_dropout_approaches_its_optimum():
    # Runs through the Triton kernel (interpreter). The optimum of the sampled loss, relative to ‖A‖²,
    # is mean_b Σ_{i>b} σ_i² / ‖A‖² = (1/2)(1/5) = 0.1; it starts near 1.
    # The population objective is checked (the first batches' losses are too noisy to say "near 1").
    A, _, _ = lr.matrix_with_spectrum(8, 8, [2.0, 1.0], seed=3)
    layer = lr.OrderedLowRankLinear(8, 8, rank=2, seed=0, dtype=torch.float32)
    population = lambda: (lr.ordered_loss(layer, A.float()) / A.pow(2).sum()).item()  # noqa: E731
    assert population() > 0.9
    losses = lr.ordered_dropout_sgd(layer, A.float(), steps=150, batch=32, lr=0.05, seed=0, progress=False)
    assert population() < 0.15 and losses[-30:].mean() < 0.15


def test_sample_ranks_default_stream_follows_the_seed_knob(monkeypatch):
    monkeypatch.setenv("THEORYLAB_SEED", "0")
    first, again = lr.sample_ranks(200, 5), lr.sample_ranks(200, 5)
    assert torch.equal(first, again)
    monkeypatch.setenv("THEORYLAB_SEED", "1")
    assert not torch.equal(first, lr.sample_ranks(200, 5))
    gen = torch.Generator().manual_seed(3)
    assert lr.sample_ranks(10, 3, generator=gen).max() <= 3


def test_rank_distribution_and_weighted_loss():
    torch.testing.assert_close(lr.rank_distribution(4), torch.full((4,), 0.25, dtype=torch.float64))
    p = lr.rank_distribution(3, [1.0, 2.0, 1.0])
    torch.testing.assert_close(p, torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64))
    with pytest.raises(ValueError, match="rank_weights must be 3 positive"):
        lr.rank_distribution(3, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="rank_weights must be 3 positive"):
        lr.rank_distribution(3, [1.0, 1.0])
    A, _, _ = lr.matrix_with_spectrum(4, 3, [3.0, 2.0, 1.0], seed=0)
    layer = lr.OrderedLowRankLinear(3, 4, seed=3)
    expected = sum(p[b - 1] * (A - layer.product(b)).pow(2).sum() for b in (1, 2, 3))
    torch.testing.assert_close(lr.ordered_loss(layer, A, rank_weights=[1.0, 2.0, 1.0]).detach(), expected)
    with pytest.raises(ValueError, match="rank_weights"):
        lr.fit_ordered(A, steps=2, lr=0.1, rank_weights=[1.0, -1.0, 1.0], progress=False)


def test_tail_importance_is_maestros_score():
    layer = lr.OrderedLowRankLinear(2, 2, seed=0)
    with torch.no_grad():
        layer.U.copy_(torch.tensor([[3.0, 0.0], [4.0, 1.0]]))
        layer.V.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    # ‖U‖_F = √26, ‖V‖_F = √5; trailing block: ‖U_{:,1:}‖ = 1, ‖V_{:,1:}‖ = 2
    torch.testing.assert_close(layer.tail_importance(),
                               torch.tensor([26 ** 0.5 * 5 ** 0.5, 2.0], dtype=torch.float64))


def test_group_lasso_importances_solve_the_stationarity_condition():
    sig = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    assert torch.equal(lr.group_lasso_importances(sig, 8, 0.0), sig)
    s = lr.group_lasso_importances(sig, 8, 1e-3)
    tails = s.flip(0).cumsum(0).flip(0)
    counts = 8 - torch.arange(3, dtype=torch.float64)
    torch.testing.assert_close(sig - s, 1e-3 * 8 * 14 / (2 * counts) * tails.rsqrt().cumsum(0))
    assert bool((s < sig).all()) and (sig - s)[2] > (sig - s)[0]
    # the prediction is the minimiser of the reduced objective in s (balanced, aligned factors)
    def reduced(v):
        t = v.flip(0).cumsum(0).flip(0)
        return ((counts * (sig - v) ** 2).sum() / (8 * 14) + 1e-3 * 2 * t.sqrt().sum()).item()
    for i in range(3):
        for step in (1e-4, -1e-4):
            moved = s.clone()
            moved[i] += step
            assert reduced(moved) > reduced(s)
    with pytest.raises(ValueError, match="non-increasing"):
        lr.group_lasso_importances([1.0, 2.0], 4, 1e-3)
    with pytest.raises(ValueError, match="rank must be an integer"):
        lr.group_lasso_importances([2.0, 1.0], 1, 1e-3)


def test_sampled_targets_use_the_thin_svd_of_a_low_rank_target():
    A, _, _ = lr.matrix_with_spectrum(6, 6, [2.0, 1.0], seed=3)
    layer = lr.OrderedLowRankLinear(6, 6, rank=2, seed=0)
    with pytest.raises(ValueError, match="A must have shape"):
        lr.ordered_dropout_sgd(layer, A[:, :5], steps=1, batch=4, lr=0.01, progress=False)
    from theorylab.seeding import make_generator
    gen = make_generator(0)
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    ranks = torch.randint(1, 3, (4,), generator=gen)
    first = ((layer.forward_per_sample(x, ranks) - x @ A.T).pow(2).sum(1).mean() / A.pow(2).sum()).item()
    losses = lr.ordered_dropout_sgd(layer, A, steps=3, batch=4, lr=0.01, seed=0, progress=False)
    assert losses.shape == (3,) and losses[0] == pytest.approx(first, rel=1e-12)


def test_truncated_svd_and_principal_angles_refuse_bad_input():
    import numpy as np
    A, _, _ = lr.matrix_with_spectrum(5, 4, [3.0, 2.0, 1.0, 0.5], seed=0)
    assert torch.linalg.matrix_rank(lr.truncated_svd(A, np.int64(2))) == 2
    assert lr.truncated_svd(A, 0).abs().max() == 0
    with pytest.raises(ValueError, match="k must be an integer in \\[0, 4\\], got -1"):
        lr.truncated_svd(A, -1)
    with pytest.raises(ValueError, match="k must be an integer in \\[0, 4\\], got 5"):
        lr.truncated_svd(A, 5)
    with pytest.raises(TypeError, match="k must be an integer"):
        lr.truncated_svd(A, 2.0)
    e12 = torch.eye(4, dtype=torch.float64)[:, :2]
    with pytest.raises(ValueError, match="P must have full column rank"):
        lr.principal_angle_cosines(torch.zeros(4, 2, dtype=torch.float64), e12)
    with pytest.raises(ValueError, match="Q must have full column rank"):
        lr.principal_angle_cosines(e12, torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="same number of rows"):
        lr.principal_angle_cosines(e12, torch.eye(3, dtype=torch.float64)[:, :2])
    nearly = torch.tensor([[1.0, 1.0], [0.0, 1e-12], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    # matrix_rank uses another tolerance: the message must not say "rank 2"
    assert torch.linalg.matrix_rank(nearly) == 2
    with pytest.raises(ValueError, match=r"P must have full column rank .*\[5, 2\] matrix whose QR diagonal "
                                         r"has min/max \|R_ii\| = 1\.0e-12") as info:
        lr.principal_angle_cosines(nearly, torch.eye(5, dtype=torch.float64)[:, :2])
    assert "rank 2" not in str(info.value)
    with pytest.raises(ValueError, match="more columns than rows"):
        lr.principal_angle_cosines(torch.eye(2, 3, dtype=torch.float64), torch.eye(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("call, error, match", [
    (lambda: lr.OrderedLowRankLinear(4, 3, init_scale=float("inf")), ValueError,
     "init_scale must be a finite"),
    (lambda: lr.OrderedLowRankLinear(4, 3, init_scale=0.0), ValueError, "init_scale must be >"),
    (lambda: lr.fit_ordered(torch.eye(3), steps=5, lr=float("nan")), ValueError, "lr must be a finite"),
    (lambda: lr.fit_ordered(torch.eye(3), steps=5, lr=0.1, group_lasso=-1.0), ValueError,
     "group_lasso must be ≥ 0"),
    (lambda: lr.group_lasso_importances([2.0, 1.0], 4, float("inf")), ValueError, "weight must be a finite"),
])
def test_real_parameters_are_validated(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_sizes_are_accepted():
    import numpy as np
    layer = lr.OrderedLowRankLinear(np.int64(4), np.int32(3), rank=np.int64(2), init_scale=np.float64(0.5))
    assert layer.rank == 2 and layer.product(np.int64(1)).shape == (3, 4)
    assert lr.rank_distribution(np.int64(3)).shape == (3,)


def test_rank_losses_and_eckart_young_excess():
    s = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)
    A, left, right = lr.matrix_with_spectrum(5, 4, s, seed=1)
    layer = lr.OrderedLowRankLinear(4, 5, rank=3, seed=2)
    expected = torch.stack([(A - layer.product(k)).pow(2).sum() for k in (1, 2, 3)])
    torch.testing.assert_close(lr.rank_losses(layer, A), expected)
    torch.testing.assert_close(lr.rank_losses(layer, A).mean(), lr.ordered_loss(layer, A).detach())
    best = torch.tensor([4.0 + 1.0, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(lr.eckart_young_excess(layer, A), (expected - best) / 21.0)
    with pytest.raises(ValueError, match="A must have shape"):
        lr.rank_losses(layer, A[:, :3])
    # at the nested truncated SVD every excess is zero
    with torch.no_grad():
        layer.U.copy_(left * s.sqrt())
        layer.V.copy_(right * s.sqrt())
    assert lr.eckart_young_excess(layer, A).abs().max() < 1e-14


def test_nested_error_bound_holds_and_is_attained():
    # ‖W_k − A_k‖² ≤ (σ_k/δ_k) · excess_k for any W_k of rank ≤ k (the chapter's per-rank bound)
    s = torch.tensor([3.0, 2.0, 1.5, 1.0], dtype=torch.float64)
    A, left, right = lr.matrix_with_spectrum(6, 5, s, seed=4)
    for start in range(20):
        layer = lr.OrderedLowRankLinear(5, 6, rank=4, seed=start, init_scale=0.2 + 0.1 * start)
        assert bool((lr.nested_errors(layer, A) <= lr.nested_error_bound(layer, A) * (1 + 1e-12)).all())
    # equality: W_1 = σ_1 a_2 c_2ᵀ (the first component swapped for the second, at the first one's size)
    layer = lr.OrderedLowRankLinear(5, 6, rank=1, seed=0)
    with torch.no_grad():
        layer.U.copy_(left[:, 1:2] * 3.0)
        layer.V.copy_(right[:, 1:2])
    torch.testing.assert_close(lr.nested_errors(layer, A), lr.nested_error_bound(layer, A))
    # a tie σ_1 = σ_2 gives no bound (infinite, or huge through the rounding of the computed gap);
    # σ_k = 0 gives ‖W_k − A_k‖² = excess_k
    A_tie, _, _ = lr.matrix_with_spectrum(4, 4, [2.0, 2.0, 1.0], seed=5)
    assert lr.nested_error_bound(lr.OrderedLowRankLinear(4, 4, rank=2, seed=1), A_tie)[0] > 1e5
    A_low, _, _ = lr.matrix_with_spectrum(4, 4, [2.0], seed=6)
    layer = lr.OrderedLowRankLinear(4, 4, rank=3, seed=1)
    torch.testing.assert_close(lr.nested_error_bound(layer, A_low)[1:], lr.nested_errors(layer, A_low)[1:])
