"""The shared iterative numerics (``theorylab.utils.numerics``): batched L-BFGS against scipy's L-BFGS-B
in float64, Lanczos's largest eigenvalue against a dense eigensolver, and their input checks."""

import math

import numpy as np
import pytest
import torch

from theorylab.utils.numerics import lanczos_max, lbfgs_many


def _convex_problems(scales, seen=None):
    """Independent smooth convex functions ½ rᵀA r + Σ softplus(x), r = x − c, with A of condition number
    `scale` (so that the problems need different numbers of iterations), as the batched solver wants
    them: ``fun(x [P, D]) -> (f, g)`` with a ``restrict``; ``seen`` collects the batch size of each call."""
    gen_ = torch.Generator().manual_seed(7)
    D = 6
    As, cs = [], []
    for scale in scales:
        Q, _ = torch.linalg.qr(torch.randn(D, D, generator=gen_, dtype=torch.float64))
        As.append(Q @ torch.diag(torch.logspace(0, math.log10(scale), D, dtype=torch.float64)) @ Q.T)
        cs.append(torch.randn(D, generator=gen_, dtype=torch.float64))

    def make(A, c):
        def fun(x):
            if seen is not None:
                seen.append(x.shape[0])
            r = x - c
            Ar = (A @ r.unsqueeze(-1)).squeeze(-1)
            return 0.5 * (r * Ar).sum(1) + torch.nn.functional.softplus(x).sum(1), Ar + torch.sigmoid(x)
        fun.restrict = lambda keep: make(A[keep], c[keep])
        return fun

    return make(torch.stack(As), torch.stack(cs)), As, cs


def test_batched_lbfgs_drops_finished_problems_and_each_follows_its_own_iterates():
    from scipy.optimize import minimize

    scales = [1.0, 10.0, 1e3, 3.0, 1e4]
    seen = []
    fun, As, cs = _convex_problems(scales, seen)
    x0 = torch.zeros(len(scales), 6, dtype=torch.float64)
    x_drop, it_drop, ok_drop = lbfgs_many(fun, x0, max_iter=500, tol=1e-10)
    seen = list(seen)                                        # the batch sizes of this run only
    masked = lambda x: fun(x)                               # noqa: E731 -- no ``restrict``: nothing dropped
    x_mask, it_mask, ok_mask = lbfgs_many(masked, x0, max_iter=500, tol=1e-10)
    alone = [lbfgs_many(fun.restrict(torch.tensor([p])), x0[:1], max_iter=500, tol=1e-10)
             for p in range(len(scales))]
    # the same iterates, so the same iteration counts and the same points up to rounding
    assert it_drop == it_mask == max(it for _, it, _ in alone)
    assert len({it for _, it, _ in alone}) > 2               # the problems do finish at different times
    assert bool(ok_drop.all()) and bool(ok_mask.all()) and all(bool(ok.all()) for *_, ok in alone)
    # stopped before the slowest problems finish: those (and only those) are flagged
    its = [it for _, it, _ in alone]
    _, _, ok_short = lbfgs_many(fun, x0, max_iter=sorted(its)[2], tol=1e-10)
    assert ok_short.tolist() == [it <= sorted(its)[2] for it in its]
    x_alone = torch.cat([x for x, _, _ in alone])
    torch.testing.assert_close(x_drop, x_alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(x_mask, x_alone, rtol=0, atol=1e-12)
    # finished problems left the batch: it only shrinks, ends with the slowest problem alone, and the
    # rows evaluated are about the sum of the problems' own costs, not the slowest one's times P
    assert seen == sorted(seen, reverse=True) and seen[0] == len(scales) and seen[-1] == 1
    assert sum(seen) < 0.7 * len(scales) * len(seen)
    for A, c, x in zip(As, cs, x_drop, strict=True):       # the optimum, by scipy's L-BFGS-B in float64
        A_np, c_np = A.numpy(), c.numpy()

        def f_np(v, A_np=A_np, c_np=c_np):
            r = v - c_np
            return 0.5 * r @ A_np @ r + np.logaddexp(0, v).sum(), A_np @ r + 1 / (1 + np.exp(-v))
        ref = minimize(f_np, np.zeros(6), jac=True, method="L-BFGS-B", options=dict(gtol=1e-12, ftol=0,
                                                                                     maxiter=10_000))
        np.testing.assert_allclose(x.numpy(), ref.x, atol=1e-8)


def test_lanczos_finds_the_largest_eigenvalue_of_a_symmetric_operator():
    g = torch.Generator().manual_seed(3)
    B = torch.randn(40, 9, generator=g, dtype=torch.float64)
    A = B.T @ B / 40                                          # rank 9 in dimension 9, a Gram matrix
    exact = torch.linalg.eigvalsh(A)[-1].item()
    assert lanczos_max(lambda u: A @ u, 9, 10, seed=0, dtype=torch.float64, device="cpu") == pytest.approx(
        exact, rel=1e-12)
    low_rank = B[:3].T @ B[:3]                                # rank 3: exact after 4 steps (early exit)
    exact_low = torch.linalg.eigvalsh(low_rank)[-1].item()
    assert lanczos_max(lambda u: low_rank @ u, 9, 9, seed=1, dtype=torch.float64,
                       device="cpu") == pytest.approx(exact_low, rel=1e-12)
    few = lanczos_max(lambda u: A @ u, 9, 2, seed=0, dtype=torch.float64, device="cpu")
    assert few <= exact * (1 + 1e-12)                        # a Ritz value: never above the top eigenvalue


@pytest.mark.parametrize("call, error, message", [
    (lambda: lbfgs_many(None, torch.zeros(2, 3, dtype=torch.float64), max_iter=5, tol=1e-6), TypeError,
     "fun must be callable"),
    (lambda: lbfgs_many(lambda x: x, torch.zeros(3, dtype=torch.float64), max_iter=5, tol=1e-6), ValueError,
     "x0"),
    (lambda: lbfgs_many(lambda x: x, torch.zeros(2, 3, dtype=torch.int64), max_iter=5, tol=1e-6), TypeError,
     "x0 must be a floating-point"),
    (lambda: lbfgs_many(lambda x: x, torch.zeros(2, 3, dtype=torch.float64), max_iter=0, tol=1e-6),
     ValueError, "max_iter must be an integer ≥ 1"),
    (lambda: lbfgs_many(lambda x: x, torch.zeros(2, 3, dtype=torch.float64), max_iter=5, tol=math.nan),
     ValueError, "tol must be a finite number"),
    (lambda: lanczos_max(lambda u: u, 0, 3, seed=0, dtype=torch.float64, device="cpu"), ValueError,
     "p must be an integer ≥ 1"),
    (lambda: lanczos_max("A", 3, 3, seed=0, dtype=torch.float64, device="cpu"), TypeError,
     "matvec must be callable"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_first_crossing_interpolates_and_says_never():
    from theorylab.utils.numerics import NEVER, first_crossing
    assert first_crossing([0.0, 1.0, 2.0], [0.0, 0.4, 0.8], 0.6, rising=True) == pytest.approx(1.5)
    falling = first_crossing([1.0, 10.0, 100.0], [0.5, 0.2, 0.05], 0.2, rising=False, log_x=True)
    assert falling == pytest.approx(10.0)
    assert first_crossing([1.0, 10.0], [0.5, 0.0], 0.1, rising=False, log_x=True) == pytest.approx(10 ** 0.8)
    assert first_crossing([3.0, 4.0], [1.0, 2.0], 0.5, rising=True) == 3.0          # starts there
    assert first_crossing([3.0, 4.0], [1.0, 2.0], 5.0, rising=True) == NEVER == math.inf
    with pytest.raises(ValueError, match="same length"):
        first_crossing([1.0, 2.0], [1.0], 0.5, rising=True)
