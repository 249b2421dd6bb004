"""Log-norm growth of many linearised-SGD trajectories on Gaussian least squares, one program each.

Linearised SGD with batch size ``B`` on online Gaussian least squares (chapter 7) moves the error by

    e ← e − (η/B) Σ_{b<B} x_b (x_bᵀ e),        x_b ~ N(0, diag(λ)),

and the typical (almost-sure) stability threshold is where ``lim (1/t) log‖e_t‖`` crosses 0. A grid of
learning rates × runs (× batch sizes, one launch each) is embarrassingly parallel: the kernel gives
every (learning rate, run) pair its own program, keeps ``e`` (``d ≤ BLOCK_D``) in registers for all
``steps`` steps, accumulates ``r_b = x_b·e`` and ``Σ_b r_b x_b`` without ever writing the batch to
memory, renormalises ``e`` every step and accumulates ``log‖e‖``, so a diverging run is measured, not
overflowed. The batch is either read from ``X`` [runs, steps, B, d] (every learning rate of a run sees
the same data, as in ``theorylab.batchsize.lyapunov_exponents``; this mode is what the interpreter test
compares with the torch reference) or generated in the kernel with Philox (``tl.randn``; one stream
per run, shared by the learning rates), which needs no memory at all and can only be checked
statistically.
"""

from __future__ import annotations

import numbers

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_int, use_triton


@triton.jit
def _sgd_log_norm_kernel(X, E0, LRS, SCALE, LOG_OUT, E_OUT, runs, steps, burn_in, batch, d, seed,
                         GENERATE: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)                  # one program per (learning rate, run)
    run = pid % runs
    # Philox seeds and offsets, and the offsets into X, in int64: at the paper-like size (steps = 2000,
    # B = 1024, BLOCK_D = 512) the largest Philox offset is already ≈ 1.05·10⁹, half of 2³¹ (a run 2.1× as
    # long, or d = 1024 with 2100 steps, would overflow int32: max_philox_offset), and
    # seed + run would wrap for a seed near 2³¹ (the chapter's seeds go up to 2³¹ − 2).
    stream = tl.cast(seed, tl.int64) + run
    lr = tl.load(LRS + pid // runs)
    cols = tl.arange(0, BLOCK_D)
    mask = cols < d
    scale = tl.load(SCALE + cols, mask=mask, other=0.0)      # √λ_k
    e = tl.load(E0 + run * d + cols, mask=mask, other=0.0)
    e = e / tl.sqrt(tl.sum(e * e, axis=0))                     # rates are measured from a unit start
    log_norm = tl.zeros([1], dtype=tl.float32)
    step_scale = lr / batch
    for t in range(steps):
        acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        for b in range(batch):
            if GENERATE:
                offs = (tl.cast(t, tl.int64) * batch + b) * BLOCK_D + cols
                x = tl.randn(stream, offs) * scale
            else:
                row = (tl.cast(run, tl.int64) * steps + t) * batch + b
                x = tl.load(X + row * d + cols, mask=mask, other=0.0) * scale
            x = tl.where(mask, x, 0.0)
            r = tl.sum(x * e, axis=0)
            acc += r * x
        e = e - step_scale * acc
        norm = tl.sqrt(tl.sum(e * e, axis=0))
        if t >= burn_in:
            log_norm += tl.log(norm)
        e = e / norm
    tl.store(LOG_OUT + pid + tl.arange(0, 1), log_norm / (steps - burn_in))
    tl.store(E_OUT + pid * d + cols, e, mask=mask)


def _validate(eigenvalues, lrs, e0, steps, burn_in, batch, X, seed) -> tuple[int, int, int, int]:
    """Check the arguments of :func:`sgd_log_norms`; return ``steps, batch, burn_in, seed`` as Python ints
    (numpy integers are accepted)."""
    for name, t in (("eigenvalues", eigenvalues), ("lrs", lrs)):
        if not isinstance(t, torch.Tensor) or t.ndim != 1 or not t.is_floating_point() or t.numel() == 0:
            raise ValueError(f"{name} must be a non-empty 1-D floating tensor, "
                             f"got {getattr(t, 'shape', t)!r}")
        check_finite(**{name: t})
        if not bool((t > 0).all()):
            raise ValueError(f"{name} must be positive")
    d = eigenvalues.numel()
    if not isinstance(e0, torch.Tensor) or e0.ndim != 2 or e0.shape[1] != d or not e0.is_floating_point():
        raise ValueError(f"e0 must be a floating [runs, d] tensor with d = {d}, "
                         f"got {getattr(e0, 'dtype', type(e0).__name__)} {getattr(e0, 'shape', e0)!r}")
    if e0.shape[0] == 0:
        raise ValueError(f"e0 must hold at least one run, got shape {list(e0.shape)}")
    check_finite(e0=e0)
    steps, batch = check_int("steps", steps), check_int("batch", batch)
    burn_in = check_int("burn_in", burn_in, low=0)
    if burn_in >= steps:
        raise ValueError(f"burn_in must be smaller than steps ({steps}), got {burn_in}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2**31), got {seed!r}")
    wanted = (e0.shape[0], steps, batch, d)
    if X is not None and (not isinstance(X, torch.Tensor) or tuple(X.shape) != wanted):
        raise ValueError(f"X must have shape [runs, steps, batch, d] = {[e0.shape[0], steps, batch, d]}, "
                         f"got {list(getattr(X, 'shape', []))}")
    return steps, batch, burn_in, int(seed)


def sgd_log_norms(eigenvalues: torch.Tensor, lrs: torch.Tensor, e0: torch.Tensor, *, steps: int, batch: int,
                  burn_in: int = 0, X: torch.Tensor | None = None, seed: int = 0,
                  backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step growth of ``log‖e_t‖`` for linearised SGD, every learning rate × run.

    Parameters
    ----------
    eigenvalues : Tensor [d]
        Eigenvalues λ of the input covariance (positive); ``d ≤ 1024``.
    lrs : Tensor [L]
        Learning rates η.
    e0 : Tensor [runs, d]
        Starting errors (one per run, shared by the learning rates; normalised to unit length).
    steps, batch, burn_in : int
        Number of steps, batch size B, steps left out of the average.
    X : Tensor [runs, steps, batch, d], optional
        The *standardised* inputs (``x = √λ ⊙ X``); when ``None`` the kernel draws them with Philox from
        ``seed`` (Triton only; the torch reference then draws them with ``torch.randn``, so the two agree
        in distribution, not in value).
    seed : int
    backend : {"auto", "triton", "torch"}

    Returns
    -------
    rates : Tensor [L, runs], float32
        ``(log‖e_T‖ − log‖e_{burn}‖)/(T − burn)``.
    final : Tensor [L, runs, d], float32
        The unit direction of ``e_T``.
    """
    steps, batch, burn_in, seed = _validate(eigenvalues, lrs, e0, steps, burn_in, batch, X, seed)
    if not use_triton(e0, backend):
        return sgd_log_norms_reference(eigenvalues, lrs, e0, steps=steps, batch=batch, burn_in=burn_in, X=X,
                                       seed=seed)
    runs, d = e0.shape
    n_lr = lrs.numel()
    block_d = max(16, triton.next_power_of_2(d))
    if block_d > 1024:
        raise ValueError(f"d must be at most 1024 for the kernel, got {d}")
    device = e0.device
    log_out = torch.empty(n_lr * runs, device=device, dtype=torch.float32)
    e_out = torch.empty(n_lr * runs, d, device=device, dtype=torch.float32)
    x_arg = X.float().contiguous() if X is not None else e0.new_empty(1, dtype=torch.float32)
    _sgd_log_norm_kernel[(n_lr * runs,)](
        x_arg, e0.float().contiguous(), lrs.float().contiguous().to(device),
        eigenvalues.float().sqrt().contiguous().to(device), log_out, e_out,
        runs, steps, burn_in, batch, d, int(seed),
        GENERATE=X is None, BLOCK_D=block_d)
    return log_out.reshape(n_lr, runs), e_out.reshape(n_lr, runs, d)


def compile_cases():
    """The kernel with the batch read from memory and generated in the kernel, for d ≤ 128
    (``BLOCK_D = 128``, the chapter's and the paper-like sizes up to d = 128) and d ≤ 512."""
    from .compile_check import CompileCase

    signature = {name: "*fp32" for name in ("X", "E0", "LRS", "SCALE", "LOG_OUT", "E_OUT")}
    signature.update(runs="i32", steps="i32", burn_in="i32", batch="i32", d="i32", seed="i32",
                     GENERATE="constexpr", BLOCK_D="constexpr")
    return [CompileCase(_sgd_log_norm_kernel, signature, {"GENERATE": gen, "BLOCK_D": block},
                        f"{'Philox' if gen else 'X in memory'} BLOCK_D={block}")
            for gen in (False, True) for block in (128, 512)]


def max_philox_offset(*, steps: int, batch: int, d: int) -> int:
    """The largest Philox offset the kernel uses with batches drawn in the kernel:
    ``((steps − 1)·batch + batch − 1)·BLOCK_D + BLOCK_D − 1``, ``BLOCK_D = max(16, next power of 2 ≥ d)``.
    It is 2000·1024·512 − 1 ≈ 1.05·10⁹ at the chapter's full scale (2000 steps, B = 1024, d = 400),
    so the kernel computes offsets in int64 (Triton's Philox takes 64-bit offsets as two 32-bit
    counter words)."""
    block_d = max(16, triton.next_power_of_2(d))
    return (steps * batch - 1) * block_d + block_d - 1


def sgd_log_norms_reference(eigenvalues, lrs, e0, *, steps, batch, burn_in=0, X=None, seed=0):
    """Plain torch, float32, vectorised over learning rates and runs, one step at a time."""
    runs, d = e0.shape
    scale = eigenvalues.float().sqrt().to(e0.device)
    gen = None
    if X is None:
        gen = torch.Generator(device=e0.device)
        gen.manual_seed(int(seed))
    e0 = e0.float() / e0.float().norm(dim=1, keepdim=True)       # rates are measured from a unit start
    e = e0.unsqueeze(0).expand(lrs.numel(), runs, d).clone()
    step = (lrs.float().to(e0.device) / batch)[:, None, None]
    log_norm = torch.zeros(lrs.numel(), runs, device=e0.device)
    for t in range(steps):
        if X is None:
            x = torch.randn(runs, batch, d, generator=gen, device=e0.device) * scale
        else:
            x = X[:, t].float() * scale
        r = torch.einsum("lrd,rbd->lrb", e, x)
        e = e - step * torch.einsum("lrb,rbd->lrd", r, x)
        norm = e.norm(dim=2)
        if t >= burn_in:
            log_norm += norm.log()
        e = e / norm[..., None]
    return log_norm / (steps - burn_in), e
