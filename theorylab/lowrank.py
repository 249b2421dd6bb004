"""Ordered dropout on a factorised linear layer (chapter 6, Maestro).

A layer ``W = U Vᵀ`` with ``U`` [out, r] and ``V`` [in, r] keeps, under *ordered dropout*, only its first
``k`` components, ``W_k = U_{:, :k} V_{:, :k}ᵀ``, for a rank ``k`` drawn at random. With isotropic inputs
the expected loss is an average of Eckart–Young problems, minimised by the nested truncated SVD.

Inputs of covariance Σ enter the population loss as ``E‖(W_k − A) x‖² = ‖(W_k − A) Σ^{1/2}‖_F²``.
:func:`fit_ordered` minimises that population loss averaged over ``k`` uniform on ``1..r`` (exactly, no
sampling); :func:`ordered_dropout_sgd` is its stochastic version, sampling inputs and one rank per
sample through the per-sample-rank kernel.
"""

from __future__ import annotations

import torch

from .kernels import ordered_lowrank
from .linalg import covariance_with_spectrum, matrix_with_spectrum, psd_sqrt, relative_error
from .seeding import make_generator, resolve_seed
from .training import train
from .utils.validation import (
    check_bool,
    check_float_dtype,
    check_instance,
    check_int,
    check_real,
    check_same_shape,
    check_tensor,
)


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    return check_int(name, value, low=low, high=high)


def _check_layer(layer) -> None:
    check_instance("layer", layer, OrderedLowRankLinear)


class OrderedLowRankLinear(torch.nn.Module):
    """A linear map ``x ↦ U_{:, :k} V_{:, :k}ᵀ x (+ bias)`` whose components are ordered by rank.

    Parameters
    ----------
    in_features, out_features : int
    rank : int, optional
        Number of components ``r`` (default ``min(in_features, out_features)``).
    bias : bool
        Add a learned bias of shape [out].
    seed : int
        Seed of the initialisation (Gaussian, standard deviation ``init_scale``).
    init_scale : float
        Standard deviation of the initial entries of ``U`` and ``V``.

    Attributes
    ----------
    U : Parameter [out, r]
    V : Parameter [in, r]
    """

    def __init__(self, in_features: int, out_features: int, rank: int | None = None, *, bias: bool = False,
                 seed: int | None = None, init_scale: float = 0.1, dtype: torch.dtype = torch.float64):
        seed = resolve_seed(seed, "lowrank.OrderedLowRankLinear")
        super().__init__()
        in_features = _check_int("in_features", in_features, 1)
        out_features = _check_int("out_features", out_features, 1)
        rank = min(in_features, out_features) if rank is None else rank
        rank = _check_int("rank", rank, 1, min(in_features, out_features))
        init_scale = check_real("init_scale", init_scale, low=0, low_open=True)
        bias = check_bool("bias", bias)
        dtype = check_float_dtype("dtype", dtype)
        gen = make_generator(seed)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.U = torch.nn.Parameter(init_scale * torch.randn(out_features, rank, generator=gen, dtype=dtype))
        self.V = torch.nn.Parameter(init_scale * torch.randn(in_features, rank, generator=gen, dtype=dtype))
        self.bias = torch.nn.Parameter(torch.zeros(out_features, dtype=dtype)) if bias else None

    def _check_rank(self, rank):
        if rank is None:
            return self.rank
        return _check_int("rank", rank, 1, self.rank)

    def forward(self, x: torch.Tensor, rank: int | None = None) -> torch.Tensor:
        """``x`` [batch, in] → [batch, out] through the first ``rank`` components (all when None)."""
        rank = self._check_rank(rank)
        x = check_tensor("x", x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape [batch, {self.in_features}], got {list(x.shape)}")
        self._check_dtype("x", x)
        y = x @ self.V[:, :rank] @ self.U[:, :rank].T
        return y if self.bias is None else y + self.bias

    def forward_per_sample(self, x: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
        """Each sample through its own number of components ``ranks`` [batch] (ordered dropout), via
        :func:`theorylab.kernels.ordered_lowrank` (Triton on a GPU)."""
        check_instance("ranks", ranks, torch.Tensor)
        if ranks.numel() and (int(ranks.min()) < 1 or int(ranks.max()) > self.rank):
            raise ValueError(f"ranks must lie in [1, {self.rank}], "
                             f"got [{int(ranks.min())}, {int(ranks.max())}]")
        y = ordered_lowrank(x, self.U, self.V, ranks)
        return y if self.bias is None else y + self.bias

    def _check_dtype(self, name: str, x: torch.Tensor) -> None:
        if x.dtype != self.U.dtype:
            raise TypeError(f"{name} must have the layer's dtype {self.U.dtype}, got {x.dtype}")

    def product(self, rank: int | None = None) -> torch.Tensor:
        """``W_k = U_{:, :k} V_{:, :k}ᵀ`` [out, in] (detached)."""
        rank = self._check_rank(rank)
        return (self.U[:, :rank] @ self.V[:, :rank].T).detach()

    def tail_importance(self) -> torch.Tensor:
        """Maestro's pruning score of each rank, ``‖U_{:, j:}‖_F ‖V_{:, j:}‖_F`` [r] (non-increasing in
        ``j``). Unlike :meth:`importance` it changes under ``u_j → αu_j, v_j → v_j/α``; for balanced
        factors (``‖u_i‖ = ‖v_i‖``, which the group lasso favours) it equals ``Σ_{i≥j} ‖u_i v_iᵀ‖_F``."""
        def tails(M):
            return M.detach().pow(2).sum(dim=0).flip(0).cumsum(0).flip(0).sqrt()
        return tails(self.U) * tails(self.V)

    def importance(self) -> torch.Tensor:
        """Importance of each rank, ``‖u_j‖ ‖v_j‖ = ‖u_j v_jᵀ‖_F`` [r] (invariant to ``u → αu, v → v/α``);
        at the nested truncated SVD it equals the singular values."""
        return (self.U.norm(dim=0) * self.V.norm(dim=0)).detach()


def rank_distribution(rank: int, weights=None) -> torch.Tensor:
    """The probabilities ``p_k`` [rank] of keeping ``k = 1..rank`` components: uniform when ``weights`` is
    None, else ``weights`` (positive, any scale) normalised to sum to 1."""
    rank = _check_int("rank", rank, 1)
    if weights is None:
        return torch.full((rank,), 1.0 / rank, dtype=torch.float64)
    w = check_tensor("rank_weights", weights, dtype=torch.float64).flatten()
    if w.numel() != rank or not bool((w > 0).all()):
        raise ValueError(f"rank_weights must be {rank} positive finite numbers (one per rank), "
                         f"got {w.tolist()}")
    return w / w.sum()


def ordered_loss(layer: OrderedLowRankLinear, A: torch.Tensor, *, cov_sqrt: torch.Tensor | None = None,
                 ordered: bool = True, rank_weights=None) -> torch.Tensor:
    """Population loss ``Σ_k p_k ‖(A − W_k) Σ^{1/2}‖_F²`` over ``k = 1..r`` (``ordered``; ``p_k`` uniform,
    or :func:`rank_distribution` of ``rank_weights``), or the full-rank loss ``‖(A − W_r) Σ^{1/2}‖_F²``
    (plain training). ``cov_sqrt`` is any ``L`` with ``L Lᵀ = Σ`` ([in, in], identity when None). All
    ranks at once: the residuals ``A − W_k`` are a cumulative sum."""
    _check_layer(layer)
    ordered = check_bool("ordered", ordered)
    A = _check_target(layer, A)
    if cov_sqrt is not None:
        cov_sqrt = _check_cov_sqrt(layer, cov_sqrt)
    return _ordered_loss(layer, A, cov_sqrt=cov_sqrt, ordered=ordered, rank_weights=rank_weights)


def _check_target(layer, A, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``A`` as a finite [out, in] tensor on the layer's device, of ``dtype`` (the layer's when None)."""
    A = check_tensor("A", A.detach() if isinstance(A, torch.Tensor) else A, ndim=2, dtype=dtype)
    if tuple(A.shape) != (layer.out_features, layer.in_features):
        raise ValueError(f"A must have shape [{layer.out_features}, {layer.in_features}], "
                         f"got {list(A.shape)}")
    return A.to(dtype=dtype or layer.U.dtype, device=layer.U.device)


def _check_cov_sqrt(layer, cov_sqrt) -> torch.Tensor:
    cov_sqrt = check_tensor("cov_sqrt", cov_sqrt, ndim=2)
    if tuple(cov_sqrt.shape) != (layer.in_features, layer.in_features):
        raise ValueError(f"cov_sqrt must have shape [{layer.in_features}, {layer.in_features}], "
                         f"got {list(cov_sqrt.shape)}")
    return cov_sqrt.to(dtype=layer.U.dtype, device=layer.U.device)


def _ordered_loss(layer, A, *, cov_sqrt, ordered, rank_weights):
    """:func:`ordered_loss` on checked arguments (the training loop checks them once)."""
    U, V = layer.U, layer.V
    if cov_sqrt is not None:
        A, V = A @ cov_sqrt, cov_sqrt.T @ V
    if not ordered:
        return (A - U @ V.T).pow(2).sum()
    components = U.unsqueeze(1) * V.unsqueeze(0)                   # [out, in, r]: u_j v_jᵀ
    residuals = A.unsqueeze(-1) - components.cumsum(dim=-1)        # [out, in, r]: A − W_k
    if rank_weights is None:
        return residuals.pow(2).sum(dim=(0, 1)).mean()
    p = rank_distribution(layer.rank, rank_weights).to(residuals.dtype)
    return (residuals.pow(2).sum(dim=(0, 1)) * p).sum()


def hierarchical_group_lasso(layer: OrderedLowRankLinear, eps: float = 1e-12) -> torch.Tensor:
    """Hierarchical group lasso ``Σ_j (‖U_{:, j:}‖_F + ‖V_{:, j:}‖_F)`` over trailing blocks of ranks
    (``eps`` ≥ 0 inside the square roots keeps the gradient finite at zero)."""
    _check_layer(layer)
    eps = check_real("eps", eps, low=0)

    def tails(M):
        squares = M.pow(2).sum(dim=0)                                # [r]
        return (squares.flip(0).cumsum(0).flip(0) + eps).sqrt()      # ‖M_{:, j:}‖_F for each j
    return tails(layer.U).sum() + tails(layer.V).sum()


def fit_ordered(A, *, steps: int, lr: float, ordered: bool = True, group_lasso: float = 0.0,
                seed: int | None = None, rank: int | None = None, cov=None, rank_weights=None,
                progress: bool = True) -> OrderedLowRankLinear:
    """Fit an :class:`OrderedLowRankLinear` to the linear map ``A`` [out, in] (float64, Adam with cosine
    decay) on the population loss for inputs of covariance ``cov`` (isotropic when None).

    ``ordered=True`` averages the loss over ranks ``k = 1..r`` (ordered dropout, in expectation), with
    probabilities ``rank_weights`` normalised (:func:`rank_distribution`; uniform when None);
    ``ordered=False`` is plain training of the full product. ``group_lasso`` > 0 adds that multiple of
    :func:`hierarchical_group_lasso`. A linear autoencoder (PCA) is ``fit_ordered(I, cov=Σ, rank=k)``.
    """
    seed = resolve_seed(seed, "lowrank.fit_ordered")
    A = check_tensor("A", A, dtype=torch.float64)
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D matrix [out, in], got shape {list(A.shape)}")
    steps = _check_int("steps", steps, 1)
    lr = check_real("lr", lr, low=0, low_open=True)
    group_lasso = check_real("group_lasso", group_lasso, low=0)
    ordered, progress = check_bool("ordered", ordered), check_bool("progress", progress)
    out_features, in_features = A.shape
    cov_sqrt = None
    if cov is not None:
        cov = check_tensor("cov", cov, ndim=2, dtype=torch.float64)
        if cov.shape != (in_features, in_features):
            raise ValueError(f"cov must have shape [{in_features}, {in_features}], got {list(cov.shape)}")
        cov_sqrt = psd_sqrt(cov, name="cov")
    layer = OrderedLowRankLinear(in_features, out_features, rank, seed=seed)
    if rank_weights is not None:
        rank_distribution(layer.rank, rank_weights)                   # validates before training
    scale = A.pow(2).sum() if cov_sqrt is None else (A @ cov_sqrt).pow(2).sum()

    def loss(_step):
        value = _ordered_loss(layer, A, cov_sqrt=cov_sqrt, ordered=ordered, rank_weights=rank_weights) / scale
        if group_lasso:
            value = value + group_lasso * hierarchical_group_lasso(layer)
        return value

    train(layer.parameters(), loss, steps=steps, lr=lr, desc="ordered dropout" if ordered else "plain",
          progress=progress)
    return layer


def group_lasso_importances(singular_values, rank: int, weight: float, *,
                            iterations: int = 200) -> torch.Tensor:
    """Predicted importances ``s_i`` [k] of the components kept by ordered dropout with the hierarchical
    group lasso, for a target with the ``k`` non-zero ``singular_values`` (decreasing), a layer of
    ``rank`` r ≥ k components, isotropic inputs, ranks uniform on ``1..r`` and the objective
    ``mean_k ‖W_k − A‖_F² / ‖A‖_F² + weight · Σ_j (‖U_{:, j:}‖_F + ‖V_{:, j:}‖_F)`` (:func:`fit_ordered`).

    At a minimiser aligned with the singular pairs, with balanced factors and the trailing ``r − k``
    components at zero, the stationarity condition in ``s_i`` reads
    ``σ_i − s_i = weight · r ‖A‖² / (2 (r − i + 1)) · Σ_{j≤i} (Σ_{l=j}^{k} s_l)^{-1/2}``; it is solved here
    by fixed-point iteration, starting from ``s = σ`` (a contraction for small ``weight``)."""
    sig = check_tensor("singular_values", singular_values, ndim=1, dtype=torch.float64)
    if not bool((sig > 0).all()) or not bool((sig[:-1] >= sig[1:]).all()):
        raise ValueError(f"singular_values must be positive and non-increasing, got {sig.tolist()}")
    k = sig.numel()
    rank = _check_int("rank", rank, k)
    weight = check_real("weight", weight, low=0)
    iterations = _check_int("iterations", iterations, 1)
    scale = sig.pow(2).sum()
    counts = rank - torch.arange(k, dtype=torch.float64)               # r − i + 1 for i = 1..k
    s = sig.clone()
    for _ in range(iterations):
        tails = s.flip(0).cumsum(0).flip(0)                            # Σ_{l≥j} s_l
        if not bool((tails > 0).all()):
            raise ValueError(f"weight {weight!r} is too large: a kept component is driven to zero")
        s = sig - weight * rank * scale / (2 * counts) * tails.rsqrt().cumsum(0)
    return s


def truncated_svd(A: torch.Tensor, k: int) -> torch.Tensor:
    """Best rank-``k`` approximation ``A_k`` of ``A`` [out, in] (Eckart–Young), for ``k`` in
    ``0..min(A.shape)`` (``k = 0`` gives the zero matrix)."""
    A = check_tensor("A", A, ndim=2, dtype=torch.float64)
    k = check_int("k", k, low=0, high=min(A.shape))
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return (U[:, :k] * S[:k]) @ Vh[:k]


def rank_losses(layer: OrderedLowRankLinear, A, *, cov_sqrt=None) -> torch.Tensor:
    """The loss of each truncation, ``‖(A − W_k) Σ^{1/2}‖_F²`` for ``k = 1..r`` [r] (float64, detached):
    the terms that :func:`ordered_loss` averages, so that any rank distribution ``p`` (even one with
    zeros, which :func:`rank_distribution` refuses) gives the objective ``(p * rank_losses).sum()``."""
    _check_layer(layer)
    A = check_tensor("A", A, ndim=2, dtype=torch.float64)
    if tuple(A.shape) != (layer.out_features, layer.in_features):
        raise ValueError(f"A must have shape [{layer.out_features}, {layer.in_features}], "
                         f"got {list(A.shape)}")
    U, V = layer.U.detach().double(), layer.V.detach().double()
    if cov_sqrt is not None:
        cov_sqrt = check_tensor("cov_sqrt", cov_sqrt, ndim=2, dtype=torch.float64)
        if tuple(cov_sqrt.shape) != (layer.in_features, layer.in_features):
            raise ValueError(f"cov_sqrt must have shape [{layer.in_features}, {layer.in_features}], "
                             f"got {list(cov_sqrt.shape)}")
        A, V = A @ cov_sqrt, cov_sqrt.T @ V
    residuals = A.unsqueeze(-1) - (U.unsqueeze(1) * V.unsqueeze(0)).cumsum(dim=-1)   # A − W_k
    return residuals.pow(2).sum(dim=(0, 1))


def eckart_young_excess(layer: OrderedLowRankLinear, A) -> torch.Tensor:
    """``(‖W_k − A‖_F² − Σ_{i>k} σ_i²) / ‖A‖_F²`` for ``k = 1..r`` [r] (isotropic inputs): how far each
    truncation of the layer is above the best rank-``k`` fit. Non-negative up to rounding
    (Eckart–Young); the ordered-dropout objective's excess over its optimum is ``Σ_k p_k`` times these."""
    _check_layer(layer)
    A = check_tensor("A", A, ndim=2, dtype=torch.float64)
    losses = rank_losses(layer, A)
    s = torch.linalg.svdvals(A)
    tails = s.pow(2).flip(0).cumsum(0).flip(0)                         # Σ_{i≥k} σ_i², k = 1..len(s)
    best = torch.cat([tails[1:], tails.new_zeros(1)])[:layer.rank]     # Σ_{i>k} σ_i²
    return (losses - best) / s.pow(2).sum()


def nested_error_bound(layer: OrderedLowRankLinear, A) -> torch.Tensor:
    """The bound ``‖W_k − A_k‖_F ≤ (σ_k / δ_k · excess_k)^{1/2}`` of chapter 6, relative to ``‖A‖_F``,
    for ``k = 1..r`` [r]: ``δ_k = σ_k − σ_{k+1}`` (``σ_{k+1} = 0`` beyond ``min(A.shape)``) and ``excess_k``
    the :func:`eckart_young_excess` (negative rounding clipped to 0). It holds for any ``W_k`` of rank
    at most ``k``; ``inf`` where ``σ_k = σ_{k+1} > 0`` (a tie: no bound; through rounding of the computed
    singular values, a huge number rather than ``inf``), and ``σ_k / δ_k`` is read as 1
    where ``σ_k = 0`` (then ``A_k = A`` and ``‖W_k − A_k‖² = excess_k``)."""
    _check_layer(layer)
    A = check_tensor("A", A, ndim=2, dtype=torch.float64)
    excess = eckart_young_excess(layer, A).clamp_min(0)
    s = torch.linalg.svdvals(A)
    s = torch.where(s > 1e-12 * s[0], s, torch.zeros_like(s))        # rounding of a rank-deficient A → 0
    s_next = torch.cat([s, s.new_zeros(1)])[1:layer.rank + 1]
    s_k = s[:layer.rank]
    gap = s_k - s_next
    factor = torch.where(s_k > 0, s_k / gap, torch.ones_like(s_k))   # σ/0 = inf for a tie
    return (factor * excess).sqrt()


def nested_errors(layer: OrderedLowRankLinear, A) -> torch.Tensor:
    """``‖U_{:k} V_{:k}ᵀ − A_k‖_F / ‖A‖_F`` for ``k = 1..r`` [r] (float64)."""
    _check_layer(layer)
    A = _check_target(layer, A, torch.float64)
    left, s, right_t = torch.linalg.svd(A, full_matrices=False)   # one SVD serves every k
    components = layer.U.detach().double().unsqueeze(1) * layer.V.detach().double().unsqueeze(0)
    targets = (left[:, None, :layer.rank] * s[:layer.rank]) * right_t[:layer.rank].T[None]  # σ_j a_j c_jᵀ
    if layer.rank > len(s):
        raise ValueError(f"layer rank {layer.rank} exceeds min(A.shape) = {len(s)}")
    residual = (components - targets).cumsum(dim=-1)                 # W_k − A_k for every k
    return residual.pow(2).sum(dim=(0, 1)).sqrt() / A.norm()


def column_alignment(vectors: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``|cos|`` between matching columns of ``vectors`` and ``reference`` (both [dim, k]) [k]."""
    vectors = check_tensor("vectors", vectors.detach() if isinstance(vectors, torch.Tensor) else vectors,
                           ndim=2, dtype=torch.float64)
    reference = check_tensor("reference", reference.detach() if isinstance(reference, torch.Tensor)
                             else reference, ndim=2, dtype=torch.float64)
    check_same_shape("vectors", vectors, "reference", reference)
    cos = (vectors * reference).sum(0) / (vectors.norm(dim=0) * reference.norm(dim=0))
    return cos.abs()


def principal_angle_cosines(P: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Cosines of the principal angles between the column spans of ``P`` and ``Q`` ([dim, k] each, of
    full column rank), in decreasing order; all 1 when the spans coincide. A rank-deficient ``P`` or
    ``Q`` has no ``k``-dimensional span to compare: it is refused (``ValueError``)."""
    P = check_tensor("P", P.detach() if isinstance(P, torch.Tensor) else P, ndim=2, dtype=torch.float64)
    Q = check_tensor("Q", Q.detach() if isinstance(Q, torch.Tensor) else Q, ndim=2, dtype=torch.float64)
    if P.shape[0] != Q.shape[0]:
        raise ValueError(f"P and Q must have the same number of rows, "
                         f"got {list(P.shape)} and {list(Q.shape)}")
    bases = []
    for name, M in (("P", P), ("Q", Q)):
        basis, R = torch.linalg.qr(M)
        diag = R.diagonal().abs()
        tiny = 1e-10 * max(diag.max().item(), 1e-300) if diag.numel() else 0.0
        if M.shape[1] > M.shape[0]:
            raise ValueError(f"{name} must have full column rank (linearly independent columns), "
                             f"got a {list(M.shape)} matrix with more columns than rows")
        if diag.numel() == 0 or diag.min() <= tiny:
            ratio = (diag.min() / diag.max()).item() if diag.numel() and diag.max() > 0 else 0.0
            raise ValueError(f"{name} must have full column rank (linearly independent columns), "
                             f"got a {list(M.shape)} matrix whose QR diagonal has min/max |R_ii| = "
                             f"{ratio:.1e} <= 1e-10 (columns nearly dependent)")
        bases.append(basis)
    return torch.linalg.svdvals(bases[0].T @ bases[1]).clamp(max=1.0)


def sample_ranks(batch: int, rank: int, *, generator=None, device=None) -> torch.Tensor:
    """Ranks ``k_s`` uniform on ``1..rank`` for ``batch`` samples (int64) — ordered dropout's sampler.

    ``generator`` is a ``torch.Generator``, a seed, or ``None`` (the stream ``"lowrank.sample_ranks"``
    of ``THEORYLAB_SEED``)."""
    batch = _check_int("batch", batch, 1)
    rank = _check_int("rank", rank, 1)
    if not isinstance(generator, torch.Generator):
        generator = resolve_seed(None if generator is None else check_int("generator", generator, low=0),
                                 "lowrank.sample_ranks")
    gen = make_generator(generator, device=device or "cpu")
    return torch.randint(1, rank + 1, (batch,), generator=gen, device=device)


def ordered_dropout_sgd(layer: OrderedLowRankLinear, A: torch.Tensor, *, steps: int, batch: int, lr: float,
                        seed: int | None = None, progress: bool = True) -> torch.Tensor:
    """Train ``layer`` on samples: ``x ~ N(0, I)``, ``y = A x``, one rank ``k_s`` per sample, loss
    ``mean_s ‖y_s − W_{k_s} x_s‖² / ‖A‖_F²``, through the per-sample-rank kernel. Returns the losses."""
    seed = resolve_seed(seed, "lowrank.ordered_dropout_sgd")
    _check_layer(layer)
    steps = _check_int("steps", steps, 1)
    batch = _check_int("batch", batch, 1)
    lr = check_real("lr", lr, low=0, low_open=True)
    device, dtype = layer.U.device, layer.U.dtype
    A = _check_target(layer, A)
    gen = make_generator(seed, device=device)
    norm2 = A.pow(2).sum()
    # targets y = A x through A's thin SVD restricted to its non-zero singular values: the same map
    # (up to rounding), but O(d·rank A) per sample instead of O(d²) when A has low rank
    left, s, right_t = torch.linalg.svd(A.double(), full_matrices=False)
    keep = s > s[0] * 1e-12 if len(s) else s > 0
    factor_in = (right_t[keep].T * s[keep]).to(dtype)               # [in, rank A]
    factor_out = left[:, keep].T.contiguous().to(dtype)              # [rank A, out]

    def loss(_step):
        x = torch.randn(batch, layer.in_features, generator=gen, device=device, dtype=dtype)
        ranks = torch.randint(1, layer.rank + 1, (batch,), generator=gen, device=device)
        residual = layer.forward_per_sample(x, ranks) - (x @ factor_in) @ factor_out
        return residual.pow(2).sum(1).mean() / norm2

    return train(layer.parameters(), loss, steps=steps, lr=lr, desc="ordered dropout (sampled)",
                 progress=progress)


__all__ = ["OrderedLowRankLinear", "ordered_loss", "hierarchical_group_lasso", "fit_ordered",
           "group_lasso_importances", "rank_distribution",
           "truncated_svd", "rank_losses", "eckart_young_excess", "nested_error_bound", "nested_errors",
           "column_alignment", "principal_angle_cosines",
           "sample_ranks", "ordered_dropout_sgd",
           # re-exported from theorylab.linalg for the chapter
           "matrix_with_spectrum", "covariance_with_spectrum", "psd_sqrt", "relative_error"]
