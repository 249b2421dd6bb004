"""Streamed risk moments of a one-layer linear self-attention over a batch of regression prompts.

For prompt ``b`` with context ``z_i = (x_i, y_i)``, ``i < n``, query ``x_q`` and target ``y_q``, the layer
predicts (see ``theorylab.icl``)

    ŷ = pᵀ G K x_q,   G = (1/n) Σ_i z_i z_iᵀ,

with ``p ∈ R^{d+1}`` the read-out row and ``K ∈ R^{(d+1)×d}`` the query block. One step of
preconditioned gradient descent is the special case ``p = e_{d+1}``, ``K = [Γ; 0]``.

The kernel never forms ``G``: since ``ŷ = (1/n) Σ_i (pᵀz_i)(z_iᵀ K x_q)`` it streams each prompt's
context once, tile by tile, and accumulates over the batch the three sums that a squared loss and an
optimal scalar step need,

    moments = [Σ_b ŷ_b², Σ_b ŷ_b y_q,b, Σ_b y_q,b²]   (float64, shape [3]).

Nothing per prompt is written to memory; each program writes three partial sums.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_same_dtype, use_triton


@triton.jit
def _lsa_moments_kernel(
    X, Y, XQ, YQ, PX, PY, KX, KY, OUT,
    B, N, D,
    PROMPTS_PER_PROGRAM: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    # Parameters, loaded once per program: p = (p_x, p_y) and K = [K_x; k_y].
    p_x = tl.load(PX + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    p_y = tl.load(PY).to(tl.float32)
    k_x = tl.load(KX + offs_d[:, None] * D + offs_d[None, :],
                  mask=mask_d[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
    k_y = tl.load(KY + offs_d, mask=mask_d, other=0.0).to(tl.float32)

    acc_pp = tl.zeros([1], dtype=tl.float32)
    acc_py = tl.zeros([1], dtype=tl.float32)
    acc_yy = tl.zeros([1], dtype=tl.float32)
    for j in range(PROMPTS_PER_PROGRAM):
        b = (pid * PROMPTS_PER_PROGRAM + j).to(tl.int64)
        valid = b < B
        x_q = tl.load(XQ + b * D + offs_d, mask=mask_d & valid, other=0.0).to(tl.float32)
        y_q = tl.load(YQ + b, mask=valid, other=0.0).to(tl.float32)
        # v = K x_q, split as (v_x, v_y).
        v_x = tl.sum(k_x * x_q[None, :], axis=1)
        v_y = tl.sum(k_y * x_q, axis=0)
        pred = tl.zeros([BLOCK_N], dtype=tl.float32)
        for n0 in range(0, N, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            mask_n = (offs_n < N) & valid
            x = tl.load(X + b * N * D + offs_n[:, None] * D + offs_d[None, :],
                        mask=mask_n[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
            y = tl.load(Y + b * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
            left = tl.sum(x * p_x[None, :], axis=1) + p_y * y      # pᵀ z_i
            right = tl.sum(x * v_x[None, :], axis=1) + v_y * y     # z_iᵀ K x_q
            pred += left * right
        y_hat = tl.sum(pred, axis=0) / N
        acc_pp += y_hat * y_hat
        acc_py += y_hat * y_q
        acc_yy += y_q * y_q
    one = tl.arange(0, 1)
    tl.store(OUT + pid * 3 + 0 + one, acc_pp)
    tl.store(OUT + pid * 3 + 1 + one, acc_py)
    tl.store(OUT + pid * 3 + 2 + one, acc_yy)


def _validate(X, y, x_query, y_query, p, K):
    for name, t in (("X", X), ("y", y), ("x_query", x_query), ("y_query", y_query), ("p", p),
                    ("K", K)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must have a floating dtype, got {t.dtype}")
    check_same_dtype(X=X, y=y, x_query=x_query, y_query=y_query, p=p, K=K)
    if X.ndim != 3:
        raise ValueError(f"X must have shape [batch, n, d], got {tuple(X.shape)}")
    batch, n, d = X.shape
    if batch < 1 or n < 1 or d < 1:
        raise ValueError(f"X must be non-empty, got shape {tuple(X.shape)}")
    expected = {"y": (batch, n), "x_query": (batch, d), "y_query": (batch,), "p": (d + 1,),
                "K": (d + 1, d)}
    for name, t in (("y", y), ("x_query", x_query), ("y_query", y_query), ("p", p), ("K", K)):
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"{name} must have shape {list(expected[name])} for X of shape "
                             f"{list(X.shape)}, got {list(t.shape)}")
    devices = {t.device for t in (X, y, x_query, y_query, p, K)}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device, got {sorted(map(str, devices))}")
    check_finite(X=X, y=y, x_query=x_query, y_query=y_query, p=p, K=K)


def lsa_moments(X: torch.Tensor, y: torch.Tensor, x_query: torch.Tensor, y_query: torch.Tensor,
                p: torch.Tensor, K: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """Sums ``[Σ ŷ², Σ ŷ y_q, Σ y_q²]`` over a batch of prompts for the layer ``ŷ = pᵀ G K x_q``.

    Parameters
    ----------
    X : Tensor [batch, n, d]
        Context inputs (float32 or float64; the Triton path computes in float32).
    y : Tensor [batch, n]
        Context responses.
    x_query : Tensor [batch, d]
    y_query : Tensor [batch]
    p : Tensor [d + 1]
        Read-out row of the value/projection matrix.
    K : Tensor [d + 1, d]
        First ``d`` columns of the key-query matrix.
    backend : {"auto", "triton", "torch"}
        ``auto``: Triton for CUDA tensors or under ``TRITON_INTERPRET=1`` (for d ≤ ``MAX_TRITON_D``),
        else the torch reference.

    Returns
    -------
    Tensor [3], float64, on the inputs' device.
    """
    _validate(X, y, x_query, y_query, p, K)
    batch, n, d = X.shape
    if backend == "triton" and d > MAX_TRITON_D:
        raise ValueError(f"backend='triton' handles d ≤ {MAX_TRITON_D} (X has d = {d}); use backend='auto'")
    if d > MAX_TRITON_D or not use_triton(X, backend):
        return lsa_moments_reference(X, y, x_query, y_query, p, K)
    config = launch_config(n, d, on_gpu=X.is_cuda)
    grid = (triton.cdiv(batch, config["PROMPTS_PER_PROGRAM"]),)
    out = torch.empty(grid[0], 3, device=X.device, dtype=torch.float32)

    def f32(t):
        return t.to(torch.float32).contiguous()

    _lsa_moments_kernel[grid](
        f32(X), f32(y), f32(x_query), f32(y_query), f32(p[:d]), f32(p[d:]), f32(K[:d]), f32(K[d]), out,
        batch, n, d,
        **config,
    )
    return out.to(torch.float64).sum(dim=0)


#: The Triton path holds K's [d, d] block in registers: up to d = 64 (larger d runs the torch reference).
MAX_TRITON_D = 64


def launch_config(n: int, d: int, *, on_gpu: bool) -> dict:
    """The kernel's constexprs for context length ``n`` and dimension ``d ≤ MAX_TRITON_D``.

    A [BLOCK_N, BLOCK_D] tile of the context holds at most 4096 elements (16 fp32 registers per thread
    at 4 warps); both sides are at least 16 so that the set of configurations stays small (12 on a GPU,
    see ``compile_cases``) at the price of masked lanes for tiny n and d. A GPU program takes 16 prompts
    (fewer launches), the interpreter 4 (smaller grids run faster there).
    """
    block_d = max(16, triton.next_power_of_2(d))
    block_n = max(16, min(triton.next_power_of_2(n), 4096 // block_d))
    return {"PROMPTS_PER_PROGRAM": 16 if on_gpu else 4, "BLOCK_N": block_n, "BLOCK_D": block_d}


def compile_cases():
    """Every configuration ``launch_config`` chooses on a GPU (see ``compile_check``); the launcher
    hands the kernel float32 tensors whatever the inputs' dtype."""
    from .compile_check import CompileCase

    configs = {tuple(launch_config(2 ** i, 2 ** j, on_gpu=True).items())
               for i in range(16) for j in range(MAX_TRITON_D.bit_length())}
    signature = {name: "*fp32" for name in ("X", "Y", "XQ", "YQ", "PX", "PY", "KX", "KY", "OUT")}
    signature.update(B="i32", N="i32", D="i32",
                     PROMPTS_PER_PROGRAM="constexpr", BLOCK_N="constexpr", BLOCK_D="constexpr")
    return [CompileCase(_lsa_moments_kernel, signature, dict(config),
                        f"BLOCK_N={dict(config)['BLOCK_N']} BLOCK_D={dict(config)['BLOCK_D']}")
            for config in sorted(configs)]


def lsa_moments_reference(X, y, x_query, y_query, p, K) -> torch.Tensor:
    """Plain-torch reference: forms ``G`` for every prompt and reads the prediction off it."""
    n = X.shape[1]
    Z = torch.cat([X, y.unsqueeze(-1)], dim=-1)                  # [batch, n, d+1]
    G = Z.transpose(1, 2) @ Z / n                                # [batch, d+1, d+1]
    y_hat = torch.einsum("i,bij,jk,bk->b", p, G, K, x_query)    # [batch]
    y_hat, y_query = y_hat.to(torch.float64), y_query.to(torch.float64)
    return torch.stack([(y_hat * y_hat).sum(), (y_hat * y_query).sum(), (y_query * y_query).sum()])
