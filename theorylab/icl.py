"""In-context linear regression with one layer of linear self-attention (chapter 1).

Conventions (pinned here and in the chapter):

* Task: ``w ~ N(0, Σ_w)``, ``x_i ~ N(0, Σ)``, ``y_i = wᵀx_i + ε_i``, ``ε_i ~ N(0, σ²)``, ``i = 1..n``, and a
  query ``x_q`` with target ``y_q = wᵀx_q + ε_q``. ``Σ = Σ_w = I`` unless given.
* Prompt: ``Z = [[x_1 … x_n, x_q], [y_1 … y_n, 0]] ∈ R^{(d+1)×(n+1)}``.
* Layer: ``f(Z) = Z + (1/n) W_pv Z M Zᵀ W_kq Z`` with ``M = diag(1, …, 1, 0)`` masking the query column
  out of keys and values; the prediction is read off with a plus sign, ``ŷ = f(Z)[d+1, n+1]``.
* Then ``ŷ = pᵀ G K x_q`` with ``p`` the last row of ``W_pv``, ``K`` the first ``d`` columns of ``W_kq`` and
  ``G = (1/n) Σ_i z_i z_iᵀ``. Writing ``p = (p_x, c)`` and ``K = [A; k_yᵀ]``, the part of ``ŷ`` that is odd in
  the responses is one step of preconditioned GD from zero, ``gᵀ Γ x_q`` with
  ``g = (1/n) Σ_i y_i x_i`` and ``Γ = c A + p_x k_yᵀ``; the even part is a nuisance that only adds risk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from . import config
from .kernels import lsa_moments
from .linalg import covariance_with_spectrum, relative_error  # noqa: F401 -- part of icl's API
from .seeding import make_generator, resolve_seed
from .training import train
from .utils.validation import check_choice, check_int, check_real, check_tensor

RESPONSES = ("linear", "relu")


# ----------------------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------------------

def _check_nd_sigma(n, d, sigma):
    """``(n, d, sigma)`` checked and converted (numpy scalars accepted; NaN and infinity rejected)."""
    return (check_int("n", n, low=1), check_int("d", d, low=1),
            check_real("sigma", sigma, low=0.0))


def optimal_step_size(n: int, d: int, sigma: float) -> float:
    """Optimal step η* = n / (n + d + 1 + σ²) of one GD step from zero (isotropic Gaussian task)."""
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    return n / (n + d + 1 + sigma**2)


def optimal_risk(n: int, d: int, sigma: float) -> float:
    """Risk of one GD step with η*: L* = σ² + d (d + 1 + σ²) / (n + d + 1 + σ²)."""
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    return sigma**2 + d * (d + 1 + sigma**2) / (n + d + 1 + sigma**2)


def relu_step_size(n: int, d: int, sigma: float) -> float:
    """Optimal step for the ReLU response ``y = ξ·relu(uᵀx) + ε`` (``ξ = ±1``, ``u`` uniform on the sphere).

    η = n / (n − 1 + 2(d + 2) + 4 d σ²), from E‖β‖² = 1/4 and E[y²‖x‖²] = (d + 2)/2 + dσ².
    """
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    return n / (n - 1 + 2 * (d + 2) + 4 * d * sigma**2)


def relu_optimal_risk(n: int, d: int, sigma: float) -> float:
    """Risk of one GD step with :func:`relu_step_size`: E y_q² − η E[y_q gᵀx_q] = 1/2 + σ² − η/4."""
    eta = relu_step_size(n, d, sigma)
    return 0.5 + check_real("sigma", sigma) ** 2 - eta / 4


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def _device(device) -> torch.device:
    """``device`` as a ``torch.device`` (the CPU when None); a CUDA device this machine lacks is a clear
    error here rather than torch's deep inside the first allocation."""
    if device is None:
        return torch.device("cpu")
    config.check_cuda(device, name="device")        # also a ValueError for a name that is no device
    return torch.device(device)


def _cholesky(name: str, cov, d: int, dtype, device) -> torch.Tensor | None:
    if cov is None:
        return None
    cov = check_tensor(name, cov, dtype=dtype, finite=False).to(device)   # checked below
    if cov.shape != (d, d):
        raise ValueError(f"{name} must have shape [{d}, {d}], got {list(cov.shape)}")
    if not torch.isfinite(cov).all():
        raise ValueError(f"{name} must be finite, got a matrix with NaN or infinite entries")
    if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    chol, info = torch.linalg.cholesky_ex(cov)
    if info.item() != 0:
        raise ValueError(f"{name} must be positive definite")
    return chol


def sample_prompts(batch: int, n: int, d: int, sigma: float, *, cov=None, weight_cov=None,
                   response: str = "linear", generator: torch.Generator | int | None = None,
                   dtype: torch.dtype = torch.float64, device=None):
    """Draw ``batch`` regression prompts.

    Parameters
    ----------
    batch, n, d : int
        Prompts, context length and input dimension (all ≥ 1).
    sigma : float
        Noise standard deviation (≥ 0).
    cov : array [d, d], optional
        Covariance Σ of the inputs (identity when None).
    weight_cov : array [d, d], optional
        Covariance of the task vector w (identity when None). Only for ``response="linear"``.
    response : {"linear", "relu"}
        ``linear``: ``y = wᵀx + ε``. ``relu``: ``y = ξ·relu(uᵀx) + ε`` with a random sign ``ξ`` and
        ``u = w/‖w‖`` uniform on the unit sphere (a sign-symmetric, rotation-invariant family).
    generator : torch.Generator or int, optional
        Source of randomness (a seed makes one); same seed, same prompts. None: the stream
        ``"icl.sample_prompts"`` of ``THEORYLAB_SEED``.

    Returns
    -------
    X : Tensor [batch, n, d]
    y : Tensor [batch, n]
    x_query : Tensor [batch, d]
    y_query : Tensor [batch]
    """
    batch = check_int("batch", batch, low=1)
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    check_choice("response", response, RESPONSES)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    if response == "relu" and weight_cov is not None:
        raise ValueError("weight_cov applies to response='linear' only")
    device = _device(device)
    if generator is not None and not isinstance(generator, torch.Generator):
        generator = check_int("generator", generator, low=0)
    gen = make_generator(resolve_seed(None, "icl.sample_prompts") if generator is None else generator,
                         device=device)
    chol_x = _cholesky("cov", cov, d, dtype, device)
    chol_w = _cholesky("weight_cov", weight_cov, d, dtype, device)
    return _draw_prompts(batch, n, d, sigma, chol_x, chol_w, response, gen, dtype, device)


def _draw_prompts(batch, n, d, sigma, chol_x, chol_w, response, gen, dtype, device):
    """:func:`sample_prompts`' draws on checked arguments, with the Cholesky factors of the covariances
    (or None): the training loop draws a batch every step and checks its arguments once."""

    def normal(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype, device=device)

    inputs = normal(batch, n + 1, d)
    if chol_x is not None:
        inputs = inputs @ chol_x.T
    w = normal(batch, d)
    if chol_w is not None:
        w = w @ chol_w.T
    if response == "linear":
        clean = torch.einsum("bnd,bd->bn", inputs, w)
    else:
        u = w / w.norm(dim=1, keepdim=True)
        sign = torch.randint(0, 2, (batch, 1), generator=gen, device=device).to(dtype) * 2 - 1
        clean = sign * torch.relu(torch.einsum("bnd,bd->bn", inputs, u))
    responses = clean + sigma * normal(batch, n + 1)
    return inputs[:, :n], responses[:, :n], inputs[:, n], responses[:, n]


def _check_prompt(X, y, x_query):
    for name, value in (("X", X), ("y", y), ("x_query", x_query)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must hold finite numbers, got NaN or infinity")
    if not (X.dtype == y.dtype == x_query.dtype):
        raise TypeError(f"X, y and x_query must share one dtype, got {X.dtype}, {y.dtype} and "
                        f"{x_query.dtype}")
    if X.ndim != 3 or X.shape[1] < 1 or X.shape[2] < 1 or X.shape[0] < 1:
        raise ValueError(f"X must have shape [batch, n, d], got {list(X.shape)}")
    b, n, d = X.shape
    if tuple(y.shape) != (b, n):
        raise ValueError(f"y must have shape [{b}, {n}], got {list(y.shape)}")
    if tuple(x_query.shape) != (b, d):
        raise ValueError(f"x_query must have shape [{b}, {d}], got {list(x_query.shape)}")


# ----------------------------------------------------------------------------------------------
# Predictors
# ----------------------------------------------------------------------------------------------

def gradient_at_zero(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``g = (1/n) Σ_i y_i x_i`` [batch, d]: minus the gradient of ½·mean (wᵀx_i − y_i)² at w = 0."""
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of shape [batch, n, d], got {type(X).__name__}")
    if X.ndim != 3:
        raise ValueError(f"X must be a tensor of shape [batch, n, d], got {list(X.shape)}")
    _check_prompt(X, y, X[:, 0])
    return torch.einsum("bn,bnd->bd", y, X) / X.shape[1]


def one_step_gd_predict(X, y, x_query, gamma) -> torch.Tensor:
    """Prediction ``gᵀ Γ x_q`` [batch] of one preconditioned GD step from zero; ``gamma`` is [d, d]
    (or a scalar step size)."""
    _check_prompt(X, y, x_query)
    gamma = check_tensor("gamma", gamma, dtype=X.dtype).to(X.device)
    g = gradient_at_zero(X, y)
    if gamma.ndim == 0:
        return gamma * (g * x_query).sum(-1)
    d = X.shape[-1]
    if gamma.shape != (d, d):
        raise ValueError(f"gamma must be a scalar or have shape [{d}, {d}], got {list(gamma.shape)}")
    return torch.einsum("bi,ij,bj->b", g, gamma, x_query)


def ridge_predict(X, y, x_query, sigma: float, *, weight_cov=None) -> torch.Tensor:
    """Posterior-mean (Bayes-optimal) prediction [batch] for ``w ~ N(0, Σ_w)`` and noise ``σ``:
    ``x_qᵀ (XᵀX + σ² Σ_w⁻¹)⁻¹ Xᵀy``, i.e. ridge regression with penalty ``σ²``."""
    _check_prompt(X, y, x_query)
    sigma = check_real("sigma", sigma, low=0.0)
    d = X.shape[-1]
    prior = (torch.eye(d, dtype=X.dtype, device=X.device) if weight_cov is None else
             check_tensor("weight_cov", weight_cov, ndim=2, dtype=X.dtype).to(X.device))
    if prior.shape != (d, d):
        raise ValueError(f"weight_cov must have shape [{d}, {d}], got {list(prior.shape)}")
    if sigma == 0:
        # Noiseless limit: the minimum-Σ_w⁻¹-norm interpolant Σ_w Xᵀ (X Σ_w Xᵀ)⁺ y (also for n < d).
        w_hat = torch.einsum("ij,bnj,bn->bi", prior, X,
                             (torch.linalg.pinv(X @ prior @ X.transpose(1, 2)) @ y.unsqueeze(-1)).squeeze(-1))
    else:
        A = X.transpose(1, 2) @ X + sigma**2 * torch.linalg.inv(prior)
        w_hat = torch.linalg.solve(A, torch.einsum("bnd,bn->bd", X, y))
    return (w_hat * x_query).sum(-1)


class LinearSelfAttention(torch.nn.Module):
    """One layer of linear self-attention read out at the query's response entry.

    Parameters ``W_pv`` and ``W_kq`` are full ``[d+1, d+1]`` matrices (every entry is a parameter; only
    the read-out row of ``W_pv`` and the first ``d`` columns of ``W_kq`` ever receive a gradient).

    Parameters
    ----------
    d : int
        Input dimension.
    mask_query : bool
        Exclude the query column from keys and values (default, ``M = diag(1, …, 1, 0)``).
    init_scale : float
        Standard deviation of the Gaussian initialisation (the zero matrix is a saddle point).
    seed : int
        Seed of the initialisation.
    """

    def __init__(self, d: int, *, mask_query: bool = True, init_scale: float = 0.1, seed: int | None = None,
                 dtype: torch.dtype = torch.float32):
        seed = resolve_seed(seed, "icl.LinearSelfAttention")
        super().__init__()
        d = check_int("d", d, low=1)
        init_scale = check_real("init_scale", init_scale, low=0.0, low_open=True)
        if not isinstance(mask_query, bool):
            raise TypeError(f"mask_query must be a bool, got {mask_query!r}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
        gen = make_generator(seed)
        self.d = d
        self.mask_query = mask_query
        self.W_pv = torch.nn.Parameter(init_scale * torch.randn(d + 1, d + 1, generator=gen, dtype=dtype))
        self.W_kq = torch.nn.Parameter(init_scale * torch.randn(d + 1, d + 1, generator=gen, dtype=dtype))

    def forward(self, X: torch.Tensor, y: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        """Predictions [batch] for prompts ``X`` [batch, n, d], ``y`` [batch, n], ``x_query`` [batch, d]."""
        _check_prompt(X, y, x_query)
        if X.shape[-1] != self.d:
            raise ValueError(f"X has d={X.shape[-1]} but the layer was built for d={self.d}")
        return self._predict(X, y, x_query)

    def _predict(self, X, y, x_query):
        """:meth:`forward` without the checks (the training loop's prompts are drawn here, so they are
        valid: checking every batch for NaN costs more than the layer itself)."""
        n = X.shape[1]
        W_pv, W_kq = self.W_pv.to(X.dtype), self.W_kq.to(X.dtype)
        context = torch.cat([X, y.unsqueeze(-1)], dim=-1)                    # [b, n, d+1]
        query = torch.cat([x_query, torch.zeros_like(x_query[:, :1])], -1)  # [b, d+1]
        # ŷ = pᵀ G K z_q with G = (1/n) Σ_i z_i z_iᵀ, computed as (1/n) Σ_i (pᵀz_i)(z_iᵀ W_kq z_q) so
        # that G is never formed; the residual adds z_q's last entry, which is 0.
        p, v = W_pv[-1], query @ W_kq.T                                      # [d+1], [b, d+1]
        y_hat = ((context @ p) * (context @ v.unsqueeze(-1)).squeeze(-1)).sum(-1)
        if not self.mask_query:
            y_hat = y_hat + (query @ p) * (query * v).sum(-1)
        return y_hat / n

    def read_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The two blocks that matter: ``p`` [d+1] (last row of W_pv) and ``K`` [d+1, d]."""
        return self.W_pv[-1].detach(), self.W_kq[:, : self.d].detach()

    def preconditioner(self) -> torch.Tensor:
        """Effective preconditioner ``Γ = c A + p_x k_yᵀ`` [d, d] (invariant to rescaling p by α and
        K by 1/α): the part of ``ŷ`` odd in the responses is exactly ``gᵀ Γ x_q``."""
        p, K = self.read_out()
        p_x, c, A, k_y = p[: self.d], p[self.d], K[: self.d], K[self.d]
        return c * A + torch.outer(p_x, k_y)

    def nuisance_fraction(self, X, y, x_query) -> float:
        """RMS of the part of ``ŷ`` that is not ``gᵀΓx_q`` (even in the responses), relative to RMS ŷ."""
        with torch.no_grad():
            y_hat = self(X, y, x_query)
            even = y_hat - one_step_gd_predict(X, y, x_query, self.preconditioner().to(X.dtype))
        return (even.pow(2).mean() / y_hat.pow(2).mean()).sqrt().item()


def train_lsa(n: int, d: int, sigma: float, *, steps: int, batch: int, cov=None, weight_cov=None,
              response: str = "linear", lr: float = 0.02, mask_query: bool = True, seed: int | None = None,
              restarts: int = 1, device=None, progress: bool = True) -> LinearSelfAttention:
    """Train a :class:`LinearSelfAttention` on fresh prompts each step (online, so it minimises the
    population risk); Adam with a cosine-decayed learning rate, float32.

    ``steps`` and ``batch`` are positive integers; the other arguments are as in :func:`sample_prompts`.
    ``restarts`` > 1 trains that many layers from independent starts (seeds ``seed``, ``seed + 2``, …;
    the first is the layer ``restarts=1`` returns) and keeps the one with the lowest mean training
    loss over its last tenth of steps: on fresh prompts that loss estimates each layer's final risk,
    so no held-out data are used. It guards against Adam's stall at a spurious stationary point, which
    the start decides (chapter 1, "Trained layers at scale"). Returns the trained layer (on ``device``).
    """
    seed = resolve_seed(seed, "icl.train_lsa")
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    steps, batch = check_int("steps", steps, low=1), check_int("batch", batch, low=1)
    restarts = check_int("restarts", restarts, low=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    check_choice("response", response, RESPONSES)
    device = _device(device)
    if response == "relu" and weight_cov is not None:
        raise ValueError("weight_cov applies to response='linear' only")
    # sample_prompts' draws, its arguments checked and the covariances factored once, not every step
    chol_x = _cholesky("cov", cov, d, torch.float32, device)
    chol_w = _cholesky("weight_cov", weight_cov, d, torch.float32, device)
    best, best_loss = None, math.inf
    for start in range(restarts):
        layer = LinearSelfAttention(d, mask_query=mask_query, seed=seed + 2 * start).to(device)
        gen = make_generator(seed + 2 * start + 1, device=device)
        draw = partial(_draw_prompts, batch, n, d, sigma, chol_x, chol_w, response, gen, torch.float32,
                       device)

        def loss(_step, layer=layer, draw=draw):
            X, y, x_query, y_query = draw()
            return (layer._predict(X, y, x_query) - y_query).pow(2).mean()

        label = f"LSA n={n} d={d} σ={sigma:g}" + (f" ({start + 1}/{restarts})" if restarts > 1 else "")
        losses = train(layer.parameters(), loss, steps=steps, lr=lr, desc=label, progress=progress)
        final = float(np.mean(losses[-max(1, steps // 10):]))
        if final < best_loss:
            best, best_loss = layer, final
    return best


# ----------------------------------------------------------------------------------------------
# Streamed Monte Carlo (through theorylab.kernels.lsa_moments)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StreamedRisk:
    """Monte Carlo moments of a predictor ``ŷ`` over ``prompts`` prompts, kept per chunk.

    ``chunk_moments`` [chunks, 3] holds ``[Σ ŷ², Σ ŷ y_q, Σ y_q²]`` per chunk and ``chunk_sizes``
    [chunks] the prompts in each; standard errors come from the spread of per-chunk estimates
    (batch means).
    """

    chunk_moments: torch.Tensor
    chunk_sizes: torch.Tensor

    @property
    def prompts(self) -> int:
        return int(self.chunk_sizes.sum())

    def risk_at(self, scale: float = 1.0) -> tuple[float, float]:
        """Risk E(scale·ŷ − y_q)² and its standard error."""
        scale = check_real("scale", scale)
        m = self.chunk_moments
        weights = torch.tensor([scale**2, -2 * scale, 1.0], dtype=torch.float64)
        per_chunk = (m @ weights) / self.chunk_sizes
        return (m.sum(0) @ weights).item() / self.prompts, _standard_error(per_chunk)

    @property
    def risk(self) -> float:
        """Risk E(ŷ − y_q)² of the predictor as given."""
        return self.risk_at(1.0)[0]

    @property
    def risk_se(self) -> float:
        return self.risk_at(1.0)[1]

    @property
    def best_scale(self) -> float:
        """The factor α minimising E(αŷ − y_q)²: E[ŷ y_q] / E[ŷ²] (the optimal step along ŷ)."""
        total = self.chunk_moments.sum(0)
        return (total[1] / total[0]).item()

    @property
    def best_scale_se(self) -> float:
        return _standard_error(self.chunk_moments[:, 1] / self.chunk_moments[:, 0])


def _standard_error(per_chunk: torch.Tensor) -> float:
    return (per_chunk.std(unbiased=True) / math.sqrt(len(per_chunk))).item()


def streamed_risk(n: int, d: int, sigma: float, *, gamma=None, layer: LinearSelfAttention | None = None,
                  prompts: int, chunks: int = 32, response: str = "linear", cov=None,
                  weight_cov=None,
                  seed: int | None = None, device=None, backend: str = "auto") -> StreamedRisk:
    """Stream ``prompts`` fresh prompts in ``chunks`` chunks through
    :func:`theorylab.kernels.lsa_moments` and return their moments.

    Give either ``gamma`` (one GD step with preconditioner Γ [d, d], or a scalar step) or a trained
    ``layer``. On a GPU (or under Triton's interpreter) the Triton kernel runs; otherwise its torch
    reference, through the same function (``backend`` as in :func:`theorylab.kernels.lsa_moments`).
    The same ``seed`` and ``chunks`` give the same prompts, so two predictors can be compared on
    identical data.
    """
    seed = resolve_seed(seed, "icl.streamed_risk")
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    check_choice("response", response, RESPONSES)
    if (gamma is None) == (layer is None):
        raise ValueError("give exactly one of gamma and layer")
    device = _device(device)
    dtype = torch.float32  # moments are accumulated in float64; sampling in float64 is 5x slower
    if layer is not None:
        p, K = (t.to(device, dtype) for t in layer.read_out())
    else:
        gamma = check_tensor("gamma", gamma, dtype=dtype).to(device)
        gamma = gamma * torch.eye(d, dtype=dtype, device=device) if gamma.ndim == 0 else gamma
        if gamma.shape != (d, d):
            raise ValueError(f"gamma must be a scalar or have shape [{d}, {d}], got {list(gamma.shape)}")
        p = torch.zeros(d + 1, dtype=dtype, device=device)
        p[d] = 1.0
        K = torch.cat([gamma, torch.zeros(1, d, dtype=dtype, device=device)])
    rows, sizes = [], []
    for X, y, xq, yq in _prompt_chunks(prompts, chunks, n, d, sigma, cov=cov, weight_cov=weight_cov,
                                       response=response, seed=seed, dtype=dtype, device=device):
        rows.append(lsa_moments(X, y, xq, yq, p, K, backend=backend).cpu())
        sizes.append(len(yq))
    return StreamedRisk(torch.stack(rows), torch.tensor(sizes, dtype=torch.float64))


def streamed_ridge_risk(n: int, d: int, sigma: float, *, prompts: int, chunks: int = 32,
                        seed: int | None = None,
                        device=None) -> tuple[float, float]:
    """Monte Carlo risk of ridge regression (:func:`ridge_predict`) over ``prompts`` isotropic prompts,
    drawn in ``chunks`` chunks to bound memory; returns the risk and its standard error."""
    seed = resolve_seed(seed, "icl.streamed_ridge_risk")
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    device = _device(device)
    dtype = torch.float32  # moments are accumulated in float64; sampling in float64 is 5x slower
    per_chunk, sizes = [], []
    for X, y, xq, yq in _prompt_chunks(prompts, chunks, n, d, sigma, seed=seed, dtype=dtype,
                                       device=device):
        per_chunk.append((ridge_predict(X, y, xq, sigma) - yq).double().pow(2).mean().cpu())
        sizes.append(len(yq))
    per_chunk, sizes = torch.stack(per_chunk), torch.tensor(sizes, dtype=torch.float64)
    return ((per_chunk * sizes).sum() / sizes.sum()).item(), _standard_error(per_chunk)


def _prompt_chunks(prompts, chunks, n, d, sigma, *, seed, dtype, device, **task):
    """Yield ``chunks`` batches of prompts totalling ``prompts``, from one seeded generator."""
    chunks = check_int("chunks", chunks, low=2)          # at least 2 for a standard error
    prompts = check_int("prompts", prompts, low=chunks)
    gen = make_generator(seed, device=device)
    for i in range(chunks):
        size = prompts // chunks + (i < prompts % chunks)
        yield sample_prompts(size, n, d, sigma, generator=gen, dtype=dtype, device=device, **task)


def one_step_gd_risk(eta: float, n: int, d: int, sigma: float) -> float:
    """Risk of one GD step with scalar step ``eta`` (isotropic task): ``d (a η² − 2η + 1) + σ²`` with
    ``a = (n + d + 1 + σ²)/n``; minimised at ``η = 1/a = η*``."""
    n, d, sigma = _check_nd_sigma(n, d, sigma)
    eta = check_real("eta", eta)
    a = (n + d + 1 + sigma**2) / n
    return d * (a * eta**2 - 2 * eta + 1) + sigma**2


def mc_risk(prediction: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Monte Carlo risk ``mean (ŷ − y)²`` over a batch [batch] and its standard error."""
    prediction, target = check_tensor("prediction", prediction), check_tensor("target", target)
    if prediction.shape != target.shape or prediction.ndim != 1:
        raise ValueError(f"prediction and target must be 1-D of one shape, got "
                         f"{list(prediction.shape)} and {list(target.shape)}")
    sq = (prediction.to(torch.float64) - target.to(torch.float64)).pow(2)
    return sq.mean().item(), (sq.std() / math.sqrt(len(sq))).item()


def random_covariance(d: int, condition: float, *, seed: int | None = None) -> torch.Tensor:
    """A covariance [d, d] (float64) with eigenvalues spread geometrically from 1/√condition to
    √condition, in a random orthonormal basis (so determinant 1 and no preferred axes)."""
    seed = resolve_seed(seed, "icl.random_covariance")
    d = check_int("d", d, low=1)
    condition = check_real("condition", condition, low=1.0)
    eig = torch.logspace(-0.5, 0.5, d, base=condition, dtype=torch.float64) if d > 1 else torch.ones(1)
    return covariance_with_spectrum(eig, seed=seed)[0]
