"""The Gaussian mixtures of chapter 5 and the exact errors of linear classifiers under them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from ..seeding import make_generator, resolve_seed
from ..utils.threads import single_threaded
from ..utils.validation import check_int, check_real, check_tensor
from ._checks import DTYPE


@dataclass(frozen=True)
class AsymptoticErrors:
    """The errors (fractions) of the m → ∞ limits of the classifiers on a :class:`Mixture`
    (:meth:`Mixture.asymptotic_errors`).

    Attributes
    ----------
    nb : naive Bayes's limit: the true means with the diagonal of the covariance, ``diag(Σ)``.
    lr : logistic regression's limit, equal to ``bayes`` (the classes share one covariance).
    bayes : the Bayes error.
    """

    nb: float
    lr: float
    bayes: float


@dataclass(frozen=True)
class Mixture:
    """Classes ``k = 0 .. K−1`` with equal priors and ``x | y = k ~ N(μ_k, Σ)``, where
    ``Σ = diag(std) R diag(std)`` and ``R = (1 − ρ) I + ρ 𝟙𝟙ᵀ`` (equicorrelated).

    Attributes
    ----------
    means : Tensor [K, n]; std : Tensor [n]; correlation : float (ρ in [0, 1))
    """

    means: torch.Tensor
    std: torch.Tensor
    correlation: float

    def __post_init__(self):
        means = check_tensor("means", self.means, ndim=2, dtype=DTYPE)
        if means.shape[0] < 2:
            raise ValueError(f"means must have shape [K, n] with K ≥ 2 classes, got {list(means.shape)}")
        std = check_tensor("std", self.std, ndim=1, dtype=DTYPE)
        if std.shape != (means.shape[1],) or not bool((std > 0).all()):
            raise ValueError(f"std must have shape [{means.shape[1]}] (one per feature) with positive "
                             "entries, "
                             f"got shape {list(std.shape)} and minimum {std.min().item():.4g}")
        # ρ = 1 makes Σ singular (every solve divides by 1 − ρ): refused, not NaN
        correlation = check_real("correlation", self.correlation, low=0, high=1, high_open=True)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "correlation", correlation)

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    def covariance(self) -> torch.Tensor:
        """``Σ`` [n, n]."""
        n, rho = self.n_features, self.correlation
        R = (1 - rho) * torch.eye(n, dtype=DTYPE) + rho
        return self.std[:, None] * R * self.std[None, :]

    def solve(self, v: torch.Tensor) -> torch.Tensor:
        """``Σ⁻¹ v`` for ``v`` [..., n], in O(n) (Sherman–Morrison on ``R``)."""
        n, rho = self.n_features, self.correlation
        u = v / self.std
        u = (u - rho / (1 - rho + n * rho) * u.sum(-1, keepdim=True)) / (1 - rho)
        return u / self.std

    def quadratic(self, a: torch.Tensor) -> torch.Tensor:
        """``aᵀ Σ a`` for ``a`` [..., n], in O(n)."""
        u = a * self.std
        return (1 - self.correlation) * u.pow(2).sum(-1) + self.correlation * u.sum(-1).pow(2)

    def sample(self, m: int, seed: int | torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``m`` samples: ``X`` [m, n] float64, ``y`` [m] int64 (labels uniform on the classes)."""
        seed = resolve_seed(seed, "generative.Mixture.sample")
        m = check_int("m", m, low=1)
        gen = make_generator(seed)
        y = torch.randint(0, self.n_classes, (m,), generator=gen)
        z = torch.randn(m, self.n_features, generator=gen, dtype=DTYPE)
        common = torch.randn(m, 1, generator=gen, dtype=DTYPE)
        rho = self.correlation
        # (√(1−ρ) z + √ρ c) σ + μ_y, in place in z: the same roundings as out of place, one [m, n] buffer
        X = z.mul_(math.sqrt(1 - rho)).add_(math.sqrt(rho) * common).mul_(self.std).add_(self.means[y])
        return X, y

    def bayes_classifier(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` of the Bayes classifier: ``W_k = Σ⁻¹ μ_k``, ``b_k = log π_k − ½ μ_kᵀ Σ⁻¹ μ_k``."""
        W = self.solve(self.means)
        b = -math.log(self.n_classes) - 0.5 * (self.means * W).sum(-1)
        return W, b

    def nb_limit(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, b)`` that naive Bayes converges to: the true means and ``σ² = diag(Σ)``."""
        var = self.std.pow(2)
        W = self.means / var
        b = -math.log(self.n_classes) - 0.5 * (self.means * W).sum(-1)
        return W, b

    @single_threaded()
    def error(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Exact misclassification probability of ``argmax_k (W x + b)_k`` under the mixture.

        ``W`` [..., K, n] and ``b`` [..., K]; batched for two and three classes. Given ``y = k`` the score
        differences ``(W_j − W_k) x + b_j − b_k`` are jointly Gaussian, so the probability of a correct
        answer is a Gaussian orthant probability: ``Φ`` for ``K = 2``; for ``K = 3`` a bivariate normal
        probability by Owen's T function (batched too); for ``K > 3`` an interval when the differences are
        collinear (e.g. collinear class means), Genz's algorithm (scipy, absolute accuracy ~1e-6) otherwise.
        """
        W, b = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE)
        K = self.n_classes
        if W.shape[-2:] != (K, self.n_features) or b.shape != W.shape[:-1]:
            raise ValueError(f"W must have shape [..., {K}, {self.n_features}] and b [..., {K}], got "
                             f"{list(W.shape)} and {list(b.shape)}")
        if K == 2:
            a = W[..., 1, :] - W[..., 0, :]
            c = b[..., 1] - b[..., 0]
            sd = self.quadratic(a).sqrt()
            scores = (a.unsqueeze(-2) * self.means).sum(-1) + c.unsqueeze(-1)          # [..., 2]
            normal = torch.distributions.Normal(0.0, 1.0)
            # class 0 is wrong when the score is > 0, class 1 when it is < 0
            wrong = torch.stack([normal.cdf(scores[..., 0] / sd), normal.cdf(-scores[..., 1] / sd)], -1)
            return wrong.mean(-1)
        Sigma = self.covariance()
        if K == 3:                                   # bivariate orthants, batched (Owen's T function)
            wrong = 0.0
            for k in range(3):
                others = [j for j in range(3) if j != k]
                A = W[..., others, :] - W[..., k : k + 1, :]                            # [..., 2, n]
                mean = A @ self.means[k] + b[..., others] - b[..., k : k + 1]          # [..., 2]
                cov = A @ Sigma @ A.transpose(-1, -2)                                  # [..., 2, 2]
                wrong = wrong + 1.0 - _bivariate_all_negative(mean.numpy(), cov.numpy())
            return torch.as_tensor(wrong / 3, dtype=DTYPE)
        if W.ndim != 2:
            raise ValueError(f"for more than three classes give one classifier, W [K, n]; "
                             f"got {list(W.shape)}")
        wrong = 0.0
        for k in range(K):
            others = [j for j in range(K) if j != k]
            A = W[others] - W[k]
            mean = (A @ self.means[k] + b[others] - b[k]).numpy()
            cov = (A @ Sigma @ A.T).numpy()
            wrong += 1.0 - _all_negative_probability(mean, cov)
        return torch.tensor(wrong / K, dtype=DTYPE)

    def logistic_risk(self, W: torch.Tensor, b: torch.Tensor, *, nodes: int = 80) -> torch.Tensor:
        """Population cross-entropy ``E[−log softmax(W x + b)_y]`` (nats) of two-class classifiers
        ``W`` [..., 2, n], ``b`` [..., 2]: the score difference is Gaussian given the class, so the
        expectation is a one-dimensional Gauss–Hermite quadrature with ``nodes`` points."""
        if self.n_classes != 2:
            raise ValueError(f"logistic_risk is for two classes, got {self.n_classes}")
        W, b = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE)
        a = W[..., 1, :] - W[..., 0, :]
        c = b[..., 1] - b[..., 0]
        sd = self.quadratic(a).sqrt()
        x, w = np.polynomial.hermite.hermgauss(nodes)
        x, w = torch.tensor(x, dtype=DTYPE), torch.tensor(w, dtype=DTYPE) / math.sqrt(math.pi)
        risk = 0.0
        for k, sign in ((0, 1.0), (1, -1.0)):           # −log p(k|x) = softplus(±score)
            mean = (a * self.means[k]).sum(-1) + c
            score = mean.unsqueeze(-1) + math.sqrt(2.0) * sd.unsqueeze(-1) * x
            risk = risk + 0.5 * (torch.nn.functional.softplus(sign * score) * w).sum(-1)
        return risk

    def bayes_error(self) -> float:
        return float(self.error(*self.bayes_classifier()))

    def asymptotic_errors(self) -> AsymptoticErrors:
        """Errors of the m → ∞ limits, an :class:`AsymptoticErrors`: ``nb`` (true means, ``diag(Σ)``), ``lr``
        and ``bayes``.

        The classes share one covariance, so the true posterior is a softmax of a linear function and
        the population minimiser of the logistic loss is the Bayes classifier: ``lr == bayes``.
        """
        bayes = self.bayes_error()
        return AsymptoticErrors(nb=float(self.error(*self.nb_limit())), lr=bayes, bayes=bayes)


def _bivariate_all_negative(mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``P(d_1 < 0, d_2 < 0)`` for ``d ~ N(mean, cov)``, batched (``mean`` [..., 2], ``cov`` [..., 2, 2]):
    with ``h_j = −mean_j/σ_j`` and correlation ``r``, Owen's formula
    ``Φ₂(h, k; r) = ½Φ(h) + ½Φ(k) − T(h, (k − rh)/(h√(1−r²))) − T(k, (h − rk)/(k√(1−r²))) − ½·[hk < 0]``
    (Owen 1956), exact to rounding; zero standard deviations are treated as the limit of tiny ones."""
    from scipy.special import owens_t
    sd = np.sqrt(np.maximum(np.stack([cov[..., 0, 0], cov[..., 1, 1]], -1), 1e-300))
    h, k = (-mean / sd)[..., 0], (-mean / sd)[..., 1]
    r = np.clip(cov[..., 0, 1] / (sd[..., 0] * sd[..., 1]), -1 + 1e-12, 1 - 1e-12)
    h = np.where(h == 0, 1e-300, h)
    k = np.where(k == 0, 1e-300, k)
    root = np.sqrt(1 - r * r)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        value = (0.5 * stats.norm.cdf(h) + 0.5 * stats.norm.cdf(k) - owens_t(h, (k - r * h) / (h * root))
                 - owens_t(k, (h - r * k) / (k * root)) - 0.5 * (h * k < 0))
    return np.clip(value, 0.0, 1.0)


def _all_negative_probability(mean: np.ndarray, cov: np.ndarray) -> float:
    """``P(d < 0 componentwise)`` for ``d ~ N(mean, cov)``."""
    vals, vecs = np.linalg.eigh(cov)
    if vals[-1] <= 0:
        return float(np.all(mean < 0))
    if vals[:-1].max(initial=0.0) <= 1e-10 * vals[-1]:        # rank one: d = mean + a ζ, ζ ~ N(0, 1)
        a = vecs[:, -1] * math.sqrt(vals[-1])
        lo, hi = -np.inf, np.inf
        for mj, aj in zip(mean, a, strict=True):
            if abs(aj) <= 1e-12 * np.abs(a).max():
                if mj >= 0:
                    return 0.0
            elif aj > 0:
                hi = min(hi, -mj / aj)
            else:
                lo = max(lo, -mj / aj)
        return float(max(0.0, stats.norm.cdf(hi) - stats.norm.cdf(lo)))
    return float(stats.multivariate_normal.cdf(np.zeros_like(mean), mean=mean, cov=cov, allow_singular=True,
                                               abseps=1e-7, releps=1e-7, rng=np.random.default_rng(0)))


def mixture(n: int, *, n_classes: int = 2, correlation: float = 0.0, mean_scale: float = 1.0) -> Mixture:
    """The chapter's Gaussian mixture in dimension ``n``.

    Following the paper's simulation: class 0 has mean ``−𝟙``, class ``k ≥ 1`` mean ``2^{k−1} 𝟙`` (times
    ``mean_scale``); the first ``⌊n/2⌋`` features have standard deviation ``√n``, the others 1; the
    features are equicorrelated with coefficient ``correlation`` (0: naive Bayes's model is exact).
    With ``mean_scale = 1`` every unit-variance feature separates classes 0 and 1 by two standard
    deviations, whatever ``n``: the per-feature signal stays bounded away from zero.
    """
    n = check_int("n", n, low=1)
    n_classes = check_int("n_classes", n_classes, low=2)
    correlation = check_real("correlation", correlation, low=0, high=1, high_open=True)
    mean_scale = check_real("mean_scale", mean_scale, low=0, low_open=True)
    levels = torch.tensor([-1.0] + [2.0 ** (k - 1) for k in range(1, n_classes)], dtype=DTYPE)
    means = mean_scale * levels[:, None] * torch.ones(n, dtype=DTYPE)
    std = torch.ones(n, dtype=DTYPE)
    std[: n // 2] = math.sqrt(n)
    return Mixture(means, std, float(correlation))


def gaussian_mixture(m: int, n: int, *, n_classes: int = 2, correlation: float = 0.0, seed: int | None = None,
                     mean_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``m`` samples ``(X [m, n] float64, y [m] int64)`` of :func:`mixture` ``(n, ...)``."""
    seed = resolve_seed(seed, "generative.gaussian_mixture")
    return mixture(n, n_classes=n_classes, correlation=correlation, mean_scale=mean_scale).sample(m, seed)
