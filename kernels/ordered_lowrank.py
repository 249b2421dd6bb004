"""Per-sample-rank low-rank product for ordered dropout, forward and backward.

For a factorised layer ``W = U Vᵀ`` (``U`` [out, r], ``V`` [in, r]) and a rank ``b_s`` per sample,

    y_s = U ((Vᵀ x_s) ⊙ 𝟙[j < b_s]),   i.e.  y_s = U_{:, :b_s} V_{:, :b_s}ᵀ x_s .

Two Triton kernels do the work, both tiled over samples (rows) and skipping every rank tile beyond the
largest ``b_s`` in their block of rows:

* ``_masked_down_kernel``: ``H = (X W) ⊙ mask`` with ``W`` [K, r] (``V`` forward, ``U`` backward);
* ``_rank_skipping_up_kernel``: ``Y = H Pᵀ`` with ``P`` [N, r], the reduction over ranks stopping at
  the block's largest rank (``U`` forward, ``V`` backward).

The backward pass reuses them: ``∂H = (∂Y U) ⊙ mask`` and ``∂X = ∂H Vᵀ``; the weight gradients
``∂U = ∂Yᵀ H`` and ``∂V = Xᵀ ∂H`` are dense reductions over the batch and use torch's matmul.
Samples are sorted by rank before the kernels run, so that a block's largest rank is close to each
of its samples' ranks: with ranks uniform on ``1..r`` this halves the work of a dense product.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_same_dtype, use_triton

BLOCK_M, BLOCK_N, BLOCK_K = 32, 32, 32


@triton.jit
def _masked_down_kernel(X, W, RANKS, H, M, N, K,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # H[m, n] = (Σ_k X[m, k] W[k, n]) · 1[n < ranks[m]];  X [M, K], W [K, N], H [M, N], row-major.
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    ranks = tl.load(RANKS + offs_m, mask=mask_m, other=0)
    # A rank tile that no row of this block keeps is skipped: its loop runs zero times.
    k_end = tl.where(pid_n * BLOCK_N < tl.max(ranks, axis=0), K, 0)
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, k_end, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(X + offs_m[:, None] * K + offs_k[None, :],
                    mask=mask_m[:, None] & (offs_k[None, :] < K), other=0.0).to(tl.float32)
        w = tl.load(W + offs_k[:, None] * N + offs_n[None, :],
                    mask=(offs_k[:, None] < K) & (offs_n[None, :] < N), other=0.0).to(tl.float32)
        acc += tl.dot(x, w)
    acc = tl.where(offs_n[None, :] < ranks[:, None], acc, 0.0)
    tl.store(H + offs_m[:, None] * N + offs_n[None, :], acc,
             mask=mask_m[:, None] & (offs_n[None, :] < N))


@triton.jit
def _rank_skipping_up_kernel(H, P, RANKS, Y, M, N, R,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr):
    # Y[m, n] = Σ_{j < max rank in block} H[m, j] P[n, j];  H [M, R] (already masked), P [N, R].
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    ranks = tl.load(RANKS + offs_m, mask=mask_m, other=0)
    r_end = tl.max(ranks, axis=0)
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for j0 in range(0, r_end, BLOCK_R):
        offs_j = j0 + tl.arange(0, BLOCK_R)
        h = tl.load(H + offs_m[:, None] * R + offs_j[None, :],
                    mask=mask_m[:, None] & (offs_j[None, :] < R), other=0.0).to(tl.float32)
        p = tl.load(P + offs_n[None, :] * R + offs_j[:, None],
                    mask=(offs_n[None, :] < N) & (offs_j[:, None] < R), other=0.0).to(tl.float32)
        acc += tl.dot(h, p)
    tl.store(Y + offs_m[:, None] * N + offs_n[None, :], acc,
             mask=mask_m[:, None] & (offs_n[None, :] < N))


def _masked_down(X: torch.Tensor, W: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    M, K = X.shape
    N = W.shape[1]
    H = torch.empty(M, N, device=X.device, dtype=torch.float32)
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    _masked_down_kernel[grid](X.float().contiguous(), W.float().contiguous(), ranks.to(torch.int32),
                              H, M, N, K, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K)
    return H


def _rank_skipping_up(H: torch.Tensor, P: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    M, R = H.shape
    N = P.shape[0]
    Y = torch.empty(M, N, device=H.device, dtype=torch.float32)
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    _rank_skipping_up_kernel[grid](H.float().contiguous(), P.float().contiguous(), ranks.to(torch.int32),
                                   Y, M, N, R,
                                   BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_R=BLOCK_K)
    return Y


class _OrderedLowRank(torch.autograd.Function):
    """Samples are sorted by rank first, so that each block of rows shares a similar largest rank and
    the kernels skip as many rank tiles as possible; outputs are put back in the original order."""

    @staticmethod
    def forward(ctx, x, U, V, ranks):
        order = torch.argsort(ranks)
        x_sorted, ranks_sorted = x[order].contiguous(), ranks[order].contiguous()
        H = _masked_down(x_sorted, V, ranks_sorted)                 # sorted rows
        y = torch.empty(x.shape[0], U.shape[0], device=x.device, dtype=x.dtype)
        y[order] = _rank_skipping_up(H, U, ranks_sorted).to(x.dtype)
        ctx.save_for_backward(x_sorted, U, V, ranks_sorted, H, order)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x_sorted, U, V, ranks_sorted, H, order = ctx.saved_tensors
        grad_y_sorted = grad_y[order].contiguous()
        grad_h = _masked_down(grad_y_sorted, U, ranks_sorted)       # (∂Y U) ⊙ mask   [B, r]
        grad_x = torch.empty_like(x_sorted)
        grad_x[order] = _rank_skipping_up(grad_h, V, ranks_sorted).to(x_sorted.dtype)  # ∂H Vᵀ
        grad_U = (grad_y_sorted.float().T @ H).to(U.dtype)        # ∂Yᵀ H   [out, r]
        grad_V = (x_sorted.float().T @ grad_h).to(V.dtype)        # Xᵀ ∂H   [in, r]
        return grad_x, grad_U, grad_V, None


def _validate(x, U, V, ranks):
    for name, t in (("x", x), ("U", U), ("V", V)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    check_same_dtype(x=x, U=U, V=V)
    if not isinstance(ranks, torch.Tensor) or ranks.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"ranks must be an int32 or int64 tensor, got {getattr(ranks, 'dtype', ranks)!r}")
    if x.ndim != 2 or U.ndim != 2 or V.ndim != 2:
        raise ValueError(f"x, U and V must be 2-D, got shapes {list(x.shape)}, {list(U.shape)}, "
                         f"{list(V.shape)}")
    batch, in_features = x.shape
    if V.shape[0] != in_features:
        raise ValueError(f"V must have shape [{in_features}, r] for x of shape {list(x.shape)}, "
                         f"got {list(V.shape)}")
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"U and V must have the same number of columns (rank), got {list(U.shape)} "
                         f"and {list(V.shape)}")
    if U.shape[0] < 1 or in_features < 1:
        raise ValueError(f"U and x must have at least one row and one column, got U of shape "
                         f"{list(U.shape)} and x of shape {list(x.shape)}")
    if tuple(ranks.shape) != (batch,):
        raise ValueError(f"ranks must have shape [{batch}] (one per row of x, of shape {list(x.shape)}), "
                         f"got {list(ranks.shape)}")
    r = U.shape[1]
    if batch and (int(ranks.min()) < 0 or int(ranks.max()) > r):
        raise ValueError(f"ranks must lie in [0, {r}], "
                         f"got values in [{int(ranks.min())}, {int(ranks.max())}]")
    if len({x.device, U.device, V.device, ranks.device}) != 1:
        raise ValueError("x, U, V and ranks must be on one device")
    check_finite(x=x, U=U, V=V)


def ordered_lowrank(x: torch.Tensor, U: torch.Tensor, V: torch.Tensor, ranks: torch.Tensor, *,
                    backend: str = "auto") -> torch.Tensor:
    """``y_s = U_{:, :b_s} V_{:, :b_s}ᵀ x_s`` for every sample, differentiable in ``x``, ``U``, ``V``.

    Parameters
    ----------
    x : Tensor [batch, in]
    U : Tensor [out, r]
    V : Tensor [in, r]
    ranks : integer Tensor [batch]
        ``b_s`` in ``[0, r]``: how many leading components sample ``s`` keeps.
    backend : {"auto", "triton", "torch"}
        ``auto``: the Triton kernels for CUDA tensors or under ``TRITON_INTERPRET=1``, the torch
        reference otherwise. The kernels take float32 inputs; their products use TF32 tensor cores
        on recent GPUs (Triton's default) and exact float32 in the interpreter.

    Returns
    -------
    Tensor [batch, out], dtype of ``x``.
    """
    _validate(x, U, V, ranks)
    if not use_triton(x, backend):
        return ordered_lowrank_reference(x, U, V, ranks)
    return _OrderedLowRank.apply(x, U, V, ranks.contiguous())


def compile_cases():
    """The two kernels at their fixed tiles, for ``compile_check``: float32 data, int32 ranks."""
    from .compile_check import CompileCase

    down = {"X": "*fp32", "W": "*fp32", "RANKS": "*i32", "H": "*fp32", "M": "i32", "N": "i32", "K": "i32",
            "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    up = {"H": "*fp32", "P": "*fp32", "RANKS": "*i32", "Y": "*fp32", "M": "i32", "N": "i32", "R": "i32",
          "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_R": "constexpr"}
    tiles = f"BLOCK_M={BLOCK_M} BLOCK_N={BLOCK_N} BLOCK_K={BLOCK_K}"
    return [CompileCase(_masked_down_kernel, down,
                        {"BLOCK_M": BLOCK_M, "BLOCK_N": BLOCK_N, "BLOCK_K": BLOCK_K}, tiles),
            CompileCase(_rank_skipping_up_kernel, up,
                        {"BLOCK_M": BLOCK_M, "BLOCK_N": BLOCK_N, "BLOCK_R": BLOCK_K}, tiles)]


def ordered_lowrank_reference(x, U, V, ranks) -> torch.Tensor:
    """Plain torch: a 0/1 mask over ranks per sample between the two matmuls."""
    keep = torch.arange(U.shape[1], device=x.device)[None, :] < ranks[:, None]
    return ((x @ V) * keep) @ U.T
