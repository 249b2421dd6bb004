import math

import pytest
import torch
from kernel_helpers import collapse_directions_inputs

from theorylab import collapse as C


def test_balanced_closed_forms_match_the_digest_values():
    # n_k = 25, λ_H = 1e-3, λ_W = 2e-3: the product's singular value and f* at M = 1, 2, 3 (±bias)
    sigma = {1: 1.85351933, 2: 2.29179669, 3: 2.54897905}
    f_star = {(1, False): 0.0278842712475, (1, True): 0.0209132034356, (2, False): 0.02767609585,
              (2, True): 0.0207570718875, (3, False): 0.0299708236737, (3, True): 0.0224781177553}
    for (M, bias), value in f_star.items():
        opt = C.mse_optimum([25] * 4, depth=M, lambda_w=2e-3, lambda_h=1e-3, bias=bias)
        assert math.isclose(opt.objective, value, rel_tol=1e-9)
        assert math.isclose(opt.a.max().sqrt().item(), sigma[M], rel_tol=1e-8)
        assert (opt.a == 0).sum().item() == (1 if bias else 0)


def test_depth_one_closed_form_and_threshold():
    # M = 1, λ_W = λ_H = λ: a_k = (√n_k − Nλ)_+ and n_crit = N²λ²
    sizes = [50, 30, 15, 5]
    opt = C.mse_optimum(sizes, depth=1, lambda_w=5e-3, lambda_h=5e-3)
    want = torch.tensor([math.sqrt(n) - 0.5 for n in sizes], dtype=torch.float64)
    torch.testing.assert_close(opt.a, want)
    n_crit = C.critical_class_size(100, depth=1, lambda_w=0.04, lambda_h=0.04)
    assert math.isclose(n_crit, 16.0, rel_tol=1e-12)
    for M, want in ((2, 32.0), (3, 36.0)):
        n_crit = C.critical_class_size(100, depth=M, lambda_w=0.04, lambda_h=0.04)
        assert math.isclose(n_crit, want, rel_tol=1e-12)


def test_jump_at_the_threshold_and_the_non_global_branch():
    # M = 2: at n_crit the optimal a jumps from (M−1)Nλ_H to 0; just below, the largest root is not global
    N, lam = 100, 0.03
    n_crit = C.critical_class_size(N, depth=2, lambda_w=lam, lambda_h=lam)
    roots = C.stationary_points(n_crit * (1 + 1e-9), N, depth=2, lambda_w=lam, lambda_h=lam)
    assert math.isclose(roots[-1], N * lam, rel_tol=1e-3)            # (M − 1) c with c = Nλ_H
    big = C.largest_stationary_root(18, N, depth=2, lambda_w=lam, lambda_h=lam)
    assert big > 0
    ends = torch.tensor([0.0, big], dtype=torch.float64)
    phi = C.per_direction_objective(ends, 18, N, depth=2, lambda_w=lam,
                                    lambda_h=lam)
    assert phi[1] > phi[0]                                             # the stationary branch loses to a = 0
    assert math.isclose(phi[0].item(), 18 / (2 * N), rel_tol=1e-14)
    assert C.mse_optimum([50, 30, 18, 2], depth=2, lambda_w=lam, lambda_h=lam).a[2] == 0


def test_stationary_points_are_stationary():
    for M in (1, 2, 3, 4):
        for n in (5.0, 20.0, 60.0):
            for a in C.stationary_points(n, 100, depth=M, lambda_w=3e-3, lambda_h=2e-3):
                t = torch.tensor([a], dtype=torch.float64, requires_grad=True)
                phi = C.per_direction_objective(t, n, 100, depth=M, lambda_w=3e-3, lambda_h=2e-3)
                (grad,) = torch.autograd.grad(phi.sum(), t)
                assert abs(grad.item()) < 1e-10 * (1 + a)


def test_layer_lambdas_enter_through_their_geometric_mean():
    a = C.mse_optimum([25] * 4, depth=3, lambda_w=[1e-3, 4e-3, 2e-3], lambda_h=5e-4)
    b = C.mse_optimum([25] * 4, depth=3, lambda_w=2e-3, lambda_h=5e-4)
    torch.testing.assert_close(a.a, b.a)
    assert math.isclose(a.a.sqrt()[0].item(), 1.96916374, rel_tol=1e-8)
    torch.testing.assert_close(a.layer_singular_values[:, 0],
                               torch.tensor([1.77259264, 0.88629632, 1.25341227], dtype=torch.float64),
                               atol=1e-8,
                               rtol=0)


def test_gradients_match_autograd():
    gen = torch.Generator().manual_seed(0)
    labels = C.labels_for([3, 2, 4])
    for loss in ("mse", "ce"):
        layers = [torch.randn(2, 5, 6, generator=gen, dtype=torch.float64),
                  torch.randn(2, 3, 5, generator=gen, dtype=torch.float64)]
        H = torch.randn(2, 6, 9, generator=gen, dtype=torch.float64)
        b = torch.randn(2, 3, generator=gen, dtype=torch.float64)
        lam_w, lam_h = torch.tensor([[0.1, 0.2], [0.3, 0.05]], dtype=torch.float64), torch.tensor([0.2, 0.01])
        lam_h = lam_h.double()
        params = [p.clone().requires_grad_(True) for p in (*layers, H, b)]
        f, grads = C.ufm_objective_and_grads(params[:2], params[2], params[3], labels, lam_w, lam_h,
                                             loss=loss)
        auto = torch.autograd.grad(f.sum(), params)
        for g, a in zip(grads, auto, strict=True):
            torch.testing.assert_close(g, a)


def test_training_reaches_the_closed_form_and_collapses():
    run = C.train_ufm([10] * 4, depth=2, lambda_w=2e-3, lambda_h=1e-3, steps=1500, lr=0.5, batch=2, seed=1)
    opt = C.mse_optimum([10] * 4, depth=2, lambda_w=2e-3, lambda_h=1e-3)
    assert torch.allclose(run.objective.min(), torch.tensor(opt.objective, dtype=torch.float64), rtol=1e-8)
    best = int(run.objective.argmin())
    for m in run.metrics(best):
        assert m.nc1 < 1e-12 and m.nc2_w < 1e-6 and m.nc2_h < 1e-6 and m.nc3 < 1e-6
    with pytest.raises(AttributeError):           # a result: a frozen dataclass (FrozenInstanceError)
        run.objective = None


def test_nc_metrics_references():
    # an exact simplex ETF: NC2 is 0 against "simplex", 0.5176 against "orthogonal" (K = 4)
    P = torch.eye(4, dtype=torch.float64) - 0.25
    labels = C.labels_for([2] * 4)
    m = C.nc_metrics([P.clone()], P[:, labels], labels, reference="simplex")[0]
    assert m.nc1 < 1e-20 and m.nc2_w < 1e-14 and m.nc2_h < 1e-14 and m.nc3 < 1e-14
    m = C.nc_metrics([P.clone()], P[:, labels], labels, reference="orthogonal")[0]
    assert math.isclose(m.nc2_w, 0.5176, abs_tol=1e-4)
    D = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64))
    m = C.nc_metrics([D], torch.eye(4, dtype=torch.float64)[:, labels], labels, reference="diagonal")[0]
    assert m.nc2_w < 1e-14 and m.nc3 < 1e-14


def test_nc3_with_a_collapsed_class_is_defined():
    # minority collapse: the last class has a zero classifier row and a zero mean; NC3 ignores it (not NaN)
    labels = C.labels_for([2] * 4)
    D = torch.diag(torch.tensor([2.0, 1.0, 0.5, 0.0], dtype=torch.float64))
    m = C.nc_metrics([D], D[:, labels], labels, reference="diagonal")[0]
    assert m.nc3 < 1e-14 and m.nc2_w < 1e-14
    # only the row is zero: that class adds 1 (a unit mean against a zero row)
    E = torch.diag(torch.tensor([2.0, 1.0, 0.5, 0.3], dtype=torch.float64))
    m = C.nc_metrics([D], E[:, labels], labels, reference="diagonal")[0]
    assert math.isclose(m.nc3, 1.0, rel_tol=1e-12)


def test_ce_candidates_are_critical_points_of_the_full_model():
    for kind in ("etf", "square"):
        cand = C.ce_candidate(kind, 25, depth=3, lambda_w=1e-3, lambda_h=1e-3)
        layers, H, labels = C.ce_critical_point(cand, 25, depth=3, lambda_w=1e-3, lambda_h=1e-3)
        lam_w = torch.full((1, 3), 1e-3, dtype=torch.float64)
        lam_h = torch.full((1,), 1e-3, dtype=torch.float64)
        f, grads = C.ufm_objective_and_grads(layers, H, None, labels, lam_w, lam_h, loss="ce")
        assert math.isclose(f.item(), cand.objective, rel_tol=1e-12)
        assert max(g.abs().max().item() for g in grads[:-1]) < 1e-8
    etf = C.ce_candidate("etf", 25, depth=1, lambda_w=1e-3, lambda_h=1e-3)
    assert math.isclose(etf.objective, 0.0943616937,
                        rel_tol=1e-8)


@pytest.mark.parametrize("call, match", [
    (lambda: C.mse_optimum([5], depth=1, lambda_w=0.1, lambda_h=0.1), "at least 2 classes"),
    (lambda: C.mse_optimum([5, 2.5], depth=1, lambda_w=0.1, lambda_h=0.1), "positive integers"),
    (lambda: C.mse_optimum([5, 5], depth=0, lambda_w=0.1, lambda_h=0.1), "depth"),
    (lambda: C.mse_optimum([5, 5], depth=2, lambda_w=[0.1], lambda_h=0.1), "one value per layer"),
    (lambda: C.mse_optimum([5, 5], depth=2, lambda_w=-0.1, lambda_h=0.1), "lambda_w"),
    (lambda: C.mse_optimum([5, 3], depth=2, lambda_w=0.1, lambda_h=0.1, bias=True), "balanced"),
    (lambda: C.critical_class_size(100, depth=2, lambda_w=0.1, lambda_h=0.0), "lambda_h"),
    (lambda: C.ce_candidate("square", 5, 3, depth=1, lambda_w=0.1, lambda_h=0.1), "num_classes = 4"),
    (lambda: C.ce_candidate("simplex", 5, depth=1, lambda_w=0.1, lambda_h=0.1), "kind"),
    (lambda: C.train_ufm([5, 5], depth=1, lambda_w=0.1, lambda_h=0.1, loss="hinge"), "loss"),
    (lambda: C.train_ufm([5, 5], depth=1, lambda_w=0.1, lambda_h=0.1, lr=0.0), "lr"),
    (lambda: C.train_ufm([5, 5], depth=1, lambda_w=torch.ones(3), lambda_h=torch.ones(2)), "models"),
    (lambda: C.nc_metrics([torch.eye(2)], torch.eye(2), torch.tensor([0, 0])), "every value"),
    (lambda: C.nc_metrics([torch.eye(2)], torch.eye(2), torch.tensor([0.0, 1.0])), "labels must be integers"),
    (lambda: C.mse_optimum([5, 5], depth=2, lambda_w="1e-3", lambda_h=0.1), "lambda_w must be a number"),
    (lambda: C.stationary_objectives([5] * 30, depth=2, lambda_w=0.01, lambda_h=0.01), "at most 20 classes"),
    (lambda: C.ufm_objective_and_grads([torch.ones(1, 2, 3)], torch.ones(1, 4, 5), None,
                                       torch.zeros(5, dtype=torch.long), torch.ones(1, 1), torch.ones(1)),
     r"layers\[0\] must have shape"),
    (lambda: C.ufm_objective_and_grads([torch.ones(1, 2, 3)], torch.ones(1, 3, 2), None, torch.tensor([0, 5]),
                                       torch.ones(1, 1), torch.ones(1)), "labels must lie in"),
    (lambda: C.ufm_objective_and_grads([torch.ones(1, 2, 3)], torch.ones(1, 3, 2), None, torch.tensor([0, 1]),
                                       torch.ones(2, 1), torch.ones(1)), "lambda_w must have shape"),
])
def test_validation(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---------------------------------------------------------------------------------------------------
# collapse_directions' reference against the theory, and its input checks (the kernel against its
# reference: tests/test_kernel_collapse_directions.py)
# ---------------------------------------------------------------------------------------------------

def test_collapse_directions_end_at_a_stationary_point_of_phi():
    from theorylab.kernels import collapse_directions_reference
    inputs = collapse_directions_inputs(23, torch.float64, seed=3)
    size, total, lam, _, s0, _ = [x.cpu().double() for x in inputs]
    a, g = collapse_directions_reference(size, total, lam, lam, 3 * s0, 3 * s0, depth=2, lr=0.02,
                                         n_steps=20000)
    for i in range(23):
        roots = [0.0, *C.stationary_points(float(size[i]), 100, depth=2, lambda_w=float(lam[i]),
                                           lambda_h=float(lam[i]))]
        assert min(abs(a[i].item() - r) for r in roots) < 1e-8 * (1 + a[i].item())
        phi = C.per_direction_objective(a[i:i + 1], float(size[i]), 100, depth=2, lambda_w=float(lam[i]),
                                        lambda_h=float(lam[i]))
        assert abs(g[i].item() - phi.item()) < 1e-10


def test_the_fold_is_where_the_non_zero_branch_is_born():
    for depth, lam in ((2, 0.03), (3, 0.01)):
        fold = C.fold_class_size(100, depth=depth, lambda_w=lam, lambda_h=lam)
        assert C.stationary_points(fold * (1 - 1e-9), 100, depth=depth, lambda_w=lam, lambda_h=lam) == []
        assert len(C.stationary_points(fold * (1 + 1e-9), 100, depth=depth, lambda_w=lam, lambda_h=lam)) == 2
    assert C.fold_class_size(100, depth=2, lambda_w=0.03, lambda_h=0.03) == pytest.approx(16.0, rel=1e-12)
    with pytest.raises(ValueError, match="depth"):
        C.fold_class_size(100, depth=1, lambda_w=0.03, lambda_h=0.03)


@pytest.mark.parametrize("size", [16.05, 17.0])
def test_direction_descent_rate_is_the_decay_of_the_error(size):
    """From a small displacement off the non-zero minimum, the error of the descent that
    ``collapse_directions`` runs shrinks by the predicted factor per step."""
    from theorylab.kernels import collapse_directions_reference
    kw = dict(depth=2, lambda_w=0.03, lambda_h=0.03)
    rho = C.direction_descent_rate(size, 100, lr=0.05, momentum=0.9, **kw)
    a_star = C.largest_stationary_root(size, 100, **kw)
    s_star = a_star ** 0.25
    t_star = s_star**2 / (s_star**4 + 3.0)
    one = torch.ones(1, dtype=torch.float64)

    def error(steps):
        a, _ = collapse_directions_reference(size * one, 100 * one, 0.03 * one, 0.03 * one,
                                             (s_star + 1e-4) * one, t_star * one, depth=2, lr=0.05,
                                             momentum=0.9, n_steps=steps)
        return abs(a.item() - a_star)

    k1, k2 = 600, 1200
    measured = (error(k2) / error(k1)) ** (1 / (k2 - k1))
    assert measured == pytest.approx(rho, abs=1e-5)      # 1 − ρ is 2e-3 and 1.2e-2 here
    with pytest.raises(ValueError, match="fold"):
        C.direction_descent_rate(15.9, 100, lr=0.05, momentum=0.9, **kw)


@pytest.mark.parametrize("change, match", [
    (dict(depth=0), "depth"), (dict(lr=0.0), "lr"), (dict(momentum=1.0), "momentum"),
    (dict(n_steps=-1), "n_steps"),
])
def test_collapse_directions_validates(change, match):
    from theorylab.kernels import collapse_directions
    args = collapse_directions_inputs(5, torch.float64)
    kwargs = dict(depth=2, lr=0.1, n_steps=3) | change
    with pytest.raises(ValueError, match=match):
        collapse_directions(*args, **kwargs)
    with pytest.raises(ValueError, match="shape of size"):
        collapse_directions(*args[:5], args[5][:3], depth=2, lr=0.1, n_steps=3)


# --- the deformed square (cross-entropy with a bias, K = 4) ------------------------------------------------

def test_deformed_square_is_the_square_at_depth_one_and_lower_deeper():
    square = C.ce_candidate("square", 25, depth=1, lambda_w=5e-3, lambda_h=5e-3)
    flat = C.deformed_square(25, depth=1, lambda_w=5e-3, lambda_h=5e-3)
    assert flat.bias_gap < 1e-9 and flat.weak == pytest.approx(flat.strong, rel=1e-9)
    assert flat.objective == pytest.approx(square.objective, rel=1e-12)
    for depth in (2, 3):
        deep = C.deformed_square(25, depth=depth, lambda_w=5e-3, lambda_h=5e-3)
        assert deep.bias_gap > 1.0 and deep.weak < deep.strong
        square = C.ce_candidate("square", 25, depth=depth, lambda_w=5e-3, lambda_h=5e-3)
        assert deep.objective < square.objective


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_deformed_square_is_a_critical_point_of_the_full_model(depth):
    """Built as a balanced network with its bias, the ansatz's optimum has the objective the reduction gives
    and (to the accuracy of its scales) zero gradient in every parameter of the full model."""
    ds = C.deformed_square(25, depth=depth, lambda_w=5e-3, lambda_h=5e-3)
    layers, Hbar = C.balanced_factors(ds.logits, depth=depth, lambda_w=5e-3, lambda_h_eff=25 * 5e-3, width=8)
    labels = C.labels_for([25] * 4)
    f, grads = C.ufm_objective_and_grads([w[None] for w in layers], Hbar[:, labels][None], ds.bias[None],
                                         labels, torch.full((1, depth), 5e-3, dtype=torch.float64),
                                         torch.full((1,), 5e-3, dtype=torch.float64), loss="ce")
    assert float(f[0]) == pytest.approx(ds.objective, abs=1e-14)
    assert max(float(g.abs().max()) for g in grads) < 1e-7
    sv = torch.linalg.svdvals(ds.logits)
    torch.testing.assert_close(sv[:2], torch.tensor([2 * ds.strong, 2 * ds.weak], dtype=torch.float64))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(class_size=0, depth=2, lambda_w=1e-3, lambda_h=1e-3), ValueError, "class_size"),
    (dict(class_size=25, depth=0, lambda_w=1e-3, lambda_h=1e-3), ValueError, "depth"),
    (dict(class_size=25, depth=2, lambda_w=-1e-3, lambda_h=1e-3), ValueError, "lambda_w"),
    (dict(class_size=25, depth=2, lambda_w=1e-3, lambda_h="x"), TypeError, "lambda_h"),
])
def test_deformed_square_bad_input_is_named(kwargs, error, message):
    size = kwargs.pop("class_size")
    with pytest.raises(error, match=message):
        C.deformed_square(size, **kwargs)
