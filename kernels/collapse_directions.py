"""Gradient descent on many independent class directions of a deep linear UFM, each kept in registers.

From an aligned, balanced start (every layer ``W_i`` has value ``s`` along class ``k``'s direction, every
feature of class ``k`` is ``t`` times that direction), full-batch gradient descent on the MSE deep linear
unconstrained-features model (``theorylab.collapse``) stays aligned and balanced, and class ``k``'s share of
the objective is ::

    g(s, t) = n/(2N) (s^M t − 1)² + M (λ_W/2) s² + n (λ_H/2) t²

with the full model's per-parameter gradients ::

    ∂f/∂W_i (along k) = (n/N)(s^M t − 1) t s^{M−1} + λ_W s,
    ∂f/∂h_j (j in class k) = (1/N)(s^M t − 1) s^M + λ_H t.

The kernel runs ``n_steps`` steps of heavy-ball momentum (``v ← μ v + ∇``, ``θ ← θ − η v``, torch's SGD)
for a block of directions per program without leaving registers, and returns ``a = s^{2M}`` (the squared
singular value of the product along the direction) and ``g`` at the end. The torch reference runs the same
scheme, one vectorised launch per operation per step.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_int, check_real, use_triton

BLOCK = 128


@triton.jit
def _power(x, M: tl.constexpr):
    out = x * 0.0 + 1.0
    for _ in tl.static_range(M):
        out = out * x
    return out


@triton.jit
def _collapse_directions_kernel(SIZE, TOTAL, LAMW, LAMH, S0, T0, A_OUT, G_OUT, P, lr, momentum, n_steps,
                                M: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < P
    n = tl.load(SIZE + offs, mask=mask, other=1.0)
    total = tl.load(TOTAL + offs, mask=mask, other=1.0)
    lam_w = tl.load(LAMW + offs, mask=mask, other=0.0)
    lam_h = tl.load(LAMH + offs, mask=mask, other=0.0)
    s = tl.load(S0 + offs, mask=mask, other=0.0)
    t = tl.load(T0 + offs, mask=mask, other=0.0)
    v_s = s * 0.0
    v_t = t * 0.0
    for _ in range(n_steps):
        s_low = _power(s, M - 1)                  # s^{M−1}
        prod = s_low * s                          # s^M
        r = prod * t - 1.0
        g_s = n / total * r * t * s_low + lam_w * s
        g_t = r * prod / total + lam_h * t
        v_s = momentum * v_s + g_s
        v_t = momentum * v_t + g_t
        s = s - lr * v_s
        t = t - lr * v_t
    prod = _power(s, M)
    r = prod * t - 1.0
    g = n / (2.0 * total) * r * r + M * lam_w / 2.0 * s * s + n * lam_h / 2.0 * t * t
    tl.store(A_OUT + offs, prod * prod, mask=mask)
    tl.store(G_OUT + offs, g, mask=mask)


def _validate(size, total, lambda_w, lambda_h, s0, t0, depth, lr, momentum, n_steps):
    """Check the arguments of :func:`collapse_directions`; return ``depth, lr, momentum, n_steps`` as Python
    numbers (numpy scalars are accepted)."""
    depth = check_int("depth", depth)
    if depth > 8:
        raise ValueError(f"depth must be an integer in [1, 8], got {depth!r}")
    n_steps = check_int("n_steps", n_steps, low=0)
    lr = check_real("lr", lr, low=0.0, high=math.inf)
    momentum = check_real("momentum", momentum, low=-math.inf, high=math.inf)
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    tensors = (("size", size), ("total", total), ("lambda_w", lambda_w), ("lambda_h", lambda_h), ("s0", s0),
               ("t0", t0))
    for name, t in tensors:
        if not isinstance(t, torch.Tensor) or t.ndim != 1 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 1-D floating tensor, got {getattr(t, 'shape', t)!r}")
        if t.shape != size.shape:
            raise ValueError(f"{name} must have the shape of size {list(size.shape)}, got {list(t.shape)}")
        if t.device != size.device:
            raise ValueError(f"{name} must be on {size.device}, got {t.device}")
    for name, t in tensors[:4]:
        if not bool((t > 0).all()):
            raise ValueError(f"{name} must be positive")
    check_finite(**dict(tensors))
    if not bool((size <= total).all()):
        raise ValueError("size must not exceed total (a class cannot be larger than the data set)")
    return depth, lr, momentum, n_steps


def collapse_directions(size: torch.Tensor, total: torch.Tensor, lambda_w: torch.Tensor,
                        lambda_h: torch.Tensor,
                        s0: torch.Tensor, t0: torch.Tensor, *, depth: int, lr: float, momentum: float = 0.9,
                        n_steps: int = 2000, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Run momentum gradient descent on P independent class directions and return ``(a, g)``.

    Parameters
    ----------
    size, total : Tensor [P]
        Class size ``n`` and data-set size ``N`` of each direction (``n ≤ N``).
    lambda_w, lambda_h : Tensor [P]
        Weight decay of every layer and of the features (positive).
    s0, t0 : Tensor [P]
        Start: each layer's value ``s`` along the direction and the features' coefficient ``t``.
    depth : int
        ``M``, the number of weight matrices (1 to 8).
    lr, momentum : float
        Step size and heavy-ball momentum.
    n_steps : int
    backend : {"auto", "triton", "torch"}

    Returns
    -------
    a : Tensor [P], ``s^{2M}`` at the end (float64 from the torch reference; the inputs' dtype from Triton)
    g : Tensor [P], the direction's share of the objective at the end
    """
    depth, lr, momentum, n_steps = _validate(size, total, lambda_w, lambda_h, s0, t0, depth, lr, momentum,
                                             n_steps)
    if not use_triton(size, backend):
        return collapse_directions_reference(size, total, lambda_w, lambda_h, s0, t0, depth=depth, lr=lr,
                                             momentum=momentum, n_steps=n_steps)
    dtype = size.dtype
    args = [x.to(dtype).contiguous() for x in (size, total, lambda_w, lambda_h, s0, t0)]
    P = size.numel()
    a = torch.empty(P, device=size.device, dtype=dtype)
    g = torch.empty(P, device=size.device, dtype=dtype)
    _collapse_directions_kernel[(triton.cdiv(P, BLOCK),)](*args, a, g, P, float(lr), float(momentum), n_steps,
                                                          M=depth, BLOCK=BLOCK)
    return a, g


def compile_cases():
    """Depths 1 to 4 in float32 and float64 for ``compile_check``."""
    from .compile_check import CompileCase

    cases = []
    for dtype in ("fp32", "fp64"):
        signature = {name: f"*{dtype}" for name in ("SIZE", "TOTAL", "LAMW", "LAMH", "S0", "T0", "A_OUT",
                                                     "G_OUT")}
        signature.update(P="i32", lr="fp32", momentum="fp32", n_steps="i32", M="constexpr", BLOCK="constexpr")
        cases += [CompileCase(_collapse_directions_kernel, signature, {"M": m, "BLOCK": BLOCK},
                              f"{dtype} M={m} BLOCK={BLOCK}") for m in (1, 2, 3, 4)]
    return cases


def collapse_directions_reference(size, total, lambda_w, lambda_h, s0, t0, *, depth, lr, momentum=0.9,
                                  n_steps=2000):
    """Plain torch (float64): the same momentum steps, vectorised over directions."""
    n, N, lw, lh = (x.double() for x in (size, total, lambda_w, lambda_h))
    s, t = s0.double().clone(), t0.double().clone()
    v_s, v_t = torch.zeros_like(s), torch.zeros_like(t)
    for _ in range(n_steps):
        s_low = s ** (depth - 1)
        prod = s_low * s
        r = prod * t - 1
        g_s = n / N * r * t * s_low + lw * s
        g_t = r * prod / N + lh * t
        v_s = momentum * v_s + g_s
        v_t = momentum * v_t + g_t
        s = s - lr * v_s
        t = t - lr * v_t
    prod = s**depth
    g = n / (2 * N) * (prod * t - 1) ** 2 + depth * lw / 2 * s**2 + n * lh / 2 * t**2
    return prod**2, g
