"""Gauss–Newton quantities of a two-layer ReLU network without materialising per-sample gradients.

For ``f(x) = Σ_k v_k relu(w_k · x)`` (``W`` [m, d] with rows ``w_k``, ``v`` [m], no bias) and data
``X`` [n, d], the per-sample gradient ``g_i = ∇_θ f(x_i)`` has the blocks

    ∂f/∂v_k = relu(z_ik),      ∂f/∂w_k = v_k 1[z_ik > 0] x_i,      z_ik = w_k · x_i,

so everything the stability analysis needs is a matmul ``Z = X Wᵀ`` followed by an elementwise map
and a reduction:

* squared gradient norms (the Gauss–Newton trace is their mean)::

      ‖g_i‖² = Σ_k relu(z_ik)² + ‖x_i‖² Σ_k v_k² 1[z_ik > 0]

* the Jacobian–vector product for a direction ``u = (dW, dv)``::

      (J u)_i = Σ_k dv_k relu(z_ik) + v_k 1[z_ik > 0] (dw_k · x_i)

* the vector–Jacobian product for weights ``s`` [n]::

      (Jᵀ s)_v = Σ_i s_i relu(z_i·),       (Jᵀ s)_{w_k} = v_k Σ_i s_i 1[z_ik > 0] x_i

One Triton kernel does all three (``MODE`` 0, 1, 2). Each program owns a tile of samples × neurons,
accumulates ``Z`` (and, for the JVP, ``X dWᵀ``) over ``d`` in blocks, then applies the epilogue and
adds its tile's partial reduction to the output with atomics: a reduction over neurons for modes 0
and 1, over samples for mode 2 (whose weight part is a second small matmul ``gateᵀ X`` against the
same rows of ``X``). Nothing of size ``n × m`` or ``n × #parameters`` is stored. The Gauss–Newton
matrix–vector product ``H u = Jᵀ (J u) / n`` is a mode-1 launch followed by a mode-2 launch.

ReLU'(0) is taken as 0 (``1[z > 0]``), as torch's autograd does. Atomic additions make the float32
sums' order, and so their last bits, vary between GPU runs. The matmuls ask for exact float32 products
(``input_precision="ieee"``): TF32's 10-bit mantissa (relative error about 1e-3) would blur
``η λ_max / 2`` against 1 at GD's minima, which sit a few percent below it. Offsets into ``X``,
``W`` and the outputs are computed in int64, so ``n · d`` and ``m · d`` may exceed 2³¹.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_finite, check_same_dtype, use_triton

BLOCK_N, BLOCK_M, BLOCK_D = 32, 32, 32
#: Warps per program: with 4, the JVP mode needs 255 registers and spills on sm_80 (``compile_check``).
NUM_WARPS = 8
MODE_NORMS, MODE_JVP, MODE_VJP = 0, 1, 2


@triton.jit
def _relu_gauss_newton_kernel(X, W, V, DW, DV, S, OUT, OUT_W, N, M, D,
                              MODE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr,
                              BLOCK_D: tl.constexpr):
    # X [N, D], W [M, D], DW [M, D] row-major; V, DV, OUT_v [M]; S, OUT_n [N]; OUT_W [M, D].
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)     # int64: n · d may exceed 2³¹
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_n = offs_n < N
    mask_m = offs_m < M
    z = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)           # X Wᵀ
    xdw = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)         # X dWᵀ (mode 1)
    x_sq = tl.zeros([BLOCK_N], dtype=tl.float32)                 # ‖x_i‖² (mode 0)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        x = tl.load(X + offs_n[:, None] * D + offs_d[None, :],
                    mask=mask_n[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        w_t = tl.load(W + offs_m[None, :] * D + offs_d[:, None],
                      mask=mask_m[None, :] & mask_d[:, None], other=0.0).to(tl.float32)
        z += tl.dot(x, w_t, input_precision="ieee")
        if MODE == 0:
            x_sq += tl.sum(x * x, axis=1)
        if MODE == 1:
            dw_t = tl.load(DW + offs_m[None, :] * D + offs_d[:, None],
                           mask=mask_m[None, :] & mask_d[:, None], other=0.0).to(tl.float32)
            xdw += tl.dot(x, dw_t, input_precision="ieee")
    # Padded rows and columns have z = 0, hence relu = 0 and an inactive gate: they add nothing.
    v = tl.load(V + offs_m, mask=mask_m, other=0.0).to(tl.float32)
    active = z > 0.0
    relu = tl.where(active, z, 0.0)
    if MODE == 0:
        term = relu * relu + tl.where(active, v[None, :] * v[None, :], 0.0) * x_sq[:, None]
        tl.atomic_add(OUT + offs_n, tl.sum(term, axis=1), mask=mask_n)
    elif MODE == 1:
        dv = tl.load(DV + offs_m, mask=mask_m, other=0.0).to(tl.float32)
        term = relu * dv[None, :] + tl.where(active, xdw, 0.0) * v[None, :]
        tl.atomic_add(OUT + offs_n, tl.sum(term, axis=1), mask=mask_n)
    else:
        s = tl.load(S + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        tl.atomic_add(OUT + offs_m, tl.sum(relu * s[:, None], axis=0), mask=mask_m)
        gate = tl.where(active, s[:, None] * v[None, :], 0.0)   # [BLOCK_N, BLOCK_M]
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + tl.arange(0, BLOCK_D)
            mask_d = offs_d < D
            x = tl.load(X + offs_n[:, None] * D + offs_d[None, :],
                        mask=mask_n[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
            tl.atomic_add(OUT_W + offs_m[:, None] * D + offs_d[None, :],
                          tl.dot(tl.trans(gate), x, input_precision="ieee"),
                          mask=mask_m[:, None] & mask_d[None, :])


def _launch(mode, X, W, v, dW=None, dv=None, s=None):
    n, d = X.shape
    m = W.shape[0]
    # No copy for float32 contiguous inputs: a caller that launches many times on the same X (Lanczos)
    # converts it once (see relu_gn_matvec).
    f32 = [t.float().contiguous() if t is not None else None for t in (X, W, v, dW, dv, s)]
    X32, W32, v32, dW32, dv32, s32 = f32
    if mode == MODE_VJP:
        out = torch.zeros(m, device=X.device, dtype=torch.float32)
        out_w = torch.zeros(m, d, device=X.device, dtype=torch.float32)
    else:
        out = torch.zeros(n, device=X.device, dtype=torch.float32)
        out_w = out                                            # unused
    dummy = v32
    grid = (triton.cdiv(n, BLOCK_N), triton.cdiv(m, BLOCK_M))
    _relu_gauss_newton_kernel[grid](
        X32, W32, v32, dW32 if dW32 is not None else W32, dv32 if dv32 is not None else dummy,
        s32 if s32 is not None else dummy, out, out_w, n, m, d,
        MODE=mode, BLOCK_N=BLOCK_N, BLOCK_M=BLOCK_M, BLOCK_D=BLOCK_D, num_warps=NUM_WARPS)
    return (out_w, out) if mode == MODE_VJP else out


def _validate(X, W, v, dW=None, dv=None):
    named = [("X", X), ("W", W), ("v", v)] + ([("dW", dW), ("dv", dv)] if dW is not None or dv is not None
                                              else [])
    for name, t in named:
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    check_same_dtype(**dict(named))
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape [n, d] with n, d ≥ 1, got {list(X.shape)}")
    d = X.shape[1]
    if W.ndim != 2 or W.shape[1] != d:
        raise ValueError(f"W must have shape [m, {d}] for X of shape {list(X.shape)}, got {list(W.shape)}")
    m = W.shape[0]
    if tuple(v.shape) != (m,):
        raise ValueError(f"v must have shape [{m}] for W of shape {list(W.shape)}, got {list(v.shape)}")
    if dW is not None and tuple(dW.shape) != tuple(W.shape):
        raise ValueError(f"dW must have the shape of W {list(W.shape)}, got {list(dW.shape)}")
    if dv is not None and tuple(dv.shape) != (m,):
        raise ValueError(f"dv must have shape [{m}], got {list(dv.shape)}")
    if len({t.device for _, t in named}) != 1:
        raise ValueError("all inputs must be on one device")
    check_finite(X=X, W=W, v=v, dW=dW, dv=dv)


def relu_gn_sq_norms(X: torch.Tensor, W: torch.Tensor, v: torch.Tensor, *,
                     backend: str = "auto") -> torch.Tensor:
    """Squared per-sample gradient norms ``‖∇_θ f(x_i)‖²`` of ``f(x) = Σ_k v_k relu(w_k · x)``.

    Parameters
    ----------
    X : Tensor [n, d]
    W : Tensor [m, d]
        Hidden weights, one neuron per row.
    v : Tensor [m]
        Output weights.
    backend : {"auto", "triton", "torch"}
        ``auto``: the Triton kernel for CUDA tensors or under ``TRITON_INTERPRET=1``, the torch
        reference otherwise. The kernel computes in float32 (IEEE products, no TF32).

    Returns
    -------
    Tensor [n]: float32 from the kernel, the input dtype from the reference. Their mean is the
    Gauss–Newton trace ``tr((1/n) Σ_i g_i g_iᵀ)``.
    """
    _validate(X, W, v)
    if not use_triton(X, backend):
        return relu_gn_sq_norms_reference(X, W, v)
    return _launch(MODE_NORMS, X, W, v)


def relu_gn_matvec(X: torch.Tensor, W: torch.Tensor, v: torch.Tensor, dW: torch.Tensor, dv: torch.Tensor, *,
                   backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Newton matrix–vector product ``H u = (1/n) Jᵀ (J u)`` for ``u = (dW, dv)``.

    Parameters
    ----------
    X : Tensor [n, d]
    W : Tensor [m, d]
    v : Tensor [m]
    dW : Tensor [m, d]
        The direction's hidden-weight block.
    dv : Tensor [m]
        The direction's output-weight block.
    backend : {"auto", "triton", "torch"}
        As in :func:`relu_gn_sq_norms`; the kernel path is two launches (JVP, then VJP), in float32:
        pass ``X`` as a float32 contiguous tensor when calling many times with the same data, so that
        it is not converted on every call.

    Returns
    -------
    (HdW, Hdv) : Tensors [m, d] and [m], the blocks of ``H u``.
    """
    _validate(X, W, v, dW, dv)
    if not use_triton(X, backend):
        return relu_gn_matvec_reference(X, W, v, dW, dv)
    jvp = _launch(MODE_JVP, X, W, v, dW=dW, dv=dv)
    return _launch(MODE_VJP, X, W, v, s=jvp / X.shape[0])


def compile_cases():
    """Both modes at the fixed tiles, for ``compile_check``: the launcher passes float32 tensors."""
    from .compile_check import CompileCase

    signature = {name: "*fp32" for name in ("X", "W", "V", "DW", "DV", "S", "OUT", "OUT_W")}
    signature.update(N="i32", M="i32", D="i32", MODE="constexpr", BLOCK_N="constexpr",
                     BLOCK_M="constexpr", BLOCK_D="constexpr")
    return [CompileCase(_relu_gauss_newton_kernel, signature,
                        {"MODE": mode, "BLOCK_N": BLOCK_N, "BLOCK_M": BLOCK_M, "BLOCK_D": BLOCK_D},
                        f"MODE={mode} BLOCK_N={BLOCK_N} BLOCK_M={BLOCK_M} BLOCK_D={BLOCK_D}",
                        num_warps=NUM_WARPS)
            for mode in (MODE_NORMS, MODE_JVP, MODE_VJP)]


def relu_gn_sq_norms_reference(X, W, v) -> torch.Tensor:
    """Plain torch: ``Z = X Wᵀ`` in full, then the closed form row by row."""
    Z = X @ W.T
    active = (Z > 0).to(X.dtype)
    return torch.relu(Z).pow(2).sum(dim=1) + (active @ v.pow(2)) * X.pow(2).sum(dim=1)


def relu_gn_matvec_reference(X, W, v, dW, dv) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain torch: ``J u`` and ``Jᵀ s`` from the full activation matrix ``Z = X Wᵀ``."""
    n = X.shape[0]
    Z = X @ W.T
    active = (Z > 0).to(X.dtype)
    relu = torch.relu(Z)
    jvp = relu @ dv + (active * (X @ dW.T)) @ v                 # [n]
    s = jvp / n
    return v[:, None] * ((active * s[:, None]).T @ X), relu.T @ s
