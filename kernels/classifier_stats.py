"""Per-classifier statistics of many linear classifiers in one pass over the data.

For ``m`` linear classifiers ``s_k(x) = w_k·x + b_k`` (rows of ``W`` [m, d], ``b`` [m]) and data ``X``
[n, d] with integer class ids ``labels`` [n], classifier ``k`` separates class ``positive[k]`` (label
``y = +1``) from class ``negative[k]`` (``y = −1``); points of any other class are ignored by it. The
kernel computes the scores ``S = X Wᵀ + b`` tile by tile (a GEMM) and reduces them, in the same
program, to eight sums per classifier (a fused reduction epilogue). One launch covers all classifiers
and the ``n × m`` score matrix is never written to memory: the only output is one row of partial sums
per tile of rows, which the launcher adds up in float64. As in any GEMM, a tile of ``X`` is loaded
once per tile of classifiers (64 of them on a GPU), mostly from cache.

Columns of the result, per classifier (``STATS``):

====  ================  ==========================================================
0     ``count_neg``     number of points with ``y = −1``
1     ``count_pos``     number of points with ``y = +1``
2     ``score_neg``     ``Σ_{y=−1} s(x)``
3     ``score_pos``     ``Σ_{y=+1} s(x)``
4     ``errors_neg``    number of points with ``y = −1`` and ``y·s(x) ≤ 0``
5     ``errors_pos``    number of points with ``y = +1`` and ``y·s(x) ≤ 0``
6     ``error_depth``   ``Σ_{y·s ≤ 0} (−y·s(x))`` over the misclassified points
7     ``min_margin``    ``min y·s(x)`` over the classifier's points (``+inf`` if none)
====  ================  ==========================================================

A point exactly on the boundary (``s = 0``) counts as an error. Scores are in the classifier's own
units; divide by ``‖w_k‖`` for distances (``theorylab.tilting.classifier_statistics`` does).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_same_dtype, use_triton

STATS = ("count_neg", "count_pos", "score_neg", "score_pos", "errors_neg", "errors_pos", "error_depth",
         "min_margin")
_BIG = tl.constexpr(3.0e38)   # stands for +inf inside the kernel (a float32 number)


@triton.jit
def _classifier_stats_kernel(X, LABELS, W, B, POS, NEG, OUT, N, M, D,
                             BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    # Program (pid_n, pid_m): rows pid_n*BLOCK_N.., classifiers pid_m*BLOCK_M..; writes OUT[pid_n, :, cols].
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rows = offs_n.to(tl.int64)                          # 64-bit offsets: n·d may exceed 2³¹
    row_ok = offs_n < N
    col_ok = offs_m < M

    # GEMM: S[i, k] = Σ_j X[i, j] W[k, j]   (X [N, D], W [M, D], both row-major)
    acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        x = tl.load(X + rows[:, None] * D + offs_d[None, :],
                    mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0).to(tl.float32)
        w = tl.load(W + offs_m[None, :].to(tl.int64) * D + offs_d[:, None],
                    mask=col_ok[None, :] & (offs_d[:, None] < D), other=0.0).to(tl.float32)
        acc += tl.dot(x, w, input_precision="ieee")
    bias = tl.load(B + offs_m, mask=col_ok, other=0.0).to(tl.float32)
    s = acc + bias[None, :]

    # Epilogue: each point's label for each classifier, then reductions over the rows of the tile.
    label = tl.load(LABELS + offs_n, mask=row_ok, other=0)
    pos = tl.load(POS + offs_m, mask=col_ok, other=0)
    neg = tl.load(NEG + offs_m, mask=col_ok, other=0)
    is_pos = row_ok[:, None] & (label[:, None] == pos[None, :])
    is_neg = row_ok[:, None] & (label[:, None] == neg[None, :])
    ys = tl.where(is_pos, s, -s)                       # y·s, meaningful where is_pos | is_neg
    wrong = (is_pos | is_neg) & (ys <= 0.0)

    out = OUT + pid_n.to(tl.int64) * 8 * M + offs_m
    tl.store(out + 0 * M, tl.sum(tl.where(is_neg, 1.0, 0.0), axis=0), mask=col_ok)
    tl.store(out + 1 * M, tl.sum(tl.where(is_pos, 1.0, 0.0), axis=0), mask=col_ok)
    tl.store(out + 2 * M, tl.sum(tl.where(is_neg, s, 0.0), axis=0), mask=col_ok)
    tl.store(out + 3 * M, tl.sum(tl.where(is_pos, s, 0.0), axis=0), mask=col_ok)
    tl.store(out + 4 * M, tl.sum(tl.where(wrong & is_neg, 1.0, 0.0), axis=0), mask=col_ok)
    tl.store(out + 5 * M, tl.sum(tl.where(wrong & is_pos, 1.0, 0.0), axis=0), mask=col_ok)
    tl.store(out + 6 * M, tl.sum(tl.where(wrong, -ys, 0.0), axis=0), mask=col_ok)
    tl.store(out + 7 * M, tl.min(tl.where(is_pos | is_neg, ys, _BIG), axis=0), mask=col_ok)


def _as_class_ids(name: str, value, m: int, device) -> torch.Tensor:
    t = torch.as_tensor(value, device=device)
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold integer class ids, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.expand(m)
    if tuple(t.shape) != (m,):
        raise ValueError(f"{name} must be an integer or have shape [{m}], got shape {list(t.shape)}")
    return t.to(torch.int32).contiguous()


def _validate(X, labels, W, b, positive, negative):
    for name, t in (("X", X), ("W", W), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    check_same_dtype(X=X, W=W, b=b)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer torch.Tensor, got {getattr(labels, 'dtype', labels)!r}")
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape [n, d] with n, d ≥ 1, got {list(X.shape)}")
    n, d = X.shape
    if W.ndim != 2 or W.shape[1] != d or W.shape[0] < 1:
        raise ValueError(f"W must have shape [m, {d}] with m ≥ 1 for X of shape {list(X.shape)}, "
                         f"got {list(W.shape)}")
    m = W.shape[0]
    if tuple(b.shape) != (m,):
        raise ValueError(f"b must have shape [{m}], got {list(b.shape)}")
    if tuple(labels.shape) != (n,):
        raise ValueError(f"labels must have shape [{n}], got {list(labels.shape)}")
    if len({X.device, labels.device, W.device, b.device}) != 1:
        raise ValueError("X, labels, W and b must be on one device")
    check_finite(X=X, W=W, b=b)
    pos = _as_class_ids("positive", positive, m, X.device)
    neg = _as_class_ids("negative", negative, m, X.device)
    same = (pos == neg).nonzero()
    if len(same):
        k = int(same[0, 0])
        raise ValueError(f"positive and negative must differ for every classifier, got {int(pos[k])} "
                         f"for both at classifier {k}")
    return pos, neg


#: Tile sizes (BLOCK_N rows, BLOCK_M classifiers, BLOCK_D features): the GPU's, and the interpreter's
#: (few, large tiles, since every program is a Python call there).
_GPU_BLOCKS = (64, 64, 32)
_INTERPRETER_BLOCKS = (64, 32, 64)


def classifier_stats(X: torch.Tensor, labels: torch.Tensor, W: torch.Tensor, b: torch.Tensor,
                     positive=1, negative=-1, *, backend: str = "auto",
                     _blocks: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Eight sums per linear classifier (see ``STATS``), from one pass over ``X``.

    Parameters
    ----------
    X : Tensor [n, d]
        The data (float32 or float64; the Triton path computes in float32, exact-float32 products).
    labels : integer Tensor [n]
        Class id of every point.
    W : Tensor [m, d]
        One classifier normal per row.
    b : Tensor [m]
        Intercepts.
    positive, negative : int or integer Tensor [m]
        Class ids given ``y = +1`` and ``y = −1`` by each classifier (default ``+1`` and ``−1``, for
        labels already in {−1, +1}).
    backend : {"auto", "triton", "torch"}
        ``auto``: the Triton kernel for CUDA tensors or under ``TRITON_INTERPRET=1``, the torch
        reference otherwise.
    _blocks : (BLOCK_N, BLOCK_M, BLOCK_D), optional
        Private, for tests: override the tile sizes (powers of two, at least 16 for ``tl.dot``). By
        default ``_GPU_BLOCKS`` on CUDA and ``_INTERPRETER_BLOCKS`` in the interpreter, so the tests
        can run the GPU's tiling in the interpreter too.

    Returns
    -------
    Tensor [m, 8], float64: columns as in ``STATS`` (counts, class score sums, errors per class, the
    summed depth ``−y·s`` of the errors, the minimum of ``y·s``).
    """
    positive, negative = _validate(X, labels, W, b, positive, negative)
    if not use_triton(X, backend):
        return classifier_stats_reference(X, labels, W, b, positive, negative)
    n, d = X.shape
    m = W.shape[0]
    if _blocks is None:
        _blocks = _GPU_BLOCKS if X.is_cuda else _INTERPRETER_BLOCKS
    if len(_blocks) != 3 or any(not isinstance(k, int) or k < 16 or k & (k - 1) for k in _blocks):
        raise ValueError(f"_blocks must be three powers of two ≥ 16, got {_blocks!r}")
    block_n, block_m, block_d = _blocks
    grid = (triton.cdiv(n, block_n), triton.cdiv(m, block_m))
    partial = torch.empty(grid[0], 8, m, device=X.device, dtype=torch.float32)
    _classifier_stats_kernel[grid](
        X.float().contiguous(), labels.to(torch.int32).contiguous(), W.float().contiguous(),
        b.float().contiguous(),
        positive, negative, partial, n, m, d,
        BLOCK_N=block_n, BLOCK_M=block_m, BLOCK_D=block_d,
    )
    partial = partial.to(torch.float64)
    sums = partial[:, :7].sum(dim=0)                              # [7, m]
    margin = partial[:, 7].min(dim=0).values                      # [m]
    margin = torch.where(margin >= _BIG.value, torch.full_like(margin, float("inf")), margin)
    return torch.cat([sums, margin[None]], dim=0).T.contiguous()


def compile_cases():
    """The GPU's tiles for ``compile_check``: the launcher passes float32 data and int32 class ids."""
    from .compile_check import CompileCase

    signature = {"X": "*fp32", "LABELS": "*i32", "W": "*fp32", "B": "*fp32", "POS": "*i32", "NEG": "*i32",
                 "OUT": "*fp32", "N": "i32", "M": "i32", "D": "i32",
                 "BLOCK_N": "constexpr", "BLOCK_M": "constexpr", "BLOCK_D": "constexpr"}
    block_n, block_m, block_d = _GPU_BLOCKS
    return [CompileCase(_classifier_stats_kernel, signature,
                        {"BLOCK_N": block_n, "BLOCK_M": block_m, "BLOCK_D": block_d},
                        f"BLOCK_N={block_n} BLOCK_M={block_m} BLOCK_D={block_d}")]


def classifier_stats_reference(X, labels, W, b, positive=1, negative=-1) -> torch.Tensor:
    """Plain torch: the full score matrix, a ±1/0 label matrix, then masked reductions."""
    m = W.shape[0]
    pos = torch.as_tensor(positive, device=X.device).expand(m)
    neg = torch.as_tensor(negative, device=X.device).expand(m)
    scores = X @ W.T + b                                          # [n, m]
    is_pos, is_neg = labels[:, None] == pos[None, :], labels[:, None] == neg[None, :]
    Y = is_pos.to(scores.dtype) - is_neg.to(scores.dtype)        # +1, −1, or 0 (ignored)
    margins = Y * scores                                          # y·s, 0 for points of other classes
    member = Y != 0
    wrong = member & (margins <= 0)
    inf = torch.tensor(float("inf"), dtype=scores.dtype, device=X.device)
    columns = [
        (Y < 0).sum(0), (Y > 0).sum(0),
        (scores * (Y < 0)).sum(0), (scores * (Y > 0)).sum(0),
        (wrong & (Y < 0)).sum(0), (wrong & (Y > 0)).sum(0),
        torch.where(wrong, -margins, 0).sum(0),
        torch.where(member, margins, inf).min(0).values,
    ]
    return torch.stack([c.to(torch.float64) for c in columns], dim=1)
