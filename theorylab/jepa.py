"""Deep linear self-distillation (JEPA) versus reconstruction (MAE): per-feature dynamics (chapter 2).

Setting: two views ``x, y ∈ R^d`` with diagonal second moments in one basis, ``E[x_i y_i] = λ_i`` (the
cross-covariance) and ``E[x_i²] = λ_i / ρ_i``, so ``ρ_i`` is the coefficient of the regression of
``y_i`` on ``x_i``. An encoder ``W̄ = W_L ⋯ W_1`` (``d×d`` layers) and a predictor ``V`` are trained on

* MAE:  ``½ E‖V W̄ x − y‖²``
* JEPA: ``½ E‖V W̄ x − sg(W̄ y)‖²`` (``sg``: stop-gradient; the target uses the same encoder).

From the balanced, aligned start ``W_a = V = ε^{1/L} I`` every layer and the predictor stay equal to
``u_i I`` on feature ``i`` and gradient flow reduces to (time = gradient-flow time on every parameter)

* JEPA: ``du/dt = λ u^{2L} (1 − u/ρ)``,   fixed point ``w̄ = u^L = ρ^L``;
* MAE:  ``du/dt = λ u^L (1 − u^{L+1}/ρ)``, fixed point ``w̄ = ρ^{L/(L+1)}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import quad, solve_ivp

from .seeding import make_generator, resolve_seed
from .utils.numerics import first_crossing
from .utils.validation import check_int, check_real, check_tensor

OBJECTIVES = ("jepa", "mae")
STIFF_HORIZON = 1e5   # horizon × fastest rate above which ode_trajectory integrates as a stiff problem


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------

def _objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return objective


def _depth(depth) -> int:
    return check_int("depth", depth, low=1)


def _eps(eps) -> float:
    return check_real("eps", eps, low=0, high=1, low_open=True, high_open=True)


def _vector(name, value) -> torch.Tensor:
    """A number or a 1-D sequence of numbers as a float64 vector."""
    value = check_tensor(name, value, dtype=torch.float64)
    if value.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {list(value.shape)}")
    return value.reshape(-1)


def _features(lam, rho) -> tuple[torch.Tensor, torch.Tensor]:
    lam = _vector("lam", lam) if lam is not None else None
    rho = _vector("rho", rho)
    if lam is not None:
        if lam.shape != rho.shape:
            raise ValueError(f"lam and rho must have the same length, got {len(lam)} and {len(rho)}")
        if not bool((lam > 0).all()) or not bool(torch.isfinite(lam).all()):
            raise ValueError(f"lam must be positive and finite, got {lam.tolist()}")
    if not bool((rho > 0).all()) or not bool(torch.isfinite(rho).all()):
        raise ValueError(f"rho must lie in (0, ∞), got {rho.tolist()}")
    return lam, rho


# ----------------------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------------------

def fixed_point(objective: str, rho, *, depth: int) -> torch.Tensor:
    """Non-trivial fixed point of the encoder's per-feature value: ``ρ^L`` (JEPA), ``ρ^{L/(L+1)}`` (MAE)."""
    objective, depth = _objective(objective), _depth(depth)
    _, rho = _features(None, rho)
    return rho**depth if objective == "jepa" else rho ** (depth / (depth + 1))


def _half_u(objective, rho, depth, fraction=0.5):
    """Layer value ``u`` at which ``w̄ = u^L`` is ``fraction`` of its fixed point (half by default)."""
    return (fraction * fixed_point(objective, rho, depth=depth)) ** (1 / depth)


def _fraction(fraction) -> float:
    return check_real("fraction", fraction, low=0, high=1, low_open=True, high_open=True)


def critical_time(objective: str, lam, rho, *, depth: int, eps: float) -> torch.Tensor:
    """Leading-order take-off time from ``w̄(0) = ε`` (the chapter's formula).

    JEPA: ``(1/λ) Σ_{n=1}^{2L−1} ε^{−n/L} / (n ρ^{2L−1−n})`` (the terms of the exact integral that blow up
    as ε → 0; the logarithmic ones are dropped). MAE: ``ε^{−(L−1)/L} / ((L−1) λ)`` for ``L ≥ 2`` and
    ``log(1/ε) / λ`` for ``L = 1``; ρ does not enter at leading order.
    """
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    lam, rho = _features(lam, rho)
    L = depth
    if objective == "jepa":
        return sum(eps ** (-n / L) / (n * rho ** (2 * L - 1 - n)) for n in range(1, 2 * L)) / lam
    if L == 1:
        return torch.full_like(lam, math.log(1 / eps)) / lam
    return torch.full_like(lam, eps ** (-(L - 1) / L) / (L - 1)) / lam


def exact_half_time(objective: str, lam, rho, *, depth: int, eps: float,
                    fraction: float = 0.5) -> torch.Tensor:
    """Gradient-flow time for ``w̄`` to go from ``ε`` to half its fixed point, ``∫ du / u̇(u)``.

    With ``fraction = f`` in (0, 1): the time to reach the fraction ``f`` of the fixed point instead of
    one half. JEPA in closed form (partial fractions of ``1/(u^{2L}(1 − u/ρ))``); MAE by adaptive
    quadrature. Requires ``ε^{1/L}`` below the target value of ``u`` (else the feature starts past it).
    """
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    fraction = _fraction(fraction)
    lam, rho = _features(lam, rho)
    L, u0 = depth, eps ** (1 / depth)
    u1 = _half_u(objective, rho, depth, fraction)
    if bool((u1 <= u0).any()):
        raise ValueError(f"eps={eps} starts some features at or past the fraction {fraction:g} of their "
                         f"fixed point; need ε^(1/L) < {u1.min().item():.3g}")
    if objective == "jepa":
        total = sum((u0 ** (-n) - u1 ** (-n)) / (n * rho ** (2 * L - 1 - n)) for n in range(1, 2 * L))
        total = total + rho ** (1 - 2 * L) * (torch.log(u1 / u0) + torch.log((1 - u0 / rho) / (1 - u1 / rho)))
        return total / lam
    times = [quad(lambda u, r=r: 1.0 / (u**L * (1 - u ** (L + 1) / r)), u0, b, epsabs=0, epsrel=1e-12,
                  limit=200)[0] for r, b in zip(rho.tolist(), u1.tolist(), strict=True)]
    return torch.tensor(times, dtype=torch.float64) / lam


def sample_half_time_ratio(objective: str, x: torch.Tensor, y: torch.Tensor, *, depth: int,
                           eps: float) -> tuple[float, float]:
    """The ratio ``t_0 / t_1`` of the exact half-times of features 0 and 1 computed from the sample moments
    of ``x, y`` [n, d] (``λ̂ = mean(x y)``, ``ρ̂ = λ̂ / mean(x²)``), and its delta-method standard error.

    The ratio is a smooth function of four sample means (``x_0 y_0``, ``x_0²``, ``x_1 y_1``, ``x_1²``); its
    standard error is ``√(gᵀ Σ̂ g / n)`` with ``g`` the gradient (central differences) and ``Σ̂`` the sample
    covariance of the four products. Returns ``(ratio, se)``.
    """
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    x, y = check_tensor("x", x, dtype=torch.float64), check_tensor("y", y, dtype=torch.float64)
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] < 2 or len(x) < 2:
        raise ValueError(f"x and y must be [n, d] of one shape with n ≥ 2 and d ≥ 2, got {list(x.shape)} "
                         f"and {list(y.shape)}")
    x, y = x.double(), y.double()
    products = torch.stack([x[:, 0] * y[:, 0], x[:, 0] ** 2, x[:, 1] * y[:, 1], x[:, 1] ** 2], dim=1)
    means = products.mean(0)

    def ratio(m):
        lam = torch.stack([m[0], m[2]])
        half = exact_half_time(objective, lam, lam / torch.stack([m[1], m[3]]), depth=depth, eps=eps)
        return (half[0] / half[1]).item()

    grad = torch.zeros(4, dtype=torch.float64)
    for k in range(4):
        step = 1e-6 * abs(means[k].item())
        up, down = means.clone(), means.clone()
        up[k] += step
        down[k] -= step
        grad[k] = (ratio(up) - ratio(down)) / (2 * step)
    se = math.sqrt(float(grad @ torch.cov(products.T) @ grad) / len(x))
    return ratio(means), se


# ----------------------------------------------------------------------------------------------
# Trajectories
# ----------------------------------------------------------------------------------------------

def _velocity(objective, u, lam, rho, L):
    if objective == "jepa":
        return lam * u ** (2 * L) * (1 - u / rho)
    return lam * u**L * (1 - u ** (L + 1) / rho)


def _velocity_slope(objective, u, lam, rho, L):
    """``∂u̇/∂u`` of :func:`_velocity` (elementwise)."""
    if objective == "jepa":
        return lam * (2 * L * u ** (2 * L - 1) * (1 - u / rho) - u ** (2 * L) / rho)
    return lam * (L * u ** (L - 1) - (2 * L + 1) * u ** (2 * L) / rho)


def fastest_rate(objective: str, lam, rho, *, depth: int, eps: float, points: int = 2001) -> float:
    """The largest ``|∂u̇/∂u|`` (1/time) along the path of every feature, from the start ``ε^{1/L}`` to the
    fixed point: the inverse of the shortest local time scale of the ODE.

    Gradient descent with learning rate ``lr`` is one Euler step of the ODE per iteration; it follows
    the flow closely where ``lr·fastest_rate`` is small against 1 (and is unstable above 2). The path
    is sampled at ``points`` equally spaced values of ``u`` per feature, the fixed point included; the
    largest slope is in fact always there (JEPA ``λρ^{2L−1}``, MAE ``(L+1)λρ^{(L−1)/(L+1)}``: inside the
    path the slope is smaller), so the sampled maximum is exact.
    """
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    lam, rho = _features(lam, rho)
    points = check_int("points", points, low=2)
    start = eps ** (1 / depth)
    ends = fixed_point(objective, rho, depth=depth).numpy() ** (1 / depth)
    rate = 0.0
    for lam_i, rho_i, end in zip(lam.numpy(), rho.numpy(), ends, strict=True):
        u = np.linspace(min(start, end), max(start, end), points)
        rate = max(rate, float(np.abs(_velocity_slope(objective, u, lam_i, rho_i, depth)).max()))
    return rate


def ode_trajectory(objective: str, lam, rho, *, depth: int, eps: float, times) -> torch.Tensor:
    """The encoder's per-feature value ``w̄(t)`` [len(times), n_features] (float64), from the scalar ODE
    integrated with an 8th-order Runge–Kutta method (DOP853, relative tolerance 1e-10).

    ``times`` is an increasing 1-D sequence starting at or after 0 (gradient-flow time). When the
    horizon is long against the flow's fastest time scale (``times[-1]·fastest_rate`` above
    :data:`STIFF_HORIZON`: a deep encoder from a small start, one feature far slower than the other)
    the problem is stiff and an explicit method would need that many steps only to stay stable, so
    LSODA (which switches to an implicit method) with the exact Jacobian is used, at the same
    tolerances.
    """
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    lam, rho = _features(lam, rho)
    times = check_tensor("times", times, ndim=1, dtype=torch.float64).numpy()   # finite: no NaN or inf
    if times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be an increasing sequence of non-negative times, got "
                         f"{np.round(times[:5], 6).tolist()}{' …' if len(times) > 5 else ''}")
    lam_np, rho_np = lam.numpy(), rho.numpy()
    stiff = times[-1] * fastest_rate(objective, lam, rho, depth=depth, eps=eps) > STIFF_HORIZON
    def jacobian(t, u):
        return np.diag(_velocity_slope(objective, u, lam_np, rho_np, depth))

    solver = dict(method="LSODA", jac=jacobian) if stiff else dict(method="DOP853")
    solution = solve_ivp(lambda t, u: _velocity(objective, u, lam_np, rho_np, depth), (0.0, times[-1]),
                         np.full(len(lam_np), eps ** (1 / depth)), t_eval=times, rtol=1e-10, atol=1e-14,
                         **solver)
    if not solution.success:
        raise RuntimeError(f"ODE integration failed: {solution.message}")
    return torch.from_numpy(solution.y.T.copy()) ** depth


def half_time(times, values, final=None, *, fraction: float = 0.5) -> torch.Tensor:
    """First time each trajectory reaches half of its final value, by linear interpolation.

    ``times`` [T], ``values`` [T, n]; ``final`` [n] defaults to ``values[-1]``; ``fraction`` in (0, 1)
    replaces one half. Returns [n] (:data:`~theorylab.utils.numerics.NEVER`, ``inf``, where a trajectory
    never gets there).
    """
    fraction = _fraction(fraction)
    times = check_tensor("times", times, ndim=1, dtype=torch.float64)
    values = check_tensor("values", values, dtype=torch.float64, finite=False)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != len(times):
        raise ValueError(f"values must have shape [len(times), n], got {list(values.shape)} for "
                         f"{len(times)} times")
    if final is None:
        final = values[-1]
    else:
        final = check_tensor("final", final, dtype=torch.float64).reshape(-1)
        if len(final) != values.shape[1]:
            raise ValueError(f"final must hold one value per trajectory ({values.shape[1]}), "
                             f"got {len(final)}")
    target = (fraction * final).tolist()
    t, v = times.detach().cpu().numpy(), values.detach().cpu().numpy()
    return torch.tensor([first_crossing(t, v[:, i], target[i], rising=True) for i in range(v.shape[1])],
                        dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# Training with matrices
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """A recorded training run: ``times`` [T] (learning rate × step) and ``encoder`` [T, n_features],
    the diagonal of ``W̄`` in the aligned basis; ``final_encoder`` and ``final_predictor`` are the full
    matrices ``W̄`` and ``V`` after the last step."""

    times: torch.Tensor
    encoder: torch.Tensor
    final_encoder: torch.Tensor | None = None
    final_predictor: torch.Tensor | None = None


def _loss(objective, layers, predictor, Cxx, Cxy):
    """Population (or mini-batch) loss from second moments ``Cxx = E[x xᵀ]`` and ``Cxy = E[x yᵀ]``."""
    encoder = layers[0]
    for W in layers[1:]:
        encoder = W @ encoder
    P = predictor @ encoder
    quadratic = 0.5 * torch.trace(P @ Cxx @ P.T)
    if objective == "mae":
        return quadratic - torch.trace(P @ Cxy)
    return quadratic - torch.trace(P @ Cxy @ encoder.detach().T)    # stop-gradient on the target W̄y


def _init(d, depth, eps, init_noise, seed):
    init_noise = check_real("init_noise", init_noise, low=0)
    gen = make_generator(seed)
    scale = eps ** (1 / depth)
    eye = torch.eye(d, dtype=torch.float64)
    off_diagonal = 1 - eye

    def make():
        noise = init_noise * scale * torch.randn(d, d, generator=gen, dtype=torch.float64) * off_diagonal
        return (scale * eye + noise).requires_grad_()

    return [make() for _ in range(depth)], make()


def _encoder_matrix(layers):
    with torch.no_grad():
        encoder = layers[0]
        for W in layers[1:]:
            encoder = W @ encoder
        return encoder.clone()


def _encoder_diag(layers):
    return torch.diagonal(_encoder_matrix(layers)).clone()


def _run(objective, layers, predictor, moments, *, lr, steps, record_every):
    lr = check_real("lr", lr, low=0, low_open=True)
    steps = check_int("steps", steps, low=1)
    record_every = check_int("record_every", record_every, low=1)
    params = [*layers, predictor]
    times, values = [0.0], [_encoder_diag(layers)]
    for step in range(1, steps + 1):
        Cxx, Cxy = moments(step)
        grads = torch.autograd.grad(_loss(objective, layers, predictor, Cxx, Cxy), params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
        if step % record_every == 0 or step == steps:
            times.append(lr * step)
            values.append(_encoder_diag(layers))
    return Run(torch.tensor(times, dtype=torch.float64), torch.stack(values), _encoder_matrix(layers),
               predictor.detach().clone())


def train_population(objective: str, lam, rho, *, depth: int, eps: float, lr: float, steps: int,
                     seed: int | None = None, init_noise: float = 0.0, record_every: int = 1) -> Run:
    """Gradient descent on the population loss with full ``d×d`` matrices for every layer and the
    predictor, ``E[x xᵀ] = diag(λ/ρ)``, ``E[x yᵀ] = diag(λ)``; start ``ε^{1/L} I`` plus, off the diagonal,
    ``init_noise · ε^{1/L}`` times a seeded Gaussian (the diagonal stays balanced). Time is ``lr × step``."""
    seed = resolve_seed(seed, "jepa.train_population")
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    lam, rho = _features(lam, rho)
    Cxx, Cxy = torch.diag(lam / rho), torch.diag(lam)
    layers, predictor = _init(len(lam), depth, eps, init_noise, seed)
    return _run(objective, layers, predictor, lambda step: (Cxx, Cxy), lr=lr, steps=steps,
                record_every=record_every)


def train_balanced(objective: str, lam, rho, *, depth: int, eps: float, lr: float, steps: int,
                   record_every: int = 1) -> Run:
    """Gradient descent from the balanced, aligned start, one scalar per feature: ``u ← u + lr·u̇(u)``.

    From ``W_a = V = ε^{1/L} I`` (:func:`train_population` with ``init_noise=0``) every layer and the
    predictor receive the same gradient on feature ``i``, so they stay equal to ``diag(u)`` and matrix
    gradient descent computes exactly this Euler step of the ODE in the module docstring, at a cost of
    O(d) per step instead of O(L d³). ``encoder`` records ``w̄ = u^L`` [T, n_features] (float64);
    ``final_encoder`` and ``final_predictor`` are left empty. Time is ``lr × step``.
    """
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    lam, rho = _features(lam, rho)
    lr = check_real("lr", lr, low=0, low_open=True)
    steps = check_int("steps", steps, low=1)
    record_every = check_int("record_every", record_every, low=1)
    lam_np, rho_np = lam.numpy(), rho.numpy()
    u = np.full(len(lam_np), eps ** (1 / depth))
    times, values = [0.0], [u**depth]
    for step in range(1, steps + 1):
        u = u + lr * _velocity(objective, u, lam_np, rho_np, depth)
        if step % record_every == 0 or step == steps:
            times.append(lr * step)
            values.append(u**depth)
    return Run(torch.tensor(times, dtype=torch.float64), torch.from_numpy(np.stack(values)))


def train_moments(objective: str, Cxx, Cxy, *, depth: int, eps: float, lr: float, steps: int,
                  seed: int | None = None, init_noise: float = 0.0, record_every: int = 1) -> Run:
    """Gradient descent on the loss of given second moments ``Cxx = E[x xᵀ]`` and ``Cxy = E[x yᵀ]``
    (``d×d``, e.g. a data set's full-batch moments, off-diagonal entries included), from the same start
    as :func:`train_population`. ``encoder`` records the diagonal of ``W̄`` in the given basis."""
    seed = resolve_seed(seed, "jepa.train_moments")
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    Cxx = check_tensor("Cxx", Cxx, ndim=2, dtype=torch.float64)
    Cxy = check_tensor("Cxy", Cxy, ndim=2, dtype=torch.float64)
    if Cxx.shape[0] != Cxx.shape[1] or Cxx.shape != Cxy.shape:
        raise ValueError(f"Cxx and Cxy must be square matrices of one shape, got {list(Cxx.shape)} and "
                         f"{list(Cxy.shape)}")
    layers, predictor = _init(Cxx.shape[0], depth, eps, init_noise, seed)
    return _run(objective, layers, predictor, lambda step: (Cxx, Cxy), lr=lr, steps=steps,
                record_every=record_every)


def sample_views(n_samples: int, lam, rho, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views of a latent signal (chapter 2's notation): ``x_i = z_i + ξ_i``, ``y_i = z_i + ξ'_i`` with
    ``z_i ~ N(0, S_i)``, ``S_i = λ_i``, and independent noises of variance ``ν_i = λ_i (1/ρ_i − 1)``, so
    ``E[x_i y_i] = λ_i`` and ``λ_i / E[x_i²] = ρ_i`` (``0 < ρ ≤ 1``). Returns ``x, y`` [n_samples, d]."""
    seed = resolve_seed(seed, "jepa.sample_views")
    lam, rho = _features(lam, rho)
    if not bool((rho <= 1).all()):
        raise ValueError(f"rho must lie in (0, 1] for two noisy views of one signal, got {rho.tolist()}")
    n_samples = check_int("n_samples", n_samples, low=1)
    gen = make_generator(seed)
    noise_sd = (lam * (1 / rho - 1)).sqrt()
    signal = torch.randn(n_samples, len(lam), generator=gen, dtype=torch.float64) * lam.sqrt()
    x = signal + noise_sd * torch.randn(n_samples, len(lam), generator=gen, dtype=torch.float64)
    y = signal + noise_sd * torch.randn(n_samples, len(lam), generator=gen, dtype=torch.float64)
    return x, y


def train_samples(objective: str, x: torch.Tensor, y: torch.Tensor, *, depth: int, eps: float, lr: float,
                  steps: int, batch: int, seed: int | None = None, record_every: int = 1) -> Run:
    """Mini-batch SGD on the empirical loss of the samples ``x, y`` [n, d] (batches drawn with
    replacement), same start and recording as :func:`train_population`."""
    seed = resolve_seed(seed, "jepa.train_samples")
    objective, depth, eps = _objective(objective), _depth(depth), _eps(eps)
    x = check_tensor("x", x, ndim=2, dtype=torch.float64)       # float32 data: the model is float64
    y = check_tensor("y", y, ndim=2, dtype=torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y must be [n, d] of one shape, got {list(x.shape)} and {list(y.shape)}")
    batch = check_int("batch", batch, low=1, high=len(x))
    gen = make_generator(seed + 1)
    layers, predictor = _init(x.shape[1], depth, eps, 0.0, seed)

    def moments(_step):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        xb, yb = x[idx], y[idx]
        return xb.T @ xb / batch, xb.T @ yb / batch

    return _run(objective, layers, predictor, moments, lr=lr, steps=steps, record_every=record_every)
