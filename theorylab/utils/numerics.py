"""Numerics shared by the topic modules: many small minimisations at once (:func:`lbfgs_many`, used by
chapter 5's logistic regressions), the largest eigenvalue of a symmetric operator known only through
matrix-vector products (:func:`lanczos_max`, used by chapter 4's sharpness), and where a sampled curve
first crosses a level (:func:`first_crossing`, with one "never" value :data:`NEVER` shared by
``jepa.half_time``, ``generative.first_crossing`` and the kernel ``feature_half_times``).

Both are deterministic given their inputs (and ``seed`` for Lanczos's start vector); they work in the
dtype and on the device of their inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..seeding import make_generator
from .validation import check_int, check_real, check_tensor

__all__ = ["lbfgs_many", "lanczos_max", "first_crossing", "NEVER"]

#: What a first crossing is when the curve never gets there: an infinite time (or size), which compares
#: after every finite one. ``jepa.half_time``, ``generative.first_crossing`` and the Triton kernel
#: ``feature_half_times`` all return it.
NEVER = math.inf


def first_crossing(x, values, level: float, *, rising: bool, log_x: bool = False) -> float:
    """The first ``x`` at which ``values`` reaches ``level`` (``values ≥ level`` if ``rising``, else
    ``values ≤ level``), interpolated linearly between the two samples around it (in ``log x`` if
    ``log_x``); ``x[0]`` if it starts there, :data:`NEVER` if it never does.

    ``x`` and ``values``: 1-D array-likes of the same length ≥ 1 (``x`` increasing); ``level`` a number.
    """
    x = np.asarray(x, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or values.shape != x.shape or x.size == 0:
        raise ValueError(f"x and values must be 1-D of the same length ≥ 1, got shapes {x.shape} and "
                         f"{values.shape}")
    reached = np.nonzero(values >= level if rising else values <= level)[0]
    if reached.size == 0:
        return NEVER
    j = int(reached[0])
    if j == 0:
        return float(x[0])
    frac = (level - values[j - 1]) / (values[j] - values[j - 1])
    if log_x:
        return float(np.exp(np.log(x[j - 1]) + frac * (np.log(x[j]) - np.log(x[j - 1]))))
    return float(x[j - 1] + frac * (x[j] - x[j - 1]))


def lbfgs_many(fun: Callable, x0: torch.Tensor, *, max_iter: int, tol: float, history: int = 10):
    """Minimise ``P`` independent smooth functions at once: ``fun(x [P, D]) -> (f [P], g [P, D])``.

    Limited-memory BFGS with a backtracking (Armijo) line search, both batched: every problem keeps its
    own curvature pairs, scaling and step length. The direction uses the compact form of the L-BFGS
    inverse Hessian (Byrd, Nocedal and Schnabel 1994; Nocedal and Wright, eq. 7.24),

        H g = γ g + S p − γ Y w,   w = R⁻¹ Sᵀg,   p = R⁻ᵀ((Dₛ + γ YᵀY) w − γ Yᵀg),

    with ``S``, ``Y`` [P, D, h] the last ``h`` steps and gradient changes, ``R`` the upper triangle of
    ``SᵀY`` and ``Dₛ`` its diagonal: a dozen batched matrix operations per iteration instead of the
    two-loop recursion's ``4h`` vector operations. A problem stops once ``max |g| ≤ tol`` (or when
    the line search finds no decrease). Returns ``(x, iterations, converged)``: ``iterations`` of the
    slowest problem, and ``converged`` [P] (bool) true for the problems whose final gradient has
    ``max |g| ≤ tol`` — false for those stopped by ``max_iter`` or by a line search that found no decrease
    with the gradient still above ``tol``.

    Finished problems leave the batch. If ``fun`` has an attribute ``restrict`` (``fun.restrict(keep)``
    returns the same functions for the problems at positions ``keep`` of ``fun``'s batch, again with a
    ``restrict``), the solver drops them at the first iteration they are done, so they cost nothing
    afterwards; otherwise they stay in the batch with a zero step. Either way every problem follows the
    iterates it would follow alone: its direction, step length and curvature pairs depend on its own
    values only.
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    check_tensor("x0", x0, ndim=2)
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point torch.Tensor [P, D], got {type(x0).__name__}")
    check_int("max_iter", max_iter, low=1)
    check_real("tol", tol, low=0.0)
    check_int("history", history, low=1)
    x = x0.clone()
    out = x0.clone()                                      # finished problems are written here
    converged = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
    f, g = fun(x)
    P, D = x.shape
    rows = torch.arange(P, device=x.device)               # the problems still in the batch
    S = x.new_zeros(P, D, 0)
    Y = x.new_zeros(P, D, 0)
    gamma = x.new_ones(P)
    stalled = torch.zeros(P, dtype=torch.bool, device=x.device)
    iterations = 0
    # Per iteration the work on small batches is dominated by the number of tensor operations, not by
    # their size, so operations that cannot change a value (masks that are all true, a fallback no
    # problem needs) are skipped; the arithmetic of every problem is the same as without the skips.
    for iterations in range(1, max_iter + 1):           # noqa: B007 -- the count is returned
        active = (g.abs().amax(1) > tol) & ~stalled
        everyone = bool(active.all())
        if hasattr(fun, "restrict") and not everyone:
            done = ~active                                # drop the finished problems from the batch
            out[rows[done]] = x[done]
            converged[rows[done]] = g[done].abs().amax(1) <= tol
            alive = active.nonzero().squeeze(1)
            rows, x, f, g, S, Y, gamma, stalled = (t[alive] for t in (rows, x, f, g, S, Y, gamma, stalled))
            active = active[alive]
            everyone = True                               # every problem left is running
            fun = fun.restrict(alive) if rows.numel() else None
            if fun is None:
                iterations -= 1
                break
        elif not everyone and not bool(active.any()):
            iterations -= 1
            break
        n_active = rows.numel()
        if S.shape[2] == 0:                               # first step: along −g, at most unit length
            d = -g / g.norm(dim=1, keepdim=True).clamp_min(1.0)
        else:
            St, Yt = S.transpose(1, 2), Y.transpose(1, 2)
            SY = St @ Y                                                             # [P, h, h]
            diag = torch.diagonal(SY, dim1=1, dim2=2)
            R = torch.triu(SY) + torch.diag_embed((diag == 0).to(x.dtype))        # 1 for discarded pairs
            gcol = g.unsqueeze(-1)
            u = St @ gcol                                                           # [P, h, 1]
            gamma3 = gamma[:, None, None]
            v = gamma3 * (Yt @ gcol)
            w = torch.linalg.solve_triangular(R, u, upper=True)
            inner = torch.diag_embed(diag) + gamma3 * (Yt @ Y)
            p = torch.linalg.solve_triangular(R.transpose(1, 2), inner @ w - v, upper=False)
            Hg = gamma[:, None] * g + (S @ p).squeeze(-1) - gamma[:, None] * (Y @ w).squeeze(-1)
            d = -Hg
        slope = (g * d).sum(1)
        bad = slope >= 0                                  # not a descent direction: fall back to −g
        if bool(bad.any()):
            d = torch.where(bad[:, None], -g, d)
            slope = torch.where(bad, -(g * g).sum(1), slope)
        if not everyone:
            d = d * active[:, None]
        t = x.new_ones(n_active)
        slack = 8 * torch.finfo(x.dtype).eps * f.abs()
        for _ in range(60):
            f_new, g_new = fun(x + t[:, None] * d)
            # Armijo, with a few ulps of slack: near the optimum the decrease is below rounding
            ok = f_new <= f + 1e-4 * t * slope + slack
            if not everyone:
                ok = ok | ~active
            if ok.all():
                break
            t = torch.where(ok, t, 0.5 * t)
        else:                                             # no decrease found: freeze these problems
            stalled = stalled | ~ok
            t = torch.where(ok, t, torch.zeros_like(t))
            f_new, g_new = fun(x + t[:, None] * d)
        s = t[:, None] * d
        x = x + s
        yv = g_new - g
        sy = (s * yv).sum(1)
        valid = sy > 1e-12 * s.norm(dim=1) * yv.norm(dim=1)      # keep H positive definite
        gamma = torch.where(valid, sy / (yv * yv).sum(1).clamp_min(1e-300), gamma)
        if not bool(valid.all()):
            keep = valid[:, None].to(x.dtype)
            s, yv = s * keep, yv * keep
        S = torch.cat([S, s.unsqueeze(-1)], 2)[:, :, -history:]
        Y = torch.cat([Y, yv.unsqueeze(-1)], 2)[:, :, -history:]
        f, g = f_new, g_new
    out[rows] = x
    converged[rows] = g.abs().amax(1) <= tol
    return out, iterations, converged


def lanczos_max(matvec, p: int, iters: int, *, seed: int, dtype, device) -> float:
    """Largest Ritz value of ``iters`` Lanczos steps with full reorthogonalisation (a lower bound on
    λ_max that is exact once the Krylov space contains the top eigenvector, e.g. after rank + 1 steps)."""
    if not callable(matvec):
        raise TypeError(f"matvec must be callable, got {type(matvec).__name__}")
    check_int("p", p, low=1)
    check_int("iters", iters, low=1)
    gen = make_generator(seed, device=device)
    q = torch.randn(p, generator=gen, dtype=dtype, device=device)
    basis = [q / q.norm()]
    alphas, betas = [], []
    for j in range(iters):
        w = matvec(basis[j])
        alphas.append(torch.dot(w, basis[j]).item())
        Q = torch.stack(basis)
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)                                  # twice is enough (Kahan–Parlett)
        beta = w.norm().item()
        if j + 1 == iters or beta <= 1e-12 * max(abs(a) for a in alphas):
            break
        betas.append(beta)
        basis.append(w / beta)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(T)[-1].item()
