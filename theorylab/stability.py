"""Dynamical stability of SGD at interpolating minima (chapter 4; Wu & Su, ICML 2023).

Conventions
-----------
* Data ``X`` [n, d], targets ``y`` [n]; a model maps ``X`` to predictions [n] (one scalar per example).
* Square loss **with** the ½: ``L(θ) = (1/2n) Σ_i (f(x_i; θ) − y_i)²``. At an interpolating minimum
  (every residual zero) its Hessian is the Gauss–Newton matrix ``H = (1/n) Σ_i g_i g_iᵀ`` with
  ``g_i = ∇_θ f(x_i; θ)`` [p], so ``tr H = (1/n) Σ_i ‖g_i‖²``. ``H`` has units of 1 / learning rate.
* SGD with batch size ``B``: ``θ ← θ − η (1/B) Σ_s (f(x_{i_s}) − y_{i_s}) g_{i_s}`` with the ``B``
  indices drawn uniformly **with replacement**; ``batch_size = n`` is full-batch GD (every sample
  once, no sampling).
* Parameter vectors [p] are flattened in the order of ``model.named_parameters()``: ``(a, b)`` for
  :class:`DiagonalLinearNetwork`, ``(W row-major, v)`` for :class:`TwoLayerReLU`.

The two models have closed-form per-sample gradients; the Gauss–Newton trace and matrix–vector
product of the ReLU network go through :mod:`theorylab.kernels.relu_gauss_newton` (a Triton kernel on a
GPU, its torch reference on a CPU). :func:`per_sample_gradients` computes the same gradients with
autograd, independently, for checks and for the (small-scale) mean-square stability operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .kernels import relu_gn_matvec, relu_gn_sq_norms, use_triton
from .seeding import make_generator, resolve_seed
from .utils.numerics import lanczos_max
from .utils.threads import single_threaded
from .utils.validation import check_float_dtype, check_int, check_real

__all__ = ["DiagonalLinearNetwork", "TwoLayerReLU", "sparse_regression", "relu_teacher",
           "train", "train_many", "TrainingRun", "CLIP_SHARE", "clipped_fraction", "clipping_budget",
           "excursion_steps",
           "per_sample_gradients", "gauss_newton_trace",
           "gauss_newton_matvec",
           "gauss_newton_lambda_max", "mean_square_radius", "mean_square_threshold", "lyapunov_exponent",
           "lyapunov_exponents", "gd_escape_threshold", "sampling_factor", "l1_norm",
           "path_norm", "test_error", "training_loss", "parameter_count"]


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------

def _check_model(model, name: str = "model") -> None:
    if not isinstance(model, DiagonalLinearNetwork | TwoLayerReLU):
        raise TypeError(f"{name} must be a DiagonalLinearNetwork or a TwoLayerReLU, "
                        f"got {type(model).__name__}")


def _check_models(models) -> list:
    """``models`` (a non-empty list or other iterable of models, not a single model or a string) as a
    list, each checked; errors name ``models`` (and the entry, ``models[k]``)."""
    if isinstance(models, str | bytes | torch.nn.Module) or not isinstance(models, Iterable):
        raise TypeError(f"models must be a list of DiagonalLinearNetwork or TwoLayerReLU models, "
                        f"got {type(models).__name__}")
    models = list(models)
    if not models:
        raise ValueError("models must hold at least one model")
    for k, model in enumerate(models):
        _check_model(model, f"models[{k}]")
    return models


def _check_data(model, X, y=None):
    """``X`` (and ``y``) checked and converted to the model's floating dtype and device (float32 data
    with a float64 model is computed in float64); returns ``X``, or ``(X, y)`` when ``y`` is given."""
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[1] != model.d or X.shape[0] < 1:
        raise ValueError(f"X must be a tensor of shape [n, {model.d}], got "
                         f"{list(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    if not X.is_floating_point():
        raise TypeError(f"X must be a floating-point tensor, got dtype {X.dtype}")
    if not torch.isfinite(X).all():
        raise ValueError("X must hold finite numbers, got NaN or infinity")
    first = next(model.parameters())
    X = X.to(device=first.device, dtype=first.dtype)
    if y is None:
        return X
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (X.shape[0],):
        raise ValueError(f"y must be a tensor of shape [{X.shape[0]}] (one target per row of X), got "
                         f"{list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if not y.is_floating_point():
        raise TypeError(f"y must be a floating-point tensor, got dtype {y.dtype}")
    if not torch.isfinite(y).all():
        raise ValueError("y must hold finite numbers, got NaN or infinity")
    return X, y.to(device=first.device, dtype=first.dtype)


def _data_per_model(models, X) -> list:
    """``X`` [n, d] shared by all models, or [K, n, d] with one data set per model, checked and converted
    for each model (``K = len(models)``): returns one [n, d] tensor per model."""
    for model in models:
        _check_model(model)
    if isinstance(X, torch.Tensor) and X.ndim == 3:
        if X.shape[0] != len(models):
            raise ValueError(f"X of shape [K, n, d] must hold one data set per model (K = {len(models)}), "
                             f"got {list(X.shape)}")
        return [_check_data(model, X[k]) for k, model in enumerate(models)]
    return [_check_data(model, X) for model in models]


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

class DiagonalLinearNetwork(torch.nn.Module):
    """``f(x) = ⟨a ⊙ b, x⟩``: a linear predictor ``β = a ⊙ b`` in a two-factor parametrisation.

    Parameters
    ----------
    d : int
        Input dimension; the model has ``p = 2d`` parameters.
    init_scale : float
        ``a`` and ``b`` are drawn i.i.d. ``N(0, init_scale²)`` (the large random initialisation of the
        paper's experiments is ``init_scale = 1``).
    seed : int
    dtype : torch.dtype

    Attributes
    ----------
    a, b : Parameter [d]
    """

    def __init__(self, d: int, *, init_scale: float = 1.0,
                 seed: int | None = None, dtype: torch.dtype = torch.float64):
        seed = resolve_seed(seed, "stability.DiagonalLinearNetwork")
        super().__init__()
        self.d = check_int("d", d, low=1)
        init_scale = check_real("init_scale", init_scale, low=0, low_open=True)
        dtype = check_float_dtype("dtype", dtype)
        gen = make_generator(seed)
        self.a = torch.nn.Parameter(init_scale * torch.randn(d, generator=gen, dtype=dtype))
        self.b = torch.nn.Parameter(init_scale * torch.randn(d, generator=gen, dtype=dtype))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` [n, d] → predictions [n]."""
        X = _check_data(self, X)
        return X @ (self.a * self.b)

    def beta(self) -> torch.Tensor:
        """The effective linear predictor ``β = a ⊙ b`` [d] (detached)."""
        return (self.a * self.b).detach()

    def sq_grad_norms(self, X: torch.Tensor) -> torch.Tensor:
        """``‖∇_θ f(x_i)‖² = Σ_j (a_j² + b_j²) x_ij²`` [n] (closed form, detached)."""
        X = _check_data(self, X)
        return X.pow(2) @ (self.a.detach().pow(2) + self.b.detach().pow(2))

    def jacobian(self, X: torch.Tensor) -> torch.Tensor:
        """Per-sample gradients in closed form, ``[X ⊙ b, X ⊙ a]`` [n, 2d] (detached)."""
        X = _check_data(self, X)
        return torch.cat([X * self.b.detach(), X * self.a.detach()], dim=1)

    def gn_matvec(self, X: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``H u = (1/n) Jᵀ (J u)`` for a flat direction ``u = (u_a, u_b)`` [2d]."""
        a, b = self.a.detach(), self.b.detach()
        u_a, u_b = u[:self.d], u[self.d:]
        s = X @ (b * u_a + a * u_b) / X.shape[0]
        back = X.T @ s
        return torch.cat([b * back, a * back])

    # Stacked parameters with a leading replica dimension K, for train_many.
    @staticmethod
    def _stacked_predict(params, X):
        a, b = params
        return (a * b) @ X.T                                   # [K, n]

    @staticmethod
    def _stacked_gradient(params, X, y, idx, weights):
        a, b = params
        # Σ_s w_s r_s ∇f(x_s) with every sample's weight summed: a [K, n] weight matrix, no gather.
        w = torch.zeros(a.shape[0], X.shape[0], dtype=X.dtype, device=X.device).scatter_add_(1, idx, weights)
        r = (a * b) @ X.T - y                                   # [K, n] residuals on all samples
        g = (w * r) @ X                                        # [K, d]: Σ_i w_i r_i x_i
        return [g * b, g * a]

    # The same for train_many's numpy loop (engine="numpy"), written with operations that numpy arrays and
    # torch tensors share; its losses are recorded in torch.
    @staticmethod
    def _group_predict(params, X):
        """Predictions [K, n] of the K stacked models on ``X`` [n, d] (shared) or [K, n, d] (one each)."""
        a, b = params
        return (X @ (a * b)[:, :, None])[..., 0]

    @staticmethod
    def _group_gradient(params, xb, yb, weights):
        """``Σ_s w_s r_s ∇f(x_s)`` per model: ``xb`` [K, w, d] and ``yb`` [K, w] (each model's samples), or
        ``xb`` [w, d] and ``yb`` [w] shared by all; ``weights`` [K, w] or a number."""
        a, b = params                                          # [K, d]
        if xb.ndim == 2:                                       # shared samples: two plain matmuls
            g = (weights * ((a * b) @ xb.T - yb)) @ xb         # [K, d]: Σ_s w_s r_s x_s
        else:
            r = (xb @ (a * b)[:, :, None])[..., 0] - yb        # [K, w] residuals
            g = ((weights * r)[:, None, :] @ xb)[:, 0]
        return [g * b, g * a]


class TwoLayerReLU(torch.nn.Module):
    """``f(x) = Σ_k v_k relu(w_k · x)``: a two-layer ReLU network without biases.

    Parameters
    ----------
    d : int
        Input dimension.
    width : int
        Number of hidden neurons ``m``; the model has ``p = m (d + 1)`` parameters.
    init_scale : float
        Rows ``w_k`` have i.i.d. ``N(0, init_scale² / d)`` entries and ``v_k ~ N(0, init_scale² / m)``:
        with ``‖x‖² ≈ d`` the pre-activations and the output are of order ``init_scale`` and
        ``init_scale²``; ``init_scale = 1`` is the standard (LeCun) initialisation, larger is sharper.
    seed : int
    dtype : torch.dtype

    Attributes
    ----------
    W : Parameter [m, d]
    v : Parameter [m]
    """

    def __init__(self, d: int, width: int, *, init_scale: float = 1.0, seed: int | None = None,
                 dtype: torch.dtype = torch.float64):
        seed = resolve_seed(seed, "stability.TwoLayerReLU")
        super().__init__()
        self.d = check_int("d", d, low=1)
        self.width = check_int("width", width, low=1)
        init_scale = check_real("init_scale", init_scale, low=0, low_open=True)
        dtype = check_float_dtype("dtype", dtype)
        gen = make_generator(seed)
        W = torch.randn(width, d, generator=gen, dtype=dtype) * (init_scale / math.sqrt(d))
        v = torch.randn(width, generator=gen, dtype=dtype) * (init_scale / math.sqrt(width))
        self.W, self.v = torch.nn.Parameter(W), torch.nn.Parameter(v)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` [n, d] → predictions [n]."""
        X = _check_data(self, X)
        return torch.relu(X @ self.W.T) @ self.v

    def sq_grad_norms(self, X: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
        """``‖∇_θ f(x_i)‖² = Σ_k [relu(w_k·x_i)² + v_k² 1[w_k·x_i > 0] ‖x_i‖²]`` [n], through
        :func:`theorylab.kernels.relu_gn_sq_norms` (no per-sample gradient is formed)."""
        X = _check_data(self, X)
        return relu_gn_sq_norms(X, self.W.detach(), self.v.detach(), backend=backend)

    def jacobian(self, X: torch.Tensor) -> torch.Tensor:
        """Per-sample gradients in closed form [n, m (d + 1)] (detached): blocks ``v_k 1[z_ik > 0] x_i``
        (row-major over ``k``, then the ``d`` inputs) and ``relu(z_ik)``."""
        X = _check_data(self, X)
        W, v = self.W.detach(), self.v.detach()
        Z = X @ W.T
        dW = ((Z > 0) * v)[:, :, None] * X[:, None, :]
        return torch.cat([dW.reshape(X.shape[0], -1), torch.relu(Z)], dim=1)

    def gn_matvec(self, X: torch.Tensor, u: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
        """``H u`` for a flat direction ``u = (dW row-major, dv)`` [m (d + 1)], through
        :func:`theorylab.kernels.relu_gn_matvec`."""
        m, d = self.width, self.d
        HW, Hv = relu_gn_matvec(X, self.W.detach(), self.v.detach(), u[:m * d].reshape(m, d), u[m * d:],
                                backend=backend)
        return torch.cat([HW.reshape(-1), Hv]).to(u.dtype)

    @staticmethod
    def _stacked_predict(params, X):
        W, v = params
        return torch.einsum("knd,kmd->knm", X.expand(W.shape[0], -1, -1), W).relu() @ v[:, :, None]

    @staticmethod
    def _stacked_gradient(params, X, y, idx, weights):
        W, v = params                                           # [K, m, d], [K, m]
        xb, yb = X[idx], y[idx]                                 # [K, B, d], [K, B]
        z = torch.bmm(xb, W.transpose(1, 2))                    # [K, B, m]
        act = z.clamp(min=0)
        r = (act * v[:, None, :]).sum(dim=-1) - yb
        wr = weights * r
        grad_v = torch.bmm(wr[:, None, :], act)[:, 0]           # Σ_s w_s r_s relu(z_s)
        grad_W = torch.bmm(((wr[:, :, None] * v[:, None, :]) * (z > 0)).transpose(1, 2), xb)
        return [grad_W, grad_v]

    @staticmethod
    def _group_predict(params, X):
        """Predictions [K, n] of the K stacked models on ``X`` [n, d] (shared) or [K, n, d] (one each)."""
        W, v = params
        return ((X @ W.swapaxes(1, 2)).clip(min=0) @ v[:, :, None])[..., 0]

    @staticmethod
    def _group_gradient(params, xb, yb, weights):
        """As :meth:`DiagonalLinearNetwork._group_gradient`, for ``(W, v)`` [K, m, d], [K, m] (shared
        samples ``xb`` [w, d] broadcast over the models)."""
        W, v = params
        z = xb @ W.swapaxes(1, 2)                              # [K, w, m] pre-activations
        act = z.clip(min=0)
        wr = weights * ((act @ v[:, :, None])[..., 0] - yb)    # [K, w] weighted residuals
        grad_v = (wr[:, None, :] @ act)[:, 0]                  # Σ_s w_s r_s relu(z_s)
        grad_W = ((wr[:, :, None] * v[:, None, :]) * (z > 0)).swapaxes(1, 2) @ xb
        return [grad_W, grad_v]


def parameter_count(model) -> int:
    """``p``, the number of trainable parameters."""
    _check_model(model)
    return sum(t.numel() for t in model.parameters())


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def sparse_regression(n: int, d: int, *, sparsity: int = 3, n_test: int = 2000, seed: int | None = None,
                      dtype: torch.dtype = torch.float64):
    """Noiseless sparse linear regression: ``x ~ N(0, I_d)``, ``y = ⟨β*, x⟩`` with ``β*`` equal to 1 on
    its first ``sparsity`` coordinates and 0 elsewhere.

    Returns
    -------
    X [n, d], y [n], X_test [n_test, d], y_test [n_test], beta_star [d]
    """
    seed = resolve_seed(seed, "stability.sparse_regression")
    n, d = check_int("n", n, low=1), check_int("d", d, low=1)
    sparsity = check_int("sparsity", sparsity, low=1, high=d)
    n_test = check_int("n_test", n_test, low=1)
    dtype = check_float_dtype("dtype", dtype)
    gen = make_generator(seed)
    beta = torch.zeros(d, dtype=dtype)
    beta[:sparsity] = 1.0
    X = torch.randn(n, d, generator=gen, dtype=dtype)
    X_test = torch.randn(n_test, d, generator=gen, dtype=dtype)
    return X, X @ beta, X_test, X_test @ beta, beta


def relu_teacher(n: int, d: int, *, neurons: int = 3, n_test: int = 2000, seed: int | None = None,
                 dtype: torch.dtype = torch.float64):
    """Data from a small ReLU teacher: ``x`` uniform on the sphere of radius ``√d`` and
    ``y = Σ_{j ≤ neurons} relu(w*_j · x)`` with unit-norm random ``w*_j``.

    Returns
    -------
    X [n, d], y [n], X_test [n_test, d], y_test [n_test], W_star [neurons, d]
    """
    seed = resolve_seed(seed, "stability.relu_teacher")
    n, d = check_int("n", n, low=1), check_int("d", d, low=1)
    neurons = check_int("neurons", neurons, low=1)
    n_test = check_int("n_test", n_test, low=1)
    dtype = check_float_dtype("dtype", dtype)
    gen = make_generator(seed)

    def sphere(k):
        x = torch.randn(k, d, generator=gen, dtype=dtype)
        return x / x.norm(dim=1, keepdim=True) * math.sqrt(d)

    W_star = torch.randn(neurons, d, generator=gen, dtype=dtype)
    W_star = W_star / W_star.norm(dim=1, keepdim=True)
    X, X_test = sphere(n), sphere(n_test)
    return X, torch.relu(X @ W_star.T).sum(1), X_test, torch.relu(X_test @ W_star.T).sum(1), W_star


# ----------------------------------------------------------------------------------------------
# Training: SGD with replacement, many models at once
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TrainingRun:
    """One run of :func:`train` or :func:`train_many`: the trained model and the record of its training.
    Runs compare by identity (their records hold arrays).

    Attributes
    ----------
    model : DiagonalLinearNetwork or TwoLayerReLU
        The model passed in, trained in place.
    history : dict of str to numpy array [R]
        One entry per record (``R`` of them, every ``record_every`` steps, at step 0 and at the last
        step): ``"step"`` (int, the step of the record), ``"loss"`` (the full training loss
        ``(1/2n) Σ (f(x_i) − y_i)²`` there), ``"clipped"`` (int, how many of the steps since the previous
        record were clipped; 0 at step 0) and one float array per key of the ``monitor``.
    final_loss : float
        The training loss at the last step (``history["loss"][-1]``).
    last_clipped_step : int
        The last step (0-based) at which clipping acted, -1 if it never did.
    lr : float
        The learning rate ``η`` of the run (1 / units of ``H``).
    batch_size : int
        ``B``; ``B = n`` is full-batch GD.
    """

    model: torch.nn.Module
    history: dict
    final_loss: float
    last_clipped_step: int
    lr: float
    batch_size: int


def _training_runs(models, history, last_clipped, lrs, batches) -> list[TrainingRun]:
    """One :class:`TrainingRun` per model from the loops' per-model records (all lists in one order)."""
    return [TrainingRun(model=model, history={key: np.asarray(values) for key, values in history[k].items()},
                        final_loss=history[k]["loss"][-1], last_clipped_step=int(last_clipped[k]),
                        lr=lrs[k], batch_size=batches[k])
            for k, model in enumerate(models)]


def _check_run(run) -> TrainingRun:
    if not isinstance(run, TrainingRun):
        raise TypeError(f"run must be a TrainingRun (what train and train_many return), got "
                        f"{type(run).__name__}")
    return run


def _per_model(name: str, value, count: int) -> list:
    if isinstance(value, Sequence | np.ndarray | torch.Tensor) and not isinstance(value, str):
        values = [v.item() if hasattr(v, "item") else v for v in value]
        if len(values) != count:
            raise ValueError(f"{name} must be one value or one per model ({count}), got {len(values)} values")
        return values
    return [value] * count


def train(model, X: torch.Tensor, y: torch.Tensor, *, lr: float, batch_size: int, steps: int,
          seed: int | None = None,
          clip: float | None = 10.0, record_every: int | None = None,
          monitor: Callable | None = None) -> TrainingRun:
    """Train ``model`` in place by SGD on ``(1/2n) Σ (f(x_i) − y_i)²`` and return its :class:`TrainingRun`.

    Parameters
    ----------
    model : DiagonalLinearNetwork or TwoLayerReLU
    X : Tensor [n, d]
    y : Tensor [n]
    lr : float
        The learning rate ``η`` (> 0), constant throughout: the stability theory is about constant ``η``.
    batch_size : int
        ``B`` in ``[1, n]``; indices drawn uniformly with replacement, ``B = n`` is full-batch GD.
    steps : int
    seed : int
        Seed of the sampled indices.
    clip : float or None
        The update is ``η · min(1, clip / ‖∇‖) · ∇``: it tames the first steps from a large
        initialisation and is inactive once the gradient is small (near a minimum). ``None``: no
        clipping.
    record_every : int, optional
        Record the full training loss (and ``monitor``) every this many steps (default ``steps // 100``).
    monitor : callable, optional
        ``monitor(model) -> dict[str, float]``, recorded with the loss.

    Returns
    -------
    TrainingRun
        ``model`` (trained in place), ``history`` (dict of numpy arrays: ``"step"``, ``"loss"`` — the
        full training loss at the recorded steps — ``"clipped"`` — how many of the steps since the
        previous record were clipped — and the monitor's keys), ``final_loss`` (the last recorded loss),
        ``last_clipped_step`` (the last step at which clipping was active, -1 if never), ``lr`` and
        ``batch_size``.
    """
    _check_model(model)
    seed = resolve_seed(seed, "stability.train")
    return train_many([model], X, y, lr=lr, batch_size=batch_size, steps=steps, seed=seed, clip=clip,
                      record_every=record_every, monitor=monitor)[0]


def train_many(models, X: torch.Tensor, y: torch.Tensor, *, lr, batch_size, steps: int, seed=None,
               clip: float | None = 10.0, record_every: int | None = None,
               monitor: Callable | None = None, engine: str = "auto") -> list[TrainingRun]:
    """:func:`train` for several models of one class and shape at once, vectorised over models.

    ``lr``, ``batch_size`` and ``seed`` are one value for all or one per model. Every model draws its
    indices from its own generator (seeded by its ``seed``), so each result is what :func:`train`
    gives for that model alone (up to floating-point summation order). ``X`` [n, d] and ``y`` [n] are
    shared by all models, or ``X`` [K, n, d] and ``y`` [K, n] give model ``k`` its own data set
    ``(X[k], y[k])`` (``K = len(models)``; numpy engine only).

    ``engine`` picks the loop. ``"numpy"`` (CPU only; the default there, ``"auto"``) runs on numpy views
    of the parameters, whose per-operation overhead is a fraction of torch's on these tiny arrays:
    sampled models (``B < n``) and full-batch ones (GD) form two groups, a sampled model costing per
    step what its batch costs, padded to the largest sampled ``B`` of the call. ``"torch"`` (the
    default on other devices) runs in torch on the parameters' device: every model's residuals on all
    ``n`` samples, weighted by how often each sample was drawn, so a call costs per step what its
    largest batch costs — train GD and small-batch SGD in separate calls when ``n`` is large. The two
    loops compute the same steps with different rounding.

    Returns one :class:`TrainingRun` per model, in the order of ``models`` (each ``run.model`` is the
    model passed in, trained in place).
    """
    if seed is None:
        seed = resolve_seed(None, "stability.train_many")
    models = _check_models(models)
    cls = type(models[0])
    shapes = [tuple(p.shape) for p in models[0].parameters()]
    for model in models:
        if type(model) is not cls or [tuple(p.shape) for p in model.parameters()] != shapes:
            raise ValueError("all models must be of one class and shape")
    count = len(models)
    per_model_data = isinstance(X, torch.Tensor) and X.ndim == 3
    if per_model_data:
        if X.shape[0] != count:
            raise ValueError(f"X of shape [K, n, d] must hold one data set per model (K = {count}), got "
                             f"{list(X.shape)}")
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(X.shape[:2]):
            got = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y must be a tensor of shape {list(X.shape[:2])} (one target per row of each "
                             f"X[k]), got {got}")
        for k in range(count):
            _check_data(models[0], X[k], y[k])
        n = X.shape[1]
    else:
        _check_data(models[0], X, y)
        n = X.shape[0]
    steps = check_int("steps", steps, low=1)
    lrs = [check_real("lr", v, low=0, low_open=True) for v in _per_model("lr", lr, count)]
    batches = [check_int("batch_size", v, low=1, high=n) for v in _per_model("batch_size", batch_size, count)]
    seeds = [check_int("seed", v, low=0) for v in _per_model("seed", seed, count)]
    if clip is not None:
        clip = check_real("clip", clip, low=0, low_open=True)
    if record_every is None:
        record_every = max(1, steps // 100)
    record_every = check_int("record_every", record_every, low=1)

    first = models[0].a if cls is DiagonalLinearNetwork else models[0].W
    device, dtype = first.device, first.dtype
    if engine not in ("auto", "numpy", "torch"):
        raise ValueError(f"engine must be 'auto', 'numpy' or 'torch', got {engine!r}")
    numpy_loop = engine == "numpy" or (engine == "auto" and device.type == "cpu")
    if numpy_loop and device.type != "cpu":
        raise ValueError(f"engine='numpy' needs the models on a CPU, got them on {device}")
    if per_model_data and not numpy_loop:
        raise ValueError("X of shape [K, n, d] (one data set per model) needs engine='numpy' (a CPU)")
    X, y = X.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
    loop = _train_numpy if numpy_loop else _train_torch
    return loop(models, X, y, cls=cls, shapes=shapes, n=n, steps=steps, lrs=lrs, batches=batches, seeds=seeds,
                clip=clip, record_every=record_every, monitor=monitor)


def _train_numpy(models, X, y, *, cls, shapes, n, steps, lrs, batches, seeds, clip, record_every, monitor):
    """:func:`train_many`'s numpy loop (CPU): ``X`` [n, d] shared or [K, n, d] one data set per model.
    Returns the runs in the order of ``models``."""
    count, device, dtype = len(models), X.device, X.dtype
    per_model_data = X.ndim == 3
    # Sampled models first, then the full-batch ones: row k of every stacked array is model order[k].
    order = [k for k in range(count) if batches[k] < n] + [k for k in range(count) if batches[k] == n]
    sampled = sum(batches[k] < n for k in range(count))
    ordered = [models[k] for k in order]
    lrs, batches, seeds = ([values[k] for k in order] for values in (lrs, batches, seeds))
    if per_model_data:
        X, y = X[order], y[order]
    # All parameters of model k live in row k of one flat tensor; ``params`` are views into it.
    flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in ordered])
    params, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        params.append(flat[:, start:start + size].view(count, *shape))
        start += size
    width = max(batches[:sampled], default=1)
    generators = [make_generator(int(s), device=device) for s in seeds[:sampled]]
    chunk = 1024

    def draw(length):
        """Indices [length, sampled, width] into the gathered rows (model k's data at offset k n)."""
        rows = [torch.nn.functional.pad(torch.randint(n, (length, b), generator=gen, device=device),
                                        (0, width - b))
                for b, gen in zip(batches[:sampled], generators, strict=True)]
        indices = torch.stack(rows, dim=1)
        if per_model_data:
            indices += (torch.arange(sampled, device=device) * n)[:, None]
        return indices

    history = [{"step": [], "loss": [], "clipped": []} for _ in ordered]
    clipped_since = np.zeros(count, dtype=np.int64)        # clipped steps since the last record

    def write_back():
        with torch.no_grad():
            for k, model in enumerate(ordered):
                for p, stacked in zip(model.parameters(), params, strict=True):
                    p.copy_(stacked[k])

    def record(step):
        losses = 0.5 * (cls._group_predict(params, X) - y).pow(2).mean(dim=1)
        if not bool(torch.isfinite(losses).all()):
            bad = [lrs[k] for k in range(count) if not math.isfinite(losses[k].item())]
            raise FloatingPointError(f"training diverged by step {step} for lr {bad}")
        if monitor is not None:
            write_back()
        for k, model in enumerate(ordered):
            history[k]["step"].append(step)
            history[k]["loss"].append(losses[k].item())
            history[k]["clipped"].append(int(clipped_since[k]))
            if monitor is not None:
                for key, value in monitor(model).items():
                    history[k].setdefault(key, []).append(float(value))
        clipped_since[:] = 0

    # The loop runs on numpy views of the same memory: the arrays below are views of ``flat``, so
    # ``record`` and ``write_back`` see every update.
    def as_array(tensor):
        return tensor.numpy()

    flat_a = as_array(flat)
    params_a = [as_array(p) for p in params]
    groups = []                                           # (rows, params, data, targets, weights)
    if sampled:
        slot_weights = torch.tensor([[1.0 / b if s < b else 0.0 for s in range(width)]
                                     for b in batches[:sampled]], dtype=dtype, device=device)
        gather_X = X[:sampled].reshape(sampled * n, -1) if per_model_data else X
        gather_y = y[:sampled].reshape(-1) if per_model_data else y
        groups.append((slice(0, sampled), [p[:sampled] for p in params_a], as_array(gather_X),
                       as_array(gather_y), as_array(slot_weights)))
    if sampled < count:
        data = (X[sampled:], y[sampled:]) if per_model_data else (X, y)
        groups.append((slice(sampled, count), [p[sampled:] for p in params_a], as_array(data[0]),
                       as_array(data[1]), 1.0 / n))
    grad = as_array(torch.zeros_like(flat))
    grad_parts, start = [], 0                             # column ranges of the parameters in ``grad``
    for shape in shapes:
        size = math.prod(shape)
        grad_parts.append(slice(start, start + size))
        start += size
    eta = as_array(torch.tensor(lrs, dtype=dtype, device=device))
    last_clipped = as_array(torch.full((count,), -1, dtype=torch.long, device=device))
    errors = np.errstate(over="ignore", invalid="ignore", divide="ignore")  # ``record`` reports divergence

    with single_threaded(), torch.no_grad(), errors:
        record(0)
        for step in range(steps):
            if sampled and step % chunk == 0:
                indices = as_array(draw(min(chunk, steps - step)))
            for g, (rows, group_params, data, targets, weights) in enumerate(groups):
                if g == 0 and sampled:
                    picked = indices[step % chunk]                  # [sampled, width]
                    parts = cls._group_gradient(group_params, data[picked], targets[picked], weights)
                else:
                    parts = cls._group_gradient(group_params, data, targets, weights)
                for columns, part in zip(grad_parts, parts, strict=True):
                    grad[rows, columns] = part.reshape(part.shape[0], -1)
            factor = eta
            if clip is not None:
                norm = np.einsum("kp,kp->k", grad, grad) ** 0.5
                factor = eta * (clip / norm).clip(max=1.0)
                last_clipped = np.where(norm > clip, step, last_clipped)
                clipped_since += norm > clip
            flat_a -= factor[:, None] * grad
            if (step + 1) % record_every == 0 or step + 1 == steps:
                record(step + 1)
    write_back()
    runs = _training_runs(ordered, history, last_clipped, lrs, batches)      # row k is model order[k]
    return [runs[order.index(k)] for k in range(count)]


def _train_torch(models, X, y, *, cls, shapes, n, steps, lrs, batches, seeds, clip, record_every, monitor):
    """:func:`train_many`'s torch loop (any device): every model's residuals on all ``n`` samples.
    Returns the runs in the order of ``models``."""
    count, device, dtype = len(models), X.device, X.dtype
    # All parameters of model k live in row k of one flat tensor; ``params`` are views into it.
    flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in models])
    params, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        params.append(flat[:, start:start + size].view(count, *shape))
        start += size
    eta = torch.tensor(lrs, dtype=dtype, device=device)
    width = max(batches)
    full = [b == n for b in batches]
    # Slot weights: 1/B on a model's first B slots, 0 on the padding.
    weights = torch.tensor([[1.0 / b if s < b else 0.0 for s in range(width)] for b in batches],
                           dtype=dtype, device=device)
    generators = [make_generator(int(s), device=device) for s in seeds]
    all_samples = torch.arange(n, device=device)
    chunk = 1024

    def draw(length):
        rows = []
        for k in range(count):
            if full[k]:
                rows.append(all_samples.expand(length, n))
            else:
                picked = torch.randint(n, (length, batches[k]), generator=generators[k], device=device)
                rows.append(torch.nn.functional.pad(picked, (0, width - batches[k])))
        return torch.stack(rows, dim=1)                       # [length, K, width]

    history = [{"step": [], "loss": [], "clipped": []} for _ in models]
    last_clipped = torch.full((count,), -1, dtype=torch.long, device=device)
    clipped_since = torch.zeros(count, dtype=torch.long, device=device)   # since the last record

    def write_back():
        with torch.no_grad():
            for k, model in enumerate(models):
                for p, stacked in zip(model.parameters(), params, strict=True):
                    p.copy_(stacked[k])

    def record(step):
        losses = 0.5 * (cls._stacked_predict(params, X).reshape(count, n) - y).pow(2).mean(dim=1)
        if not bool(torch.isfinite(losses).all()):
            bad = [lrs[k] for k in range(count) if not math.isfinite(losses[k].item())]
            raise FloatingPointError(f"training diverged by step {step} for lr {bad}")
        if monitor is not None:
            write_back()
        counts = clipped_since.tolist()
        for k, model in enumerate(models):
            history[k]["step"].append(step)
            history[k]["loss"].append(losses[k].item())
            history[k]["clipped"].append(counts[k])
            if monitor is not None:
                for key, value in monitor(model).items():
                    history[k].setdefault(key, []).append(float(value))
        clipped_since.zero_()

    with single_threaded(device), torch.no_grad():
        record(0)
        for step in range(steps):
            if step % chunk == 0:
                indices = draw(min(chunk, steps - step))
            grads = cls._stacked_gradient(params, X, y, indices[step % chunk], weights)
            grad = torch.cat([g.reshape(count, -1) for g in grads], dim=1)
            factor = eta
            if clip is not None:
                norm = torch.linalg.vector_norm(grad, dim=1)
                factor = eta * torch.clamp(clip / norm, max=1.0)
                last_clipped = torch.where(norm > clip, step, last_clipped)
                clipped_since += norm > clip
            flat.sub_(factor[:, None] * grad)
            if (step + 1) % record_every == 0 or step + 1 == steps:
                record(step + 1)
    write_back()
    return _training_runs(models, history, last_clipped, lrs, batches)


#: The share of a run's second half at which clipping may act for the run to count as plain constant-η
#: SGD (chapter 4's clipping claims, and its studies' "converged plainly"): 0.2 % of those steps. Under
#: this threshold the second half holds an unclipped stretch of at least :func:`clipping_budget`'s second
#: value, long enough for a clearly positive Lyapunov exponent to show; the share does not say where that
#: stretch lies, so a minimum is reached by plain SGD, and held by it only if the run's last clipped step
#: comes early enough (chapter 4 asks that of the minima its studies count).
CLIP_SHARE = 2e-3


def clipping_budget(steps: int, share: float = CLIP_SHARE) -> tuple[int, int]:
    """What :data:`CLIP_SHARE` allows in the second half of a run of ``steps`` steps.

    Returns ``(clipped, stretch)``: the most clipped steps among the ``steps − steps // 2`` of the
    second half that keep :func:`clipped_fraction` ≤ ``share``, and the length of the longest unclipped
    stretch those steps must leave, ``⌈(half − clipped) / (clipped + 1)⌉`` (``clipped`` steps cut the
    half into at most ``clipped + 1`` unclipped stretches).
    """
    steps = check_int("steps", steps, low=2)
    share = check_real("share", share, low=0, high=1, high_open=True)
    half = steps - steps // 2
    clipped = math.floor(share * half + 1e-9)        # a product a rounding below an integer counts as it
    return clipped, math.ceil((half - clipped) / (clipped + 1))


def clipped_fraction(run: TrainingRun, after: int | None = None) -> float:
    """Share of the steps ``after, …, steps − 1`` of a training run (a :class:`TrainingRun`) at which
    clipping acted.

    Read off ``run.history["clipped"]`` (the clipped steps between consecutive records), so ``after``
    (default ``steps // 2``: the second half of the run) must be a recorded step; with the default
    ``record_every = steps // 100`` the halfway step is recorded whenever ``steps`` is a multiple of 200.
    Unlike ``run.last_clipped_step`` this count does not jump when rounding moves one rare clipped step
    across ``after``.
    """
    history = _check_run(run).history
    steps = np.asarray(history["step"])
    total = int(steps[-1])
    if after is None:
        after = total // 2
    after = check_int("after", after, low=0, high=total - 1)
    if after not in steps:
        raise ValueError(f"after = {after} is not a recorded step (records every "
                         f"{int(steps[1] - steps[0])} steps): the records cannot split the run there")
    return float(np.asarray(history["clipped"])[steps > after].sum() / (total - after))


def excursion_steps(run: TrainingRun) -> int:
    """Clipped steps of a training run (a :class:`TrainingRun`) after its initial clipped phase: its
    excursions.

    From a large initialisation clipping acts on the first steps; the initial phase ends at the first
    record interval of ``run.history["clipped"]`` without a clipped step. What is clipped after that are
    excursions: the iterate strays from the minimum for a step or a few and is pulled back. Their total
    bounds what they can add to :func:`clipped_fraction`'s count wherever they fall, in particular
    after a change of rounding that moves them (a run that never leaves its initial phase counts all
    its clipped steps).
    """
    counts = np.asarray(_check_run(run).history["clipped"])[1:]            # entry 0 is the record at step 0
    unclipped = np.flatnonzero(counts == 0)
    return int(counts[unclipped[0]:].sum()) if len(unclipped) else int(counts.sum())


# ----------------------------------------------------------------------------------------------
# Sharpness: Gauss–Newton trace, λ_max, mean-square stability
# ----------------------------------------------------------------------------------------------

def training_loss(model, X: torch.Tensor, y: torch.Tensor) -> float:
    """``(1/2n) Σ (f(x_i) − y_i)²`` (with the ½, as trained)."""
    _check_model(model)
    X, y = _check_data(model, X, y)
    with torch.no_grad():
        return 0.5 * (model(X) - y).pow(2).mean().item()


def test_error(model, X: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error ``(1/n) Σ (f(x_i) − y_i)²`` on held-out data (no ½)."""
    _check_model(model)
    X, y = _check_data(model, X, y)
    with torch.no_grad():
        return (model(X) - y).pow(2).mean().item()


def per_sample_gradients(model, X: torch.Tensor) -> torch.Tensor:
    """``J`` [n, p], row ``i`` the gradient ``∇_θ f(x_i)`` flattened as the module docstring says,
    by autograd one sample at a time, independently of the models' closed forms."""
    _check_model(model)
    X = _check_data(model, X)
    params = list(model.parameters())
    rows = []
    for x in X:
        grads = torch.autograd.grad(model(x[None, :])[0], params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def gauss_newton_trace(model, X: torch.Tensor, *, backend: str = "auto") -> float:
    """``tr H = (1/n) Σ_i ‖∇_θ f(x_i)‖²`` from the closed-form per-sample gradient norms — the Hessian
    trace of ``(1/2n) Σ (f − y)²`` at an interpolating minimum. For :class:`TwoLayerReLU` the norms come
    from the Triton kernel on a GPU (``backend`` is passed to it)."""
    _check_model(model)
    X = _check_data(model, X)
    if isinstance(model, TwoLayerReLU):
        return model.sq_grad_norms(X, backend=backend).double().mean().item()
    return model.sq_grad_norms(X).mean().item()


def gauss_newton_matvec(model, X: torch.Tensor, u: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """``H u = (1/n) Σ_i g_i (g_i · u)`` for a flat direction ``u`` [p] (no ``H`` or ``J`` formed)."""
    _check_model(model)
    X = _check_data(model, X)
    p = parameter_count(model)
    if not isinstance(u, torch.Tensor) or tuple(u.shape) != (p,):
        raise ValueError(f"u must be a tensor of shape [{p}], got "
                         f"{list(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__}")
    if not u.is_floating_point():
        raise TypeError(f"u must be a floating-point tensor, got dtype {u.dtype}")
    if not torch.isfinite(u).all():
        raise ValueError("u must hold finite numbers, got NaN or infinity")
    out_dtype = u.dtype                                   # computed in the model's dtype, returned in u's
    u = u.to(device=X.device, dtype=X.dtype)
    if isinstance(model, TwoLayerReLU):
        return model.gn_matvec(X, u, backend=backend).to(out_dtype)
    return model.gn_matvec(X, u).to(out_dtype)


def gauss_newton_lambda_max(model, X: torch.Tensor, *, method: str = "auto", iters: int = 100,
                            seed: int | None = None,
                            backend: str = "auto") -> float:
    """Largest eigenvalue of ``H = (1/n) Σ_i g_i g_iᵀ``.

    Parameters
    ----------
    method : {"auto", "exact", "lanczos"}
        ``exact``: ``eigvalsh`` of the n × n Gram matrix ``J Jᵀ / n`` (same nonzero spectrum as ``H``),
        from the closed-form Jacobian; ``lanczos``: Lanczos on :func:`gauss_newton_matvec` (the
        Triton kernel for the ReLU network on a GPU), ``min(iters, n + 1)`` steps; ``auto``: exact
        when ``n · p ≤ 4·10⁶``, else Lanczos.
    iters : int
        Lanczos steps at most. With ``iters > rank(H)`` the answer is exact up to rounding; with fewer
        it is the largest Ritz value, a lower bound on λ_max (compare two values of ``iters`` to see
        whether it has converged).
    """
    seed = resolve_seed(seed, "stability.gauss_newton_lambda_max")
    _check_model(model)
    X = _check_data(model, X)
    if method not in ("auto", "exact", "lanczos"):
        raise ValueError(f"method must be 'auto', 'exact' or 'lanczos', got {method!r}")
    iters = check_int("iters", iters, low=1)
    n, p = X.shape[0], parameter_count(model)
    if method == "exact" or (method == "auto" and n * p <= 4_000_000):
        J = model.jacobian(X)
        return torch.linalg.eigvalsh(J @ J.T / n)[-1].item()
    X_mv = X
    if isinstance(model, TwoLayerReLU) and use_triton(X, backend):
        X_mv = X.float().contiguous()       # the kernel computes in float32: convert X once, not per matvec
    return lanczos_max(lambda u: gauss_newton_matvec(model, X_mv, u, backend=backend), p, min(iters, n + 1),
                        seed=seed, dtype=X.dtype, device=X.device)


def sampling_factor(batch_size: int, n: int) -> float:
    """``q`` in ``E[H_B S H_B] = (1 − q) H S H + q (1/n) Σ_i H_i S H_i`` (``H_i = g_i g_iᵀ``): ``1/B`` for
    ``B < n`` indices drawn with replacement, 0 for full-batch GD (``B = n``)."""
    n = check_int("n", n, low=1)
    batch_size = check_int("batch_size", batch_size, low=1, high=n)
    return 0.0 if batch_size == n else 1.0 / batch_size


def _mean_square_parts(model, X, batch_size, rank_tol):
    """``G``, ``lam``, ``q`` and the maps ``C(S) = ½ (H S + S H)`` and
    ``D(S) = (1 − q) H S H + (q/n) Σ_i (g_iᵀ S g_i) g_i g_iᵀ`` on symmetric ``r × r`` matrices (flattened),
    in the eigenbasis of ``H`` on its range, where ``C`` is diagonal: ``C(S)_jk = ½ (λ_j + λ_k) S_jk``."""
    G, lam = _range_coordinates(model, X, rank_tol)
    n, r = G.shape
    q = sampling_factor(batch_size, n)
    c_diag = 0.5 * (lam[:, None] + lam[None, :])                # [r, r]

    def apply_d(S):
        c = ((G @ S) * G).sum(axis=1)                          # g_iᵀ S g_i  [n]
        return (1 - q) * lam[:, None] * S * lam[None, :] + (q / n) * (G.T * c) @ G

    return r, c_diag, apply_d


def mean_square_radius(model, X: torch.Tensor, *, lr: float, batch_size: int,
                       rank_tol: float = 1e-7) -> float:
    """Spectral radius of the mean-square stability operator on ``range(H)``.

    Linearised SGD ``e ← (I − η H_B) e`` with ``H_B = (1/B) Σ_s g_{i_s} g_{i_s}ᵀ`` moves the second moment
    ``S = E[e eᵀ]`` by ``T(S) = E[(I − η H_B) S (I − η H_B)] = S − 2η C(S) + η² D(S)`` with
    ``C(S) = ½ (H S + S H)`` and ``D(S) = (1 − q) H S H + (q/n) Σ_i (g_iᵀ S g_i) g_i g_iᵀ`` (``q`` from
    :func:`sampling_factor`). The minimum is linearly stable in mean square iff the spectral radius of
    ``T`` is at most 1. On matrices supported on ``null(H)`` ``T`` is the identity, so the radius is
    computed on ``range(H)`` (directions whose singular value in ``J`` exceeds ``rank_tol`` times the
    largest), with ARPACK's Lanczos on the ``r²``-dimensional operator. ``T`` is self-adjoint for
    ``⟨A, S⟩ = tr(Aᵀ S)`` and maps positive semi-definite matrices to positive semi-definite ones, so
    its radius is its largest eigenvalue.

    Forms the per-sample gradients ``J`` [n, p] (closed form) and works on ``r × r`` matrices: for
    small models. Dimensionless.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    _check_model(model)
    X = _check_data(model, X)
    lr = check_real("lr", lr, low=0, low_open=True)
    batch_size = check_int("batch_size", batch_size, low=1, high=X.shape[0])
    r, c_diag, apply_d = _mean_square_parts(model, X, batch_size, rank_tol)

    def apply(vec):
        S = vec.reshape(r, r)
        S = 0.5 * (S + S.T)                                    # the symmetric matrices, where E[e eᵀ] lives
        return (S - 2 * lr * c_diag * S + lr**2 * apply_d(S)).reshape(-1)

    op = LinearOperator((r * r, r * r), matvec=apply, dtype=np.float64)
    with single_threaded():
        value = eigsh(op, k=1, which="LA", v0=np.eye(r).reshape(-1), tol=1e-10, maxiter=50 * r * r,
                      return_eigenvectors=False)[0]
    return float(value)


def mean_square_threshold(model, X: torch.Tensor, *, batch_size: int, rank_tol: float = 1e-7) -> float:
    """The largest learning rate ``η*`` for which ``model``'s parameters are mean-square stable for SGD
    with batch size ``batch_size`` (Mulayoff & Michaeli's exact threshold), in units of learning rate.

    With ``C`` and ``D`` as in :func:`mean_square_radius`, ``T = I − 2η C + η² D`` is self-adjoint and
    its spectral radius is its largest eigenvalue, which is at most 1 iff ``η ⟨S, D S⟩ ≤ 2 ⟨S, C S⟩`` for
    every symmetric ``S`` on ``range(H)``, where ``C`` is positive definite. Hence
    ``η* = 2 / λ_max(C⁻¹ D)``, the top eigenvalue of a generalised eigenproblem on the same ``r²``
    space, computed as that of the symmetric ``C^{-1/2} D C^{-1/2}`` (``C`` is diagonal in the
    eigenbasis of ``H``). ``η / η* ≤ 1`` iff ``mean_square_radius(..., lr=η) ≤ 1``; unlike the radius,
    the ratio is not pinned near 1 by a nearly flat direction of ``H``.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    _check_model(model)
    X = _check_data(model, X)
    batch_size = check_int("batch_size", batch_size, low=1, high=X.shape[0])
    r, c_diag, apply_d = _mean_square_parts(model, X, batch_size, rank_tol)
    scale = 1 / np.sqrt(c_diag)

    def apply(vec):
        S = vec.reshape(r, r)
        S = 0.5 * (S + S.T) * scale
        return (apply_d(S) * scale).reshape(-1)

    op = LinearOperator((r * r, r * r), matvec=apply, dtype=np.float64)
    with single_threaded():
        top = eigsh(op, k=1, which="LA", v0=np.eye(r).reshape(-1), tol=1e-10, maxiter=50 * r * r,
                    return_eigenvectors=False)[0]
    return float(2 / top)


def _range_coordinates(model, X, rank_tol):
    """Per-sample gradients in the eigenbasis of ``H`` restricted to its range: ``G`` [n, r] (numpy,
    float64) with ``(1/n) Gᵀ G = diag(lam)``, and ``lam`` [r] the nonzero eigenvalues of ``H``."""
    rank_tol = check_real("rank_tol", rank_tol, low=0, low_open=True)
    if rank_tol >= 1:
        raise ValueError("rank_tol must be below 1 (a fraction of the largest singular value), "
                         f"got {rank_tol!r}")
    J = model.jacobian(X).detach().cpu().double().numpy()
    with single_threaded():
        U, sv, _ = np.linalg.svd(J, full_matrices=False)   # numpy: far faster than torch's at this size
    keep = sv > rank_tol * sv[0]
    return U[:, keep] * sv[keep], sv[keep] ** 2 / X.shape[0]


def lyapunov_exponents(models, X: torch.Tensor, *, lr, batch_size, steps: int = 4000, chains: int = 32,
                       burn_in: int = 4000, windows: int = 1, seed=None, rank_tol: float = 1e-7,
                       ) -> np.ndarray:
    """Top Lyapunov exponent of linearised SGD at each model's parameters, by simulation, per chain.

    For each model, runs ``e ← (I − η H_B) e`` (``H_B`` as in :func:`mean_square_radius`, indices with
    replacement; ``batch_size = n`` is GD) on ``range(H)`` for ``chains`` independent chains, discards
    the first ``burn_in`` steps, and then measures the growth rate ``(1/steps) log(‖e_end‖ / ‖e_start‖)``
    over ``windows`` consecutive windows of ``steps`` steps each (the chains are renormalised every
    10 steps). Negative: linearised SGD converges almost surely. By Jensen ``2 λ ≤ log ρ(T)``, so
    mean-square stability (:func:`mean_square_radius` ≤ 1) implies it, but not conversely.

    The estimate is biased until the direction of ``e`` has settled on the top Oseledets direction:
    from a random start the faster-contracting directions first drag the rate down, and when the
    smallest eigenvalues of ``H`` are close this takes many thousands of steps. Every chain therefore
    starts at the eigenvector of the smallest nonzero eigenvalue of ``H`` (the slowest direction of
    the mean dynamics, close to the top Oseledets direction at a stable minimum) plus a random
    component of norm 0.1 (so that a faster-growing direction, if any, takes over). Windows that
    agree within their sampling error are the evidence that the burn-in was long enough.

    Parameters
    ----------
    models : sequence of DiagonalLinearNetwork or TwoLayerReLU
        Evaluated at their current parameters, all on the data ``X`` [n, d], or model ``k`` on ``X[k]``
        when ``X`` is [K, n, d] (one data set per model).
    lr, batch_size, seed
        One value for all models or one per model. Every model draws from its own generator, so its
        result does not depend on the other models of the call.
    steps, burn_in : int
        Rounded up to multiples of 10.

    Returns
    -------
    ndarray [len(models), windows, chains]: the growth rate per step of every chain in every window.
    Their mean over chains estimates the exponent; their spread / √chains is its standard error.
    """
    if seed is None:
        seed = resolve_seed(None, "stability.lyapunov_exponents")
    models = _check_models(models)
    count = len(models)
    data = _data_per_model(models, X)
    n = data[0].shape[0]
    lrs = [check_real("lr", v, low=0, low_open=True) for v in _per_model("lr", lr, count)]
    batches = [check_int("batch_size", v, low=1, high=n) for v in _per_model("batch_size", batch_size, count)]
    seeds = [check_int("seed", v, low=0) for v in _per_model("seed", seed, count)]
    block = 10
    steps = block * math.ceil(check_int("steps", steps, low=1) / block)
    burn_in = block * math.ceil(check_int("burn_in", burn_in, low=0) / block)
    windows = check_int("windows", windows, low=1)
    chains = check_int("chains", chains, low=2)
    rates = np.zeros((count, windows, chains))
    # Models run together in three groups — B = 1, 1 < B < n (padded to the group's largest B, the
    # padding slots weighted 0) and GD — in numpy (far less overhead than torch on these tiny arrays),
    # stacked and padded to a common rank r: the padding coordinates of e start at 0 and stay there,
    # since every g_i is 0 on them.
    kinds = ["one" if b == 1 else "gd" if b == n else "many" for b in batches]
    for kind in ("one", "many", "gd"):
        group = [k for k in range(count) if kinds[k] == kind]
        if not group:
            continue
        size = len(group)
        sizes = [batches[k] for k in group]
        width = max(sizes)
        coords = [_range_coordinates(models[k], data[k], rank_tol) for k in group]
        r = max(G.shape[1] for G, _ in coords)
        G, lam = np.zeros((size, n, r)), np.zeros((size, 1, r))
        e = np.zeros((size, chains, r))
        generators = [make_generator(seeds[k]) for k in group]
        for j, ((Gk, lamk), gen) in enumerate(zip(coords, generators, strict=True)):
            rk = Gk.shape[1]
            G[j, :, :rk], lam[j, 0, :rk] = Gk, lamk
            noise = torch.randn(chains, rk, generator=gen, dtype=torch.float64).numpy()
            e[j, :, :rk] = 0.1 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
            e[j, :, int(np.argmin(lamk))] += 1.0
        e /= np.linalg.norm(e, axis=2, keepdims=True)
        eta = np.array([lrs[k] for k in group])[:, None, None]
        # η/B on a model's first B slots, 0 on the padding: [K, 1, width]
        slot_eta = np.array([[lrs[k] / batches[k] if s < batches[k] else 0.0 for s in range(width)]
                             for k in group])[:, None, :]
        G_flat = G.reshape(size * n, r)                          # row j n + i is g_i of model j
        offset = (np.arange(size) * n)[:, None, None]
        growth = np.zeros((size, windows, chains))
        total, chunk = burn_in + windows * steps, 1000
        with single_threaded():
            for step in range(total):
                if kind != "gd" and step % chunk == 0:
                    length = min(chunk, total - step)
                    drawn = [torch.randint(n, (length, chains, b), generator=gen)
                             for b, gen in zip(sizes, generators, strict=True)]
                    padded = [torch.nn.functional.pad(i, (0, width - i.shape[-1])) for i in drawn]
                    indices = torch.stack(padded, dim=1).numpy() + offset     # [len, K, C, w]
                if kind == "gd":
                    e -= eta * lam * e                           # GD: H is diagonal in this basis
                elif kind == "one":
                    g = G_flat[indices[step % chunk, :, :, 0]]   # [K, C, r]
                    e -= (eta[:, :, 0] * np.einsum("kcr,kcr->kc", g, e))[:, :, None] * g
                else:
                    g = G_flat[indices[step % chunk]]            # [K, C, w, r]
                    s = np.einsum("kcbr,kcr->kcb", g, e) * slot_eta
                    e -= np.einsum("kcbr,kcb->kcr", g, s)
                if (step + 1) % block == 0:
                    norm = np.linalg.norm(e, axis=2)
                    if step >= burn_in:
                        growth[:, (step - burn_in) // steps] += np.log(norm)
                    e /= norm[:, :, None]
        rates[group] = growth / steps
    return rates


def lyapunov_exponent(model, X: torch.Tensor, *, lr: float, batch_size: int, steps: int = 4000,
                      chains: int = 32, burn_in: int = 4000, seed: int | None = None, rank_tol: float = 1e-7):
    """Top Lyapunov exponent of linearised SGD at ``model``'s parameters: :func:`lyapunov_exponents`
    for one model and one window.

    Returns
    -------
    (mean, standard_error) : floats, per step; the error is the spread between chains / √chains.
    """
    _check_model(model)
    seed = resolve_seed(seed, "stability.lyapunov_exponent")
    per_chain = lyapunov_exponents([model], X, lr=lr, batch_size=batch_size, steps=steps, chains=chains,
                                   burn_in=burn_in, seed=seed, rank_tol=rank_tol)[0, 0]
    return float(per_chain.mean()), float(per_chain.std(ddof=1) / math.sqrt(chains))


def _gd_moves_away(models, X, y, lrs, directions, eps, steps):
    """For each model: does full-batch GD at its ``lr`` from ``θ + eps·u`` end farther than ``eps`` from θ?"""
    import copy

    starts, copies = [], []
    for model, u in zip(models, directions, strict=True):
        theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        clone = copy.deepcopy(model)
        with torch.no_grad():
            offset = 0
            for p in clone.parameters():
                size = p.numel()
                p.add_(eps * u[offset:offset + size].reshape(p.shape))
                offset += size
        starts.append(theta)
        copies.append(clone)
    try:
        train_many(copies, X, y, lr=list(lrs), batch_size=X.shape[0], steps=steps, clip=None,
                   record_every=steps)
    except FloatingPointError:                      # some run blew up: run them one by one
        if len(copies) == 1:
            return np.array([True])
        return np.array([_gd_moves_away([m], X, y, [lr], [u], eps, steps)[0]
                         for m, lr, u in zip(models, lrs, directions, strict=True)])
    moved = []
    for clone, theta in zip(copies, starts, strict=True):
        end = torch.cat([p.detach().reshape(-1) for p in clone.parameters()])
        distance = torch.linalg.vector_norm(end - theta).item()
        moved.append(not math.isfinite(distance) or distance > eps)
    return np.array(moved)


def gd_escape_threshold(models, X: torch.Tensor, y: torch.Tensor, *, low, high, iters: int = 16,
                        steps: int = 1000, eps: float = 1e-3) -> np.ndarray:
    """The learning rate above which full-batch GD leaves each model's minimum, measured by bisection.

    For a learning rate ``η``, runs real (nonlinear) GD for ``steps`` steps from the model's parameters
    ``θ`` displaced by ``eps`` along the top eigenvector of the Gauss–Newton matrix ``H``, and says GD
    *leaves* if it ends farther than ``eps`` from ``θ`` (or blows up). Linear stability predicts that it
    leaves iff ``η > 2 / λ_max(H)``. Bisection between ``low`` (GD must stay) and ``high`` (GD must
    leave) for ``iters`` halvings; returns the midpoints of the final brackets, or ``nan`` for a model
    whose bracket was wrong at the start. Uses no ``λ_max`` other than for the direction ``u``.

    Parameters
    ----------
    models : sequence of DiagonalLinearNetwork or TwoLayerReLU
        At (near-)interpolating minima of ``(X, y)``; not modified.
    low, high : float or sequence of float
        One bracket for all models or one per model (``0 < low < high``).
    iters, steps : int
    eps : float
        Displacement (parameter units); small enough for the linearisation, large against the distance
        from ``θ`` to the exact minimum.

    Returns
    -------
    ndarray [len(models)] of learning rates.
    """
    models = _check_models(models)
    for model in models:
        X, y = _check_data(model, X, y)
    count = len(models)
    lows = [check_real("low", v, low=0, low_open=True) for v in _per_model("low", low, count)]
    highs = [check_real("high", v, low=0, low_open=True) for v in _per_model("high", high, count)]
    for lo, hi in zip(lows, highs, strict=True):
        if not lo < hi:
            raise ValueError(f"low must be below high, got low={lo!r}, high={hi!r}")
    iters = check_int("iters", iters, low=1)
    steps = check_int("steps", steps, low=1)
    eps = check_real("eps", eps, low=0, low_open=True)
    directions = []
    for model in models:
        J = model.jacobian(X).detach()
        _, vecs = torch.linalg.eigh(J.T @ J / X.shape[0])
        directions.append(vecs[:, -1])
    lo, hi = np.array(lows, dtype=float), np.array(highs, dtype=float)
    valid = ~_gd_moves_away(models, X, y, lo, directions, eps, steps)
    valid &= _gd_moves_away(models, X, y, hi, directions, eps, steps)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        leaves = _gd_moves_away(models, X, y, mid, directions, eps, steps)
        hi = np.where(leaves, mid, hi)
        lo = np.where(leaves, lo, mid)
    return np.where(valid, 0.5 * (lo + hi), np.nan)


# ----------------------------------------------------------------------------------------------
# The norms the sharpness bounds
# ----------------------------------------------------------------------------------------------

def l1_norm(model: DiagonalLinearNetwork) -> float:
    """``‖β‖₁ = Σ_j |a_j b_j|`` of a diagonal linear network."""
    if not isinstance(model, DiagonalLinearNetwork):
        raise TypeError(f"model must be a DiagonalLinearNetwork, got {type(model).__name__}")
    return model.beta().abs().sum().item()


def path_norm(model: TwoLayerReLU) -> float:
    """``Σ_k |v_k| ‖w_k‖``: the path norm of a two-layer ReLU network."""
    if not isinstance(model, TwoLayerReLU):
        raise TypeError(f"model must be a TwoLayerReLU, got {type(model).__name__}")
    return (model.v.detach().abs() * model.W.detach().norm(dim=1)).sum().item()
