"""Half-times of many independent per-feature learning dynamics, each integrated in registers.

Under balanced, aligned initialisation every feature of a deep linear JEPA or MAE model follows a
scalar ODE for its layer value ``u`` (see ``theorylab.jepa``)::

    JEPA:  du/dt = λ u^{2L} (1 − u/ρ)          MAE:  du/dt = λ u^{L} (1 − u^{L+1}/ρ)

with ``u(0) = ε^{1/L}``; the encoder's value is ``w̄ = u^L``. For each feature the kernel runs
``n_steps`` classical Runge–Kutta steps of size ``t_max / n_steps`` without leaving registers and
returns the time at which ``w̄`` first reaches half of its fixed point (linearly interpolated between
steps; 0 if it starts there, ``inf`` if it never gets there) and ``w̄(t_max)``. The step size must
resolve the dynamics: RK4 is stable for ``dt · |∂f/∂u| ≲ 2.8``. The torch reference runs the same scheme, one
vectorised launch per time step.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_int, check_real, use_triton

OBJECTIVES = {"jepa": 0, "mae": 1}
BLOCK = 128


@triton.jit
def _rate(u, lam, rho, depth, MAE: tl.constexpr):
    # u > 0 throughout (it starts positive and the fixed point is positive), so powers via exp/log.
    log_u = tl.log(u)
    if MAE:
        return lam * tl.exp(depth * log_u) * (1.0 - tl.exp((depth + 1.0) * log_u) / rho)
    return lam * tl.exp(2.0 * depth * log_u) * (1.0 - u / rho)


@triton.jit
def _feature_half_times_kernel(LAM, RHO, TMAX, HALF, FINAL, N, depth, u0, n_steps,
                               MAE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    lam = tl.load(LAM + offs, mask=mask, other=1.0)
    rho = tl.load(RHO + offs, mask=mask, other=1.0)
    dt = tl.load(TMAX + offs, mask=mask, other=1.0) / n_steps
    if MAE:
        target = 0.5 * tl.exp(depth / (depth + 1.0) * tl.log(rho))   # half of ρ^{L/(L+1)}
    else:
        target = 0.5 * tl.exp(depth * tl.log(rho))                   # half of ρ^L
    u = tl.zeros([BLOCK], dtype=tl.float32) + u0
    w_prev = tl.exp(depth * tl.log(u))
    half = tl.where(w_prev >= target, 0.0, float("inf"))   # already past half at t = 0
    for step in range(n_steps):
        k1 = _rate(u, lam, rho, depth, MAE)
        k2 = _rate(u + 0.5 * dt * k1, lam, rho, depth, MAE)
        k3 = _rate(u + 0.5 * dt * k2, lam, rho, depth, MAE)
        k4 = _rate(u + dt * k3, lam, rho, depth, MAE)
        u = u + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        w = tl.exp(depth * tl.log(u))
        crossed = (half == float("inf")) & (w >= target)
        frac = (target - w_prev) / tl.where(w > w_prev, w - w_prev, 1.0)
        half = tl.where(crossed, (step + frac) * dt, half)
        w_prev = w
    tl.store(HALF + offs, half, mask=mask)
    tl.store(FINAL + offs, w_prev, mask=mask)


def _validate(lam, rho, t_max, depth, eps, objective, n_steps):
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    depth = check_int("depth", depth)
    eps = check_real("eps", eps, low=0, high=1)
    n_steps = check_int("n_steps", n_steps)
    for name, t in (("lam", lam), ("rho", rho), ("t_max", t_max)):
        if not isinstance(t, torch.Tensor) or t.ndim != 1 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 1-D floating tensor, got {getattr(t, 'shape', t)!r}")
        if t.shape != lam.shape:
            raise ValueError(f"{name} must have the shape of lam {list(lam.shape)}, got {list(t.shape)}")
        check_finite(**{name: t})
        if not bool((t > 0).all()):
            raise ValueError(f"{name} must be positive")
    return depth, eps, n_steps


def feature_half_times(lam: torch.Tensor, rho: torch.Tensor, t_max: torch.Tensor, *, depth: int,
                       eps: float, objective: str = "jepa", n_steps: int = 2000,
                       backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate every feature's ODE on ``[0, t_max]`` and return its half-time and final value.

    Parameters
    ----------
    lam, rho : Tensor [N]
        Cross-covariance λ > 0 and regression coefficient ρ > 0 of each feature.
    t_max : Tensor [N]
        Integration horizon per feature (gradient-flow time units).
    depth : int
        Encoder depth L ≥ 1.
    eps : float
        Initial encoder value w̄(0) = ε in (0, 1) (each layer starts at ε^{1/L}).
    objective : {"jepa", "mae"}
    n_steps : int
        RK4 steps per feature (step size ``t_max / n_steps``).
    backend : {"auto", "triton", "torch"}

    Returns
    -------
    half_times : Tensor [N], float32 (``inf``, ``theorylab.utils.numerics.NEVER``, where w̄ never reaches
        half its fixed point)
    final : Tensor [N], float32, w̄(t_max)
    """
    depth, eps, n_steps = _validate(lam, rho, t_max, depth, eps, objective, n_steps)
    if not use_triton(lam, backend):
        return feature_half_times_reference(lam, rho, t_max, depth=depth, eps=eps, objective=objective,
                                            n_steps=n_steps)
    n = lam.numel()
    half = torch.empty(n, device=lam.device, dtype=torch.float32)
    final = torch.empty(n, device=lam.device, dtype=torch.float32)
    _feature_half_times_kernel[(triton.cdiv(n, BLOCK),)](
        lam.float().contiguous(), rho.float().contiguous(), t_max.float().contiguous(), half, final,
        n, float(depth), float(eps ** (1.0 / depth)), n_steps,
        MAE=OBJECTIVES[objective] == 1, BLOCK=BLOCK)
    return half, final


def compile_cases():
    """The kernel's two configurations (JEPA, MAE) for ``compile_check``: the launcher passes float32
    tensors and scalars whatever the inputs' dtype."""
    from .compile_check import CompileCase

    signature = {name: "*fp32" for name in ("LAM", "RHO", "TMAX", "HALF", "FINAL")}
    signature.update(N="i32", depth="fp32", u0="fp32", n_steps="i32", MAE="constexpr", BLOCK="constexpr")
    return [CompileCase(_feature_half_times_kernel, signature, {"MAE": mae, "BLOCK": BLOCK},
                        f"{'MAE' if mae else 'JEPA'} BLOCK={BLOCK}") for mae in (False, True)]


def feature_half_times_reference(lam, rho, t_max, *, depth, eps, objective="jepa", n_steps=2000):
    """Plain torch: the same RK4 scheme, vectorised over features, one step at a time (float32)."""
    lam, rho, dt = lam.float(), rho.float(), t_max.float() / n_steps
    L = float(depth)
    if objective == "mae":
        def rate(u):
            return lam * u**L * (1 - u ** (L + 1) / rho)
        target = 0.5 * rho ** (L / (L + 1))
    else:
        def rate(u):
            return lam * u ** (2 * L) * (1 - u / rho)
        target = 0.5 * rho**L
    u = torch.full_like(lam, eps ** (1.0 / depth))
    w_prev = u**L
    half = torch.where(w_prev >= target, 0.0, math.inf)   # already past half at t = 0
    for step in range(n_steps):
        k1 = rate(u)
        k2 = rate(u + 0.5 * dt * k1)
        k3 = rate(u + 0.5 * dt * k2)
        k4 = rate(u + dt * k3)
        u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        w = u**L
        crossed = torch.isinf(half) & (w >= target)
        half = torch.where(crossed, (step + (target - w_prev) / (w - w_prev)) * dt, half)
        w_prev = w
    return half, w_prev
