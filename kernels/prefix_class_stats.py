"""Per-class counts, means and variances of every prefix of a sample order, in one pass.

Given a pool of labelled samples ``X`` [M, n], ``y`` [M] and ``S`` orders of that pool (``order`` [S, L],
row indices: a permutation, or its first ``L`` entries), the statistics that Gaussian naive Bayes
needs are computed for the first ``m_g`` samples of every order, at every prefix length of a grid
``ends = (m_1 < m_2 < … < m_G)``:

    counts[s, g, k]       = #{i < m_g : y[order[s, i]] = k}
    means[s, g, k, :]     = mean of X[order[s, i]] over those i
    variances[s, g, k, :] = their variance (ddof 0; 0 for a class not yet seen)

One learning curve (NB's parameters at every training-set size ``m_g``) is one pass over the order:
the prefixes are nested, so the statistics of prefix ``g`` are those of prefix ``g − 1`` plus the
segment ``[m_{g−1}, m_g)``. That is a segmented reduction, and ``_prefix_class_stats_kernel`` does it
with one program per (order, block of features): it walks the order once, tile by tile, reduces each
tile per class (count, mean, sum of squared deviations) and merges the tile into the running
statistics with Chan et al.'s pairwise update (a segmented Welford), which stays accurate in float32
where raw sums of squares would cancel. At every grid point it writes the running statistics out.
Nothing of size ``L × n`` is ever stored.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_int, use_triton

BLOCK_M, BLOCK_N = 16, 32
#: The Triton path keeps every class's running mean in registers: up to this many classes.
MAX_TRITON_CLASSES = 128
#: Warps per program: with 4, ptxas spills registers at two classes on sm_90a (see ``compile_check``).
NUM_WARPS = 8


def _block_n(block_k: int) -> int:
    """Features per program: 32, fewer for many classes, so that the [BLOCK_M, BLOCK_K, BLOCK_N]
    temporaries of a tile keep at most 16 · 16 · 32 entries whatever the number of classes."""
    return max(4, min(BLOCK_N, (16 * BLOCK_N) // block_k))


@triton.jit
def _prefix_class_stats_kernel(X, Y, ORDER, ENDS, COUNTS, MEANS, VARS,
                               N, L, G, K,
                               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # X [M, N] row-major; Y [M] int64; ORDER [S, L] int64; ENDS [G] int64 increasing;
    # outputs COUNTS [S, G, K], MEANS and VARS [S, G, K, N], all float32.
    s = tl.program_id(0).to(tl.int64)
    pid_n = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    offs_k = tl.arange(0, BLOCK_K)
    mask_k = offs_k < K
    count = tl.zeros([BLOCK_K], dtype=tl.float32)
    mean = tl.zeros([BLOCK_K, BLOCK_N], dtype=tl.float32)
    m2 = tl.zeros([BLOCK_K, BLOCK_N], dtype=tl.float32)
    for g in range(G):
        start = tl.load(ENDS + g - 1, mask=g > 0, other=0)
        end = tl.load(ENDS + g)
        for m0 in range(start, end, BLOCK_M):
            offs_m = m0 + tl.arange(0, BLOCK_M)
            mask_m = offs_m < end
            rows = tl.load(ORDER + s * L + offs_m, mask=mask_m, other=0)
            labels = tl.load(Y + rows, mask=mask_m, other=-1)
            x = tl.load(X + rows[:, None] * N + offs_n[None, :],
                        mask=mask_m[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
            onehot = (labels[:, None] == offs_k[None, :]).to(tl.float32)          # [BM, BK]
            # This tile, per class: count, mean and sum of squared deviations from that mean.
            tile_count = tl.sum(onehot, axis=0)                                   # [BK]
            tile_sum = tl.sum(onehot[:, :, None] * x[:, None, :], axis=0)         # [BK, BN]
            tile_mean = tile_sum / tl.maximum(tile_count, 1.0)[:, None]
            dev = (x[:, None, :] - tile_mean[None, :, :]) * onehot[:, :, None]
            tile_m2 = tl.sum(dev * dev, axis=0)
            # Merge the tile into the running statistics (Chan, Golub and LeVeque's pairwise update).
            total = count + tile_count
            safe_total = tl.maximum(total, 1.0)
            delta = tile_mean - mean
            mean = mean + delta * (tile_count / safe_total)[:, None]
            m2 = m2 + tile_m2 + delta * delta * (count * tile_count / safe_total)[:, None]
            count = total
        out = s * G + g
        tl.store(COUNTS + out * K + offs_k, count, mask=mask_k & (pid_n == 0))
        cell = (out * K + offs_k[:, None]) * N + offs_n[None, :]
        both = mask_k[:, None] & mask_n[None, :]
        tl.store(MEANS + cell, mean, mask=both)
        tl.store(VARS + cell, m2 / tl.maximum(count, 1.0)[:, None], mask=both)


def _validate(X, y, order, ends, n_classes):
    if not isinstance(X, torch.Tensor) or not X.is_floating_point():
        raise TypeError(f"X must be a floating-point torch.Tensor, got "
                        f"{getattr(X, 'dtype', type(X).__name__)}")
    for name, t in (("y", y), ("order", order), ("ends", ends)):
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"{name} must be an int32 or int64 torch.Tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape [M, n] with M, n ≥ 1, got {list(X.shape)}")
    M = X.shape[0]
    if tuple(y.shape) != (M,):
        raise ValueError(f"y must have shape [{M}] for X of shape {list(X.shape)}, got {list(y.shape)}")
    n_classes = check_int("n_classes", n_classes)
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"y must hold labels in [0, {n_classes - 1}], got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    if order.ndim != 2 or order.shape[0] < 1 or order.shape[1] < 1:
        raise ValueError(f"order must have shape [S, L] with S, L ≥ 1, got {list(order.shape)}")
    if int(order.min()) < 0 or int(order.max()) >= M:
        raise ValueError(f"order must hold row indices in [0, {M - 1}], got values in "
                         f"[{int(order.min())}, {int(order.max())}]")
    if ends.ndim != 1 or ends.numel() < 1:
        raise ValueError(f"ends must be a non-empty 1-D tensor, got shape {list(ends.shape)}")
    if int(ends[0]) < 1 or int(ends[-1]) > order.shape[1] or bool((ends[1:] <= ends[:-1]).any()):
        raise ValueError(f"ends must increase strictly within [1, {order.shape[1]}] (the length of order), "
                         f"got {ends.tolist()}")
    devices = {t.device for t in (X, y, order, ends)}
    if len(devices) != 1:
        raise ValueError(f"X, y, order and ends must be on one device, got {sorted(map(str, devices))}")
    check_finite(X=X)
    return n_classes


def prefix_class_stats(X: torch.Tensor, y: torch.Tensor, order: torch.Tensor, ends: torch.Tensor,
                       n_classes: int, *, backend: str = "auto"):
    """Per-class counts, means and variances of the first ``ends[g]`` samples of every order.

    Parameters
    ----------
    X : Tensor [M, n]
        The pool of samples (float32 or float64; the Triton kernel computes in float32).
    y : integer Tensor [M]
        Labels in ``0 .. n_classes − 1``.
    order : integer Tensor [S, L]
        ``S`` sample orders: row indices into the pool (typically the first ``L`` entries of random
        permutations).
    ends : integer Tensor [G]
        Prefix lengths, strictly increasing, in ``[1, L]``.
    n_classes : int
    backend : {"auto", "triton", "torch"}
        ``auto``: the Triton kernel for CUDA tensors or under ``TRITON_INTERPRET=1``, the torch
        reference otherwise.

    Returns
    -------
    counts : int64 Tensor [S, G, K]
    means : Tensor [S, G, K, n]
        Class means of each prefix (0 for a class without samples yet).
    variances : Tensor [S, G, K, n]
        Class variances with ddof 0 (0 for a class with fewer than two samples).
        float32 from the kernel, the dtype of ``X`` from the reference.

    The kernel narrows its block of features as ``n_classes`` grows (``_block_n``); beyond
    ``MAX_TRITON_CLASSES`` classes ``backend='auto'`` runs the torch reference.
    """
    n_classes = _validate(X, y, order, ends, n_classes)
    if backend == "triton" and n_classes > MAX_TRITON_CLASSES:
        raise ValueError(f"backend='triton' handles n_classes ≤ {MAX_TRITON_CLASSES}, got {n_classes}; "
                         "use backend='auto'")
    if n_classes > MAX_TRITON_CLASSES or not use_triton(X, backend):
        return prefix_class_stats_reference(X, y, order, ends, n_classes)
    S, L = order.shape
    G, n = ends.numel(), X.shape[1]
    counts = torch.empty(S, G, n_classes, device=X.device, dtype=torch.float32)
    means = torch.empty(S, G, n_classes, n, device=X.device, dtype=torch.float32)
    variances = torch.empty_like(means)
    block_k = triton.next_power_of_2(n_classes)
    block_n = _block_n(block_k)
    grid = (S, triton.cdiv(n, block_n))
    _prefix_class_stats_kernel[grid](
        X.float().contiguous(), y.to(torch.int64).contiguous(), order.to(torch.int64).contiguous(),
        ends.to(torch.int64).contiguous(), counts, means, variances, n, L, G, n_classes,
        BLOCK_M=BLOCK_M, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=NUM_WARPS)
    return counts.round().to(torch.int64), means, variances


def compile_cases():
    """Every (BLOCK_K, BLOCK_N) the launcher chooses, for ``compile_check``: float32 data, int64 indices."""
    from .compile_check import CompileCase

    signature = {"X": "*fp32", "Y": "*i64", "ORDER": "*i64", "ENDS": "*i64", "COUNTS": "*fp32",
                 "MEANS": "*fp32", "VARS": "*fp32", "N": "i32", "L": "i32", "G": "i32", "K": "i32",
                 "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    cases = []
    for block_k in (2 ** i for i in range(MAX_TRITON_CLASSES.bit_length())):
        constexprs = {"BLOCK_M": BLOCK_M, "BLOCK_N": _block_n(block_k), "BLOCK_K": block_k}
        cases.append(CompileCase(_prefix_class_stats_kernel, signature, constexprs,
                                 f"BLOCK_K={block_k} BLOCK_N={constexprs['BLOCK_N']}", num_warps=NUM_WARPS))
    return cases


def prefix_class_stats_reference(X, y, order, ends, n_classes):
    """Plain torch: running per-class raw moments ``Σ 1``, ``Σ x'`` and ``Σ x'²`` (float64) of the shifted
    data ``x' = x − x_first``, where ``x_first`` is the first sample of each order (a per-order,
    per-feature constant), updated segment by segment along the orders; then ``mean = x_first + Σx'/count``
    and ``variance = Σx'²/count − (Σx'/count)²`` at every prefix length. The shift keeps the subtraction
    at the scale of the data's spread rather than of its offset (raw moments of data far from zero
    cancel catastrophically); what rounding is left is clipped at 0. Memory ``O(S · segment · n)``;
    the CPU path of :func:`prefix_class_stats`."""
    S, n, K = order.shape[0], X.shape[1], n_classes
    onehot = torch.nn.functional.one_hot(y.long(), K).to(torch.float64)          # [M, K]
    shift = X[order[:, 0].long()].to(torch.float64)                               # [S, n]
    count = torch.zeros(S, K, dtype=torch.float64, device=X.device)
    total = torch.zeros(S, K, n, dtype=torch.float64, device=X.device)
    total_sq = torch.zeros(S, K, n, dtype=torch.float64, device=X.device)
    counts, means, variances = [], [], []
    start = 0
    for end in ends.tolist():
        rows = order[:, start:end].long()                                         # [S, segment]
        members = onehot[rows]                                                    # [S, seg, K]
        xs = X[rows].to(torch.float64) - shift[:, None, :]                        # [S, seg, n]
        count = count + members.sum(dim=1)
        total = total + members.transpose(1, 2) @ xs
        total_sq = total_sq + members.transpose(1, 2) @ (xs * xs)
        seen = count[..., None] > 0
        safe = count.clamp_min(1.0)[..., None]
        centre = total / safe                                                     # mean of x' per class
        counts.append(count)
        means.append(torch.where(seen, shift[:, None, :] + centre, torch.zeros_like(centre)))
        variances.append((total_sq / safe - centre * centre).clamp_min(0.0))
        start = end
    return (torch.stack(counts, 1).round().to(torch.int64), torch.stack(means, 1).to(X.dtype),
            torch.stack(variances, 1).to(X.dtype))
