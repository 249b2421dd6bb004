"""Learning rates as a function of batch size (chapter 7, Granziol, Zohren & Roberts).

The mini-batch Hessian of least squares, ``H_B = (1/B) Σ_{i≤B} x_i x_iᵀ`` with ``x ~ N(0, Σ)``, is a
Wishart matrix: its spectrum follows the Marchenko–Pastur law of ratio ``q = d/B``
(:func:`marchenko_pastur`), and a spike of Σ becomes an outlier above the BBP threshold
(:func:`spike_outlier`). Linearised SGD on online Gaussian least squares,
``e ← (I − η H_B) e``, is stable in mean square iff ``Σ_k ηλ_k / (2 − η(1 + 1/B)λ_k) < B``
(:func:`ms_threshold`, :func:`ms_rate`); :func:`lyapunov_exponents` measures the typical
(almost-sure) growth rate by simulation, and :func:`sgd_risk`, :func:`expected_sgd_risk` and
:func:`rmsprop_risk` give the excess risk after a fixed sample budget, for the best-learning-rate
sweeps.

Conventions: the loss is ``½ E (xᵀw − y)²``, so its Hessian is Σ and gradient descent is stable for
``η < 2/λ_max``. Eigenvalues of Σ are given as a 1-D tensor ``eigenvalues`` [d] (Σ is diagonal in its
eigenbasis; nothing below depends on the basis). Everything is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .seeding import make_generator, resolve_seed
from .utils.stats import loglog_slope  # re-exported: it moved to theorylab.utils.stats
from .utils.validation import check_bool, check_choice, check_int, check_real, check_tensor

__all__ = ["MarchenkoPastur", "marchenko_pastur", "wigner_edge", "spike_outlier", "bbp_batch",
           "outlier_learning_rate", "batch_hessian_eigenvalues", "subsample_top_eigenvalue",
           "additive_top_eigenvalue", "second_moment_step", "ms_rate", "ms_threshold",
           "isotropic_ms_threshold", "small_batch_threshold", "large_batch_threshold",
           "frozen_rmsprop_threshold", "momentum_second_moment_step", "momentum_ms_rate",
           "momentum_ms_threshold", "frozen_adam_threshold", "momentum_sgd_moments", "lyapunov_exponents",
           "expected_sgd_risk", "sgd_risk", "rmsprop_risk", "best_lr", "loglog_slope",
           "tracy_widom_edge"]

DTYPE = torch.float64
#: Mean of the Tracy–Widom (β = 1) law, the finite-size shift of a real Wishart's top eigenvalue.
TW1_MEAN = -1.2065


def _eigenvalues(value) -> torch.Tensor:
    lam = check_tensor("eigenvalues", value, ndim=1, dtype=DTYPE)
    if (lam <= 0).any():
        raise ValueError(f"eigenvalues must be positive, got a minimum of {lam.min().item():.4g}")
    return lam


def _batch(value, name="batch") -> int:
    return check_int(name, value, low=1)


def _lrs(value) -> torch.Tensor:
    lrs = check_tensor("lrs", value, dtype=DTYPE)
    if lrs.ndim > 1:
        raise ValueError(f"lrs must be a number or a 1-D list of learning rates, got shape {list(lrs.shape)}")
    lrs = lrs.reshape(-1)
    if (lrs <= 0).any():
        raise ValueError(f"lrs must be positive, got a minimum of {lrs.min().item():.4g}")
    return lrs


# --------------------------------------------------------------------------------------------------
# Random-matrix laws
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MarchenkoPastur:
    """The Marchenko–Pastur law of ratio ``q = d/B`` (unit variance): the limit spectrum of
    ``(1/B) Xᵀ X`` for ``X`` [B, d] with i.i.d. N(0, 1) entries.

    Attributes
    ----------
    q : float
    lower, upper : float
        Edges of the continuous part, ``(1 ∓ √q)²``.
    atom : float
        Mass at 0, ``max(0, 1 − 1/q)`` (the ``d − B`` zero eigenvalues when ``B < d``).
    mean, variance : float
        ``1`` and ``q``.
    """

    q: float
    lower: float
    upper: float
    atom: float
    mean: float
    variance: float

    def density(self, x) -> torch.Tensor:
        """Density of the continuous part at ``x`` (any shape; it integrates to ``1 − atom``)."""
        x = torch.as_tensor(x, dtype=DTYPE)
        inside = (x > self.lower) & (x < self.upper)
        root = torch.sqrt(((self.upper - x) * (x - self.lower)).clamp_min(0))
        out = root / (2 * math.pi * self.q * x.clamp_min(1e-300))
        return torch.where(inside, out, torch.zeros_like(out))

    def cdf(self, x, *, grid: int = 4001) -> torch.Tensor:
        """Distribution function at ``x`` (atom included), by the trapezoidal rule on a grid in the
        variable ``θ`` of ``x = (1 + q − 2√q cos θ)`` where the density has no singular edge."""
        x = torch.as_tensor(x, dtype=DTYPE)
        theta = torch.linspace(0, math.pi, grid, dtype=DTYPE)
        s = math.sqrt(self.q)
        xs = 1 + self.q - 2 * s * torch.cos(theta)
        # dx = 2√q sin θ dθ and √((b − x)(x − a)) = 2√q sin θ
        integrand = (2 * s * torch.sin(theta)) ** 2 / (2 * math.pi * self.q * xs.clamp_min(1e-300))
        cum = torch.cat([torch.zeros(1, dtype=DTYPE),
                         torch.cumsum((integrand[1:] + integrand[:-1]) / 2 * (theta[1] - theta[0]), 0)])
        idx = torch.searchsorted(xs, x.reshape(-1).clamp(self.lower, self.upper))
        idx = idx.clamp(1, grid - 1)
        x0, x1, c0, c1 = xs[idx - 1], xs[idx], cum[idx - 1], cum[idx]
        frac = ((x.reshape(-1).clamp(self.lower, self.upper) - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0, 1)
        cont = (c0 + frac * (c1 - c0)) * (1 - self.atom) / cum[-1]
        out = self.atom * (x.reshape(-1) >= 0) + cont
        return out.reshape(x.shape)


def marchenko_pastur(q) -> MarchenkoPastur:
    """The Marchenko–Pastur law of ratio ``q = d/B > 0`` (see :class:`MarchenkoPastur`)."""
    q = check_real("q", q, low=0, low_open=True)
    s = math.sqrt(q)
    return MarchenkoPastur(q, (1 - s) ** 2, (1 + s) ** 2, max(0.0, 1 - 1 / q), 1.0, q)


def wigner_edge(q) -> float:
    """Right edge ``1 + 2√q`` of a semicircle of mean 1 and variance ``q``: the additive-noise picture
    of a batch Hessian with the same spectral variance as the Wishart one."""
    q = check_real("q", q, low=0)
    return 1 + 2 * math.sqrt(q)


def tracy_widom_edge(d, batch) -> float:
    """Expected top eigenvalue of ``(1/B) Xᵀ X``, ``X`` [B, d] standard Gaussian, to the order of the
    Tracy–Widom fluctuations: ``(μ + TW₁-mean·σ)/B`` with Johnstone's centring
    ``μ = (√(B − ½) + √(d − ½))²`` and scale ``σ = (√(B − ½) + √(d − ½))(1/√(B − ½) + 1/√(d − ½))^{1/3}``."""
    d, batch = check_int("d", d, low=2), check_int("batch", batch, low=2)
    a, b = math.sqrt(batch - 0.5), math.sqrt(d - 0.5)
    mu = (a + b) ** 2
    sigma = (a + b) * (1 / a + 1 / b) ** (1 / 3)
    return (mu + TW1_MEAN * sigma) / batch


def spike_outlier(theta, q) -> tuple[float, float]:
    """Top eigenvalue of the batch Hessian for ``Σ = I + θ u uᵀ`` in the limit ``d, B → ∞``, ``d/B = q``,
    and the squared overlap ``|⟨v₁, u⟩|²`` of its eigenvector with the spike.

    Above the BBP threshold (``q < θ²``): the outlier ``(1 + θ)(1 + q/θ)`` with overlap
    ``(1 − q/θ²)/(1 + q/θ)``. Below it: the bulk edge ``(1 + √q)²`` and overlap 0.
    """
    theta = check_real("theta", theta, low=0, low_open=True)
    q = check_real("q", q, low=0)
    if q < theta**2:
        return (1 + theta) * (1 + q / theta), (1 - q / theta**2) / (1 + q / theta)
    return (1 + math.sqrt(q)) ** 2, 0.0


def bbp_batch(theta, d) -> float:
    """The batch size ``d/θ²`` above which a spike ``θ`` of Σ makes an outlier of ``H_B``."""
    theta = check_real("theta", theta, low=0, low_open=True)
    d = check_int("d", d, low=1)
    return d / theta**2


def outlier_learning_rate(theta, d, batch) -> float:
    """The per-batch learning-rate limit ``2/λ₁(H_B)`` predicted by :func:`spike_outlier` for
    ``Σ = I + θ u uᵀ`` in dimension ``d``: ``(2/(1 + θ))/(1 + B_c/B)`` with ``B_c = d/θ`` above BBP."""
    d, batch = check_int("d", d, low=1), _batch(batch)
    top, _ = spike_outlier(theta, d / batch)
    return 2 / top


# --------------------------------------------------------------------------------------------------
# Batch-Hessian spectra
# --------------------------------------------------------------------------------------------------

def batch_hessian_eigenvalues(eigenvalues, batch, draws, *, seed=None, spike_overlap=False):
    """Spectra of ``draws`` independent batch Hessians ``H_B = (1/B) Σ_{i≤B} x_i x_iᵀ``,
    ``x ~ N(0, diag(eigenvalues))``.

    Parameters
    ----------
    eigenvalues : tensor [d]
        Eigenvalues of Σ (positive).
    batch : int
        Batch size ``B``.
    draws : int
        Number of independent batches.
    seed : int or torch.Generator, optional
    spike_overlap : bool
        Also return ``|⟨v₁, e₁⟩|²``, the squared overlap of each top eigenvector with the first axis.

    Returns
    -------
    spectra : tensor [draws, d]
        Eigenvalues in decreasing order (``d − B`` of them exactly 0 when ``B < d``).
    overlap : tensor [draws]
        Only with ``spike_overlap=True``.
    """
    lam = _eigenvalues(eigenvalues)
    batch, draws = _batch(batch), check_int("draws", draws, low=1)
    spike_overlap = check_bool("spike_overlap", spike_overlap)
    gen = _gen(seed, "batchsize.batch_hessian_eigenvalues")
    d = lam.numel()
    X = torch.randn(draws, batch, d, generator=gen, dtype=DTYPE) * lam.sqrt()
    if batch < d:        # the non-zero eigenvalues are those of the B×B Gram matrix
        vals, vecs = torch.linalg.eigh(X @ X.transpose(1, 2) / batch)
        spectra = torch.cat([vals.flip(-1), torch.zeros(draws, d - batch, dtype=DTYPE)], dim=1)
        top = X.transpose(1, 2) @ vecs[:, :, -1:]          # [draws, d, 1]: Xᵀu ∝ v₁
        top = top[:, :, 0] / top[:, :, 0].norm(dim=1, keepdim=True)
    else:
        vals, vecs = torch.linalg.eigh(X.transpose(1, 2) @ X / batch)
        spectra, top = vals.flip(-1), vecs[:, :, -1]
    if spike_overlap:
        return spectra, top[:, 0] ** 2
    return spectra


def subsample_top_eigenvalue(X, batch, draws, *, seed=None) -> torch.Tensor:
    """Top eigenvalue of ``(1/B) X_Iᵀ X_I`` for ``draws`` index sets ``I`` of size ``B`` drawn without
    replacement from the ``n`` rows of the fixed data ``X`` [n, d]. Returns a tensor [draws]."""
    X = check_tensor("X", X, ndim=2, dtype=DTYPE)
    n = X.shape[0]
    batch, draws = check_int("batch", batch, low=1, high=n), check_int("draws", draws, low=1)
    gen = _gen(seed, "batchsize.subsample_top_eigenvalue")
    out = torch.empty(draws, dtype=DTYPE)
    for k in range(draws):
        rows = X[torch.randperm(n, generator=gen)[:batch]]
        gram = rows @ rows.T if batch < X.shape[1] else rows.T @ rows
        out[k] = torch.linalg.eigvalsh(gram / batch)[-1]
    return out


def additive_top_eigenvalue(beta, sigma, size, batch, draws, *, seed=None) -> torch.Tensor:
    """Top eigenvalue of the additive (Wigner) model ``β e₁e₁ᵀ + s·W/√P`` with ``W`` a GOE matrix
    [P, P] (off-diagonal variance 1) and ``s² = Pσ²/B``: the semicircle of radius ``2s`` plus a spike.

    Theory: ``β + s²/β`` when ``β > s`` (above BBP, ``B > Pσ²/β²``), else the edge ``2s``.
    Returns a tensor [draws].
    """
    beta = check_real("beta", beta, low=0)
    sigma = check_real("sigma", sigma, low=0, low_open=True)
    size, batch, draws = check_int("size", size, low=2), _batch(batch), check_int("draws", draws, low=1)
    gen = _gen(seed, "batchsize.additive_top_eigenvalue")
    s = math.sqrt(size * sigma**2 / batch)
    A = torch.randn(draws, size, size, generator=gen, dtype=DTYPE)
    W = (A + A.transpose(1, 2)) / math.sqrt(2)
    M = s * W / math.sqrt(size)
    M[:, 0, 0] += beta
    return torch.linalg.eigvalsh(M)[:, -1]


# --------------------------------------------------------------------------------------------------
# Mean-square stability of linearised SGD on online Gaussian least squares
# --------------------------------------------------------------------------------------------------

def _kurtosis(value) -> float:
    return check_real("kurtosis", value, low=1)


def _fourth_moment_factor(kurtosis, batch) -> float:
    """``c_κ = 1 + (κ − 2)/B``: the coefficient of ``λ_k² s_k`` in the diagonal of ``E[H_B S H_B]`` for
    inputs ``x = Σ^{1/2} z`` with independent standardised coordinates of fourth moment ``E z⁴ = κ``."""
    return 1 + (kurtosis - 2) / batch


def second_moment_step(lr, eigenvalues, batch, s, *, noise=0.0, kurtosis=3.0) -> torch.Tensor:
    """One step of the second moment of linearised SGD, for diagonal ``S = diag(s)``:
    ``E[(I − ηH_B) S (I − ηH_B)] + η²σ²Σ/B``, whose diagonal is

    ``s'_k = (1 − 2ηλ_k + η²c_κλ_k²) s_k + (η²/B) λ_k Σ_j λ_j s_j + η²σ²λ_k/B``,  ``c_κ = 1 + (κ − 2)/B``

    (Gaussian inputs, ``κ = 3``: ``E[H_B S H_B] = (1 + 1/B) ΣSΣ + (1/B) tr(ΣS) Σ``; for inputs
    ``x = Σ^{1/2} z`` with independent standardised coordinates, ``κ = E z_k⁴``). ``s`` may be [d] or
    [..., d] (any leading shape, broadcast against ``lr`` of shape [...] or a number); ``noise`` is the
    label-noise standard deviation σ. Returns a tensor shaped like ``s``.
    """
    lam = _eigenvalues(eigenvalues)
    batch = _batch(batch)
    noise = check_real("noise", noise, low=0)
    c = _fourth_moment_factor(_kurtosis(kurtosis), batch)
    s = check_tensor("s", s, dtype=DTYPE, nonnegative=True)      # a second moment: s_k = E e_k² ≥ 0
    if s.ndim == 0 or s.shape[-1] != lam.numel():
        raise ValueError(f"s must end in the dimension d = {lam.numel()} of the eigenvalues, "
                         f"got shape {list(s.shape)}")
    if isinstance(lr, bool | np.bool_):
        raise TypeError(f"lr must be a number or a tensor of learning rates, got bool {lr!r}")
    lr = check_tensor("lr", lr, dtype=DTYPE, nonempty=False, positive=True)
    eta = lr[..., None]
    diag = 1 - 2 * eta * lam + eta**2 * c * lam**2
    return diag * s + eta**2 / batch * lam * ((s * lam).sum(-1, keepdim=True) + noise**2)


def ms_rate(lr, eigenvalues, batch, *, kurtosis=3.0) -> float:
    """Spectral radius ``ρ`` of the second-moment map of linearised SGD (learning rate ``lr``, batch
    ``batch``, covariance eigenvalues ``eigenvalues``): ``E‖e_t‖²`` grows like ``ρ^t``.

    The map leaves diagonal matrices invariant, acting there as ``D + (η²/B) λλᵀ``, and ``E‖e_t‖²`` is
    the sum of that diagonal, so ``ρ`` is the spectral radius of this d×d matrix (for Gaussian inputs
    off-diagonal entries are multiplied by factors no larger than its diagonal, by Cauchy–Schwarz, so
    it is also the radius of the whole map). ``kurtosis`` is ``κ = E z⁴`` of the standardised input
    coordinates (3 for Gaussian inputs; see :func:`second_moment_step`).
    """
    lr = check_real("lr", lr, low=0, low_open=True)
    lam = _eigenvalues(eigenvalues)
    batch = _batch(batch)
    c = _fourth_moment_factor(_kurtosis(kurtosis), batch)
    diag = 1 - 2 * lr * lam + lr**2 * c * lam**2
    M = torch.diag(diag) + lr**2 / batch * torch.outer(lam, lam)
    return torch.linalg.eigvalsh(M).abs().max().item()


def ms_threshold(eigenvalues, batch, *, kurtosis=3.0) -> float:
    """The exact mean-square stability threshold of linearised SGD on online Gaussian least squares:
    the ``η`` solving ``Σ_k ηλ_k / (2 − η(1 + 1/B)λ_k) = B`` in ``(0, 2/((1 + 1/B)λ_max))``.

    The left side increases from 0 to +∞ on that interval, so the root is unique; bisection runs until
    the bracket cannot shrink in float64 (exact to rounding).

    ``kurtosis`` (``κ = E z⁴`` ≥ 1, default 3, the Gaussian value) gives the threshold for inputs
    ``x = Σ^{1/2} z`` whose standardised coordinates ``z_k`` are independent: ``1 + 1/B`` becomes
    ``c_κ = 1 + (κ − 2)/B``. The root is then the threshold as long as ``c_κ ≥ ½`` (which keeps the
    other eigenvalues of ``D + (η²/B)λλᵀ`` in [−1, 1]); a smaller ``c_κ`` (only ``B = 1`` with
    ``κ < 3/2``) raises ``ValueError``.
    """
    lam = _eigenvalues(eigenvalues).numpy()
    batch = _batch(batch)
    c = _fourth_moment_factor(_kurtosis(kurtosis), batch)
    if c < 0.5:
        raise ValueError(f"kurtosis must give 1 + (kurtosis − 2)/batch ≥ 1/2, got {c:.4g} "
                         f"(kurtosis {kurtosis}, batch {batch})")
    lo, hi = 0.0, 2 / (c * lam.max())

    def excess(eta):
        return float(np.sum(eta * lam / (2 - eta * c * lam))) - batch

    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return lo
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid


def small_batch_threshold(eigenvalues, batch) -> float:
    """First-order small-batch expansion of :func:`ms_threshold`:
    ``(2B/tr Σ)(1 − (B + 1) tr(Σ²)/(tr Σ)²)``, accurate when ``B tr(Σ²)/(tr Σ)² ≪ 1``."""
    lam = _eigenvalues(eigenvalues)
    batch = _batch(batch)
    t1, t2 = lam.sum().item(), (lam**2).sum().item()
    return 2 * batch / t1 * (1 - (batch + 1) * t2 / t1**2)


def large_batch_threshold(eigenvalues, batch) -> float:
    """Large-batch expansion of :func:`ms_threshold`: ``(2/λ₁)/(1 + 1/B + 1/(B − R))`` with
    ``R = Σ_{k>1} λ_k/(λ₁ − λ_k)``, valid for ``B ≫ R`` and a simple top eigenvalue ``λ₁``."""
    lam = _eigenvalues(eigenvalues)
    batch = _batch(batch)
    lam = lam.sort(descending=True).values
    rest = (lam[1:] / (lam[0] - lam[1:])).sum().item() if lam.numel() > 1 else 0.0
    if lam.numel() > 1 and lam[1] >= lam[0]:
        raise ValueError("large_batch_threshold needs a simple top eigenvalue")
    if batch <= rest:
        raise ValueError(f"batch must exceed R = {rest:.4g} for the large-batch expansion, got {batch}")
    return 2 / lam[0].item() / (1 + 1 / batch + 1 / (batch - rest))


def isotropic_ms_threshold(d, batch) -> float:
    """Closed form of :func:`ms_threshold` for ``Σ = I_d``: ``2B/(d + B + 1)``."""
    d, batch = check_int("d", d, low=1), _batch(batch)
    return 2 * batch / (d + batch + 1)


def frozen_rmsprop_threshold(eigenvalues, batch, noise) -> float:
    """Mean-square threshold of RMSprop with its second moment frozen at the minimum of noisy least
    squares, ``v_k = σ²λ_k/B``: preconditioned SGD, equivalent to SGD with learning rate ``η√B/σ`` on
    covariance ``Σ^{1/2}``, so the threshold is ``σ · ms_threshold(√λ, B)/√B``."""
    lam = _eigenvalues(eigenvalues)
    batch = _batch(batch)
    noise = check_real("noise", noise, low=0, low_open=True)
    return noise * ms_threshold(lam.sqrt(), batch) / math.sqrt(batch)


# --------------------------------------------------------------------------------------------------
# Momentum (the EMA momentum of Adam) with a fixed preconditioner
# --------------------------------------------------------------------------------------------------

def _beta(value) -> float:
    return check_real("beta", value, low=0, high=1, high_open=True)


def _momentum_blocks(lr: float, lam: torch.Tensor, batch: int, beta: float, c: float):
    """The mean-square map of :func:`momentum_second_moment_step` without noise, as per-mode blocks
    ``D`` [d, 3, 3] on ``(a_k, c_k, b_k)`` plus the coupling ``w`` [d, 3] that multiplies
    ``s = Σ_j λ_j a_j`` (the map is ``x_k ↦ D_k x_k + w_k s``)."""
    g, alpha = 1 - beta, lr * (1 - beta)
    q = c * lam**2
    D = torch.zeros(lam.numel(), 3, 3, dtype=DTYPE)
    D[:, 0, 0] = 1 - 2 * alpha * lam + alpha**2 * q
    D[:, 0, 1] = -2 * lr * beta * (1 - alpha * lam)
    D[:, 0, 2] = (lr * beta) ** 2
    D[:, 1, 0] = g * lam - alpha * g * q
    D[:, 1, 1] = beta * (1 - 2 * alpha * lam)
    D[:, 1, 2] = -lr * beta**2
    D[:, 2, 0] = g**2 * q
    D[:, 2, 1] = 2 * g * beta * lam
    D[:, 2, 2] = beta**2
    w = torch.stack([alpha**2 * lam, -alpha * g * lam, g**2 * lam], 1) / batch
    return D, w


def momentum_second_moment_step(lr, eigenvalues, batch, beta, moments, *, noise=0.0,
                                kurtosis=3.0) -> torch.Tensor:
    """One step of the second moments of SGD with EMA momentum (Adam's, with the second moment frozen
    and folded into the eigenvalues) on online Gaussian least squares:

    ``m ← βm + (1 − β) g``, ``e ← e − η m``, with ``g = H_B e`` plus label noise.

    ``moments`` [..., d, 3] holds ``(a_k, c_k, b_k) = (E e_k², E e_k m_k, E m_k²)`` in Σ's eigenbasis (the
    map keeps these diagonal). With ``Q_k = c_κλ_k²a_k + (λ_k/B)(Σ_j λ_j a_j + σ²)`` (``E[g gᵀ]``'s
    diagonal, ``c_κ = 1 + (κ − 2)/B``) and ``α = η(1 − β)``:

    ``a' = (1 − 2αλ)a + α²Q − 2ηβ(1 − αλ)c + η²β²b``,
    ``c' = (1 − β)(λa − αQ) + β(1 − 2αλ)c − ηβ²b``,
    ``b' = (1 − β)²Q + 2β(1 − β)λc + β²b``.

    ``β = 0`` gives :func:`second_moment_step` for ``a``. ``lr`` is a number. Returns [..., d, 3].
    """
    lr = check_real("lr", lr, low=0, low_open=True)
    lam, batch, beta = _eigenvalues(eigenvalues), _batch(batch), _beta(beta)
    noise = check_real("noise", noise, low=0)
    c = _fourth_moment_factor(_kurtosis(kurtosis), batch)
    moments = check_tensor("moments", moments, dtype=DTYPE)
    if moments.ndim < 2 or moments.shape[-2:] != (lam.numel(), 3):
        raise ValueError(f"moments must have shape [..., d, 3] with d = {lam.numel()}, "
                         f"got {list(moments.shape)}")
    D, w = _momentum_blocks(lr, lam, batch, beta, c)
    s = (moments[..., 0] * lam).sum(-1, keepdim=True) + noise**2        # [..., 1]
    return (D @ moments.unsqueeze(-1)).squeeze(-1) + w * s.unsqueeze(-1)


def momentum_ms_rate(lr, eigenvalues, batch, beta, *, kurtosis=3.0) -> float:
    """Spectral radius of the (noise-free) map of :func:`momentum_second_moment_step` as a
    3d × 3d matrix: ``E‖e_t‖²`` grows like its ``t``-th power. Dense, for checks on small ``d``."""
    lr = check_real("lr", lr, low=0, low_open=True)
    lam, batch, beta = _eigenvalues(eigenvalues), _batch(batch), _beta(beta)
    c = _fourth_moment_factor(_kurtosis(kurtosis), batch)
    D, w = _momentum_blocks(lr, lam, batch, beta, c)
    coupling = torch.zeros(3 * lam.numel(), dtype=DTYPE)
    coupling[0::3] = lam
    T = torch.block_diag(*D) + torch.outer(w.reshape(-1), coupling)
    return float(np.abs(np.linalg.eigvals(T.numpy())).max())


def _bisect(stable, hi: float) -> float:
    """The supremum of ``η`` in ``(0, hi]`` with ``stable(η)``, for a stable set that is an interval
    starting at 0, by bisection to two ulps."""
    if stable(hi):
        return hi
    lo = 0.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi or hi - lo <= 4e-16 * hi:
            return lo
        if stable(mid):
            lo = mid
        else:
            hi = mid


def momentum_ms_threshold(eigenvalues, batch, beta, *, kurtosis=3.0, method: str = "closed") -> float:
    """Mean-square stability threshold of SGD with EMA momentum ``β`` on online least squares with inputs
    ``x = Σ^{1/2} z``, ``z`` of independent coordinates with fourth moment ``κ`` (3: Gaussian).

    ``method="closed"``: each mode is heavy ball driven by gradient noise, whose stationary variance is
    ``E e_k² = ηN_k/(λ_k(2 − ηλ_kρ))`` with ``ρ = (1 − β)/(1 + β)``; the noise ``N_k`` is
    ``((κ − 1)/B)λ_k²a_k + (λ_k/B)Σ_{j≠k}λ_ja_j``, and summing ``λ_k a_k`` gives the threshold as the root of

    ``Σ_k ηλ_k / (2 − ηλ_k(ρ + (κ − 2)/B)) = B``,

    :func:`ms_threshold`'s equation with ``1 + 1/B`` replaced by ``ρ + 1/B`` (Gaussian), capped by heavy
    ball's ``2/(ρλ_max)``; so ``η^β(B) = η_ms(ρB)/ρ``. Bisection to two ulps.

    ``method="dense"``: bisection on the spectral radius of the full 3d × 3d moment map
    (:func:`momentum_ms_rate`) — independent of the derivation above and slow; for checks with small ``d``.
    """
    lam, batch, beta = _eigenvalues(eigenvalues), _batch(batch), _beta(beta)
    kurtosis = _kurtosis(kurtosis)
    method = check_choice("method", method, ("closed", "dense"))
    rho = (1 - beta) / (1 + beta)
    heavy_ball = 2 / (rho * lam.max().item())
    if method == "dense":
        return _bisect(lambda eta: momentum_ms_rate(eta, lam, batch, beta, kurtosis=kurtosis) < 1, heavy_ball)
    lam_np = lam.numpy()
    c = rho + (kurtosis - 2) / batch
    pole = 2 / (c * lam_np.max()) if c > 0 else math.inf      # where the largest term blows up

    def total(eta: float) -> float:
        return float(np.sum(eta * lam_np / (2 - eta * c * lam_np)))

    if pole > heavy_ball:                      # (κ < 2 only) heavy ball's own bound may come first
        if total(heavy_ball) < batch:
            return heavy_ball
        return _bisect(lambda eta: total(eta) < batch, heavy_ball)
    return _bisect(lambda eta: eta < pole and total(eta) < batch, pole)


def frozen_adam_threshold(eigenvalues, batch, noise, beta1) -> float:
    """:func:`frozen_rmsprop_threshold` with Adam's momentum ``β₁``: ``σ · momentum_ms_threshold(√λ, B,
    β₁)/√B`` (the second moment frozen at ``v_k = σ²λ_k/B``)."""
    lam = _eigenvalues(eigenvalues)
    batch = _batch(batch)
    noise = check_real("noise", noise, low=0, low_open=True)
    return noise * momentum_ms_threshold(lam.sqrt(), batch, beta1) / math.sqrt(batch)


def momentum_sgd_moments(eigenvalues, batch, lr, beta, *, steps, runs, seed=None) -> torch.Tensor:
    """Monte Carlo of :func:`momentum_second_moment_step`: ``runs`` independent runs of SGD with EMA
    momentum on online Gaussian least squares (no label noise) in Σ's eigenbasis, from ``e₀ ~ N(0, I)``
    and ``m₀ = 0``, for ``steps`` steps.

    Returns [runs, d, 3]: ``(e_k², e_k m_k, m_k²)`` of every run at the end; their means estimate
    ``steps`` applications of the map to ``(1, 0, 0)`` per mode.
    """
    lam, batch = _eigenvalues(eigenvalues), _batch(batch)
    lr, beta = check_real("lr", lr, low=0, low_open=True), _beta(beta)
    steps, runs = check_int("steps", steps, low=1), check_int("runs", runs, low=2)
    gen = _gen(seed, "batchsize.momentum_sgd_moments")
    root = lam.sqrt()
    e = torch.randn(runs, lam.numel(), generator=gen, dtype=DTYPE)
    m = torch.zeros_like(e)
    for _ in range(steps):
        x = torch.randn(runs, batch, lam.numel(), generator=gen, dtype=DTYPE) * root
        g = torch.einsum("rb,rbd->rd", torch.einsum("rd,rbd->rb", e, x), x) / batch
        m = beta * m + (1 - beta) * g
        e = e - lr * m
    return torch.stack([e * e, e * m, m * m], -1)


# --------------------------------------------------------------------------------------------------
# Simulations
# --------------------------------------------------------------------------------------------------

def _gen(seed, name):
    if isinstance(seed, torch.Generator):
        return seed
    return make_generator(resolve_seed(seed, name))


def lyapunov_exponents(eigenvalues, batch, lrs, *, runs, steps, burn_in=0, seed=None) -> torch.Tensor:
    """Growth rates of ``log‖e_t‖`` per step for linearised SGD ``e ← e − (η/B) Σ_i x_i x_iᵀ e`` on
    online Gaussian least squares (no label noise), one per learning rate and run.

    All learning rates share the same batches (common random numbers); each run starts from its own
    random unit vector. The iterate is renormalised every step and the log-norms accumulated, so
    diverging runs are measured, never overflowed.

    Parameters
    ----------
    eigenvalues : tensor [d]
    batch : int
    lrs : tensor [L] (or a number)
    runs, steps : int
    burn_in : int
        Steps discarded before the growth is averaged (transient of the start).

    Returns
    -------
    tensor [L, runs]
        ``(log‖e_T‖ − log‖e_burn‖)/(T − burn)`` per run.
    """
    lam = _eigenvalues(eigenvalues)
    batch, lrs = _batch(batch), _lrs(lrs)
    runs, steps = check_int("runs", runs, low=1), check_int("steps", steps, low=1)
    burn_in = check_int("burn_in", burn_in, low=0, high=steps - 1)
    device = eigenvalues.device if isinstance(eigenvalues, torch.Tensor) else torch.device("cpu")
    gen = seed if isinstance(seed, torch.Generator) else make_generator(
        resolve_seed(seed, "batchsize.lyapunov_exponents"), device=device)
    lam, lrs = lam.to(device), lrs.to(device)
    d, L = lam.numel(), lrs.numel()
    root = lam.sqrt()
    e = torch.randn(runs, d, generator=gen, dtype=DTYPE, device=device)
    e = (e / e.norm(dim=1, keepdim=True)).expand(L, runs, d).clone()
    log_norm = torch.zeros(L, runs, dtype=DTYPE, device=device)
    scale = (lrs / batch)[:, None, None]
    for t in range(steps):
        x = torch.randn(runs, batch, d, generator=gen, dtype=DTYPE, device=device) * root
        r = torch.einsum("lrd,rbd->lrb", e, x)
        e = e - scale * torch.einsum("lrb,rbd->lrd", r, x)
        norm = e.norm(dim=2)
        e = e / norm[..., None]
        if t >= burn_in:
            log_norm += norm.log()
    return (log_norm / (steps - burn_in)).cpu()


def expected_sgd_risk(eigenvalues, batch, lrs, *, samples, noise, init=1.0, kurtosis=3.0) -> torch.Tensor:
    """Exact expected excess risk ``½ E[eᵀΣe]`` of online SGD on noisy Gaussian least squares after a
    budget of ``samples`` samples (``samples // batch`` steps), from ``E[e₀e₀ᵀ] = init·I`` (``init`` a
    number) or from a diagonal ``E[e₀e₀ᵀ] = diag(init)`` (``init`` a tensor [d]), by iterating
    :func:`second_moment_step` on the diagonal second moment (``kurtosis`` as there). Returns a tensor
    [L] (one per ``lrs``; ``inf`` where it overflows)."""
    lam = _eigenvalues(eigenvalues)
    batch, lrs = _batch(batch), _lrs(lrs)
    samples = check_int("samples", samples, low=batch)
    noise = check_real("noise", noise, low=0)
    c = _fourth_moment_factor(_kurtosis(kurtosis), batch)
    if isinstance(init, torch.Tensor | np.ndarray | list | tuple):
        s0 = check_tensor("init", init, ndim=1, dtype=DTYPE)
        if s0.numel() != lam.numel() or (s0 < 0).any():
            raise ValueError(f"init must be a number or a non-negative [d] tensor with d = {lam.numel()}, "
                             f"got shape {list(s0.shape)}")
    else:
        s0 = torch.full((lam.numel(),), check_real("init", init, low=0), dtype=DTYPE)
    eta = lrs[:, None]
    diag = 1 - 2 * eta * lam + eta**2 * c * lam**2
    rank_one = eta**2 / batch * lam
    s = s0.expand(lrs.numel(), -1).clone()
    with np.errstate(over="ignore"):
        for _ in range(samples // batch):
            s = diag * s + rank_one * ((s * lam).sum(-1, keepdim=True) + noise**2)
    risk = 0.5 * (s * lam).sum(-1)
    return torch.where(torch.isfinite(risk), risk, torch.full_like(risk, math.inf))


def _risk_problem(lam, runs, gen):
    d = lam.numel()
    w_star = torch.randn(runs, d, generator=gen, dtype=DTYPE)   # e₀ = w₀ − w* = −w*
    return -w_star


def sgd_risk(eigenvalues, batch, lrs, *, samples, noise, runs, seed=None, start=None) -> torch.Tensor:
    """Simulated excess risk ``½ eᵀΣe`` of online SGD on noisy least squares (``y = xᵀw* + σξ``,
    ``w* ~ N(0, I)``, ``w₀ = 0``) after ``samples // batch`` steps. All learning rates share the same
    data (common random numbers). ``start`` (a tensor [d]) replaces the random initial error
    ``e₀ = −w*`` by the same fixed ``e₀`` in every run. Returns a tensor [L, runs]."""
    lam = _eigenvalues(eigenvalues)
    batch, lrs = _batch(batch), _lrs(lrs)
    samples, runs = check_int("samples", samples, low=batch), check_int("runs", runs, low=1)
    noise = check_real("noise", noise, low=0)
    gen = _gen(seed, "batchsize.sgd_risk")
    root = lam.sqrt()
    if start is None:
        e = _risk_problem(lam, runs, gen)
    else:
        e = check_tensor("start", start, ndim=1, dtype=DTYPE)
        if e.numel() != lam.numel():
            raise ValueError(f"start must have d = {lam.numel()} entries, got {e.numel()}")
        e = e.expand(runs, -1)
    e = e.expand(lrs.numel(), -1, -1).clone()
    scale = (lrs / batch)[:, None, None]
    for _ in range(samples // batch):
        x = torch.randn(runs, batch, lam.numel(), generator=gen, dtype=DTYPE) * root
        xi = noise * torch.randn(runs, batch, generator=gen, dtype=DTYPE)
        r = torch.einsum("lrd,rbd->lrb", e, x) - xi
        e = e - scale * torch.einsum("lrb,rbd->lrd", r, x)
    return 0.5 * (e**2 * lam).sum(-1)


def rmsprop_risk(eigenvalues, batch, lrs, *, samples, noise, runs, beta2, eps=1e-12,
                 seed=None, return_state=False):
    """Simulated excess risk of online RMSprop (no momentum, bias-corrected second moment
    ``v ← β₂v + (1 − β₂)g²``, step ``η g/(√v̂ + ε)``) on the problem of :func:`sgd_risk`, after
    ``samples // batch`` steps. ``beta2`` in [0, 1). Returns a tensor [L, runs]; a run that overflows
    gets ``inf``.

    With ``return_state=True`` it returns ``(risk, v_hat, v_pred)``, each ``v`` a tensor [L, runs, d]:
    the final bias-corrected second moment ``v̂`` of the run, and its prediction from the run's own
    path, the same average (same ``β₂``, same bias correction) of the conditional means
    ``E[g_k² | e_t] = λ_k²e_k² + (λ_k eᵀΣe + λ_k²e_k² + σ²λ_k)/B`` (Gaussian fourth moments). Their
    difference averages zero-mean terms, so ``E v̂ = E v_pred`` exactly; at the minimum (``e = 0``)
    ``v_pred`` is the noise floor ``σ²λ_k/B``.
    """
    lam = _eigenvalues(eigenvalues)
    batch, lrs = _batch(batch), _lrs(lrs)
    samples, runs = check_int("samples", samples, low=batch), check_int("runs", runs, low=1)
    noise = check_real("noise", noise, low=0)
    beta2 = check_real("beta2", beta2, low=0, high=1, high_open=True)
    eps = check_real("eps", eps, low=0)
    return_state = check_bool("return_state", return_state)
    gen = _gen(seed, "batchsize.rmsprop_risk")
    root = lam.sqrt()
    e = _risk_problem(lam, runs, gen).expand(lrs.numel(), -1, -1).clone()
    v = torch.zeros_like(e)
    v_pred = torch.zeros_like(e) if return_state else None
    eta = lrs[:, None, None]
    steps = samples // batch
    for t in range(1, steps + 1):
        x = torch.randn(runs, batch, lam.numel(), generator=gen, dtype=DTYPE) * root
        xi = noise * torch.randn(runs, batch, generator=gen, dtype=DTYPE)
        if return_state:
            curv = (lam * e) ** 2                                    # λ_k² e_k²
            energy = (lam * e**2).sum(-1, keepdim=True)               # eᵀΣe
            v_pred = beta2 * v_pred + (1 - beta2) * (curv + (lam * energy + curv + noise**2 * lam) / batch)
        r = torch.einsum("lrd,rbd->lrb", e, x) - xi
        g = torch.einsum("lrb,rbd->lrd", r, x) / batch
        v = beta2 * v + (1 - beta2) * g**2
        e = e - eta * g / ((v / (1 - beta2**t)).sqrt() + eps)
    risk = 0.5 * (e**2 * lam).sum(-1)
    risk = torch.where(torch.isfinite(risk), risk, torch.full_like(risk, math.inf))
    if return_state:
        correction = 1 - beta2**steps
        return risk, v / correction, v_pred / correction
    return risk


def best_lr(lrs, risks) -> float:
    """The learning rate minimising ``risks`` [L] (or [L, runs]: the mean of ``log risk`` over runs),
    refined by a parabola through the best point of a log-spaced grid and its two neighbours (in
    ``log η``). The grid ``lrs`` must be increasing; a minimum at either end raises ``ValueError``."""
    lrs = _lrs(lrs)
    if lrs.numel() < 3 or (lrs[1:] <= lrs[:-1]).any():
        raise ValueError("lrs must be a strictly increasing grid of at least 3 learning rates")
    risks = check_tensor("risks", risks, dtype=DTYPE, finite=False)
    if risks.shape[0] != lrs.numel():
        raise ValueError(f"risks must have {lrs.numel()} rows, one per learning rate, "
                         f"got {list(risks.shape)}")
    score = risks.log()
    if score.ndim == 2:
        score = score.mean(1)
    score = torch.where(torch.isnan(score), torch.full_like(score, math.inf), score)
    k = int(torch.argmin(score))
    if k in (0, lrs.numel() - 1):
        raise ValueError(f"the best learning rate is at the end of the grid ({lrs[k].item():.4g}); widen it")
    x = lrs[k - 1:k + 2].log()
    y = score[k - 1:k + 2]
    denom = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denom
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denom
    if a <= 0:
        return lrs[k].item()
    return math.exp((-b / (2 * a)).clamp(x[0], x[2]).item())
