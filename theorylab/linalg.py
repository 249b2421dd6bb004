"""Small linear-algebra helpers shared by the chapters (float64 throughout)."""

from __future__ import annotations

import torch

from .seeding import make_generator, resolve_seed


def random_orthonormal(dim: int, k: int, *, seed: int | None = None) -> torch.Tensor:
    """``k`` random orthonormal columns in ``R^dim`` [dim, k] (Haar-distributed up to signs)."""
    seed = resolve_seed(seed, "linalg.random_orthonormal")
    if not isinstance(dim, int) or not isinstance(k, int) or not 1 <= k <= dim:
        raise ValueError(f"need integers 1 ≤ k ≤ dim, got dim={dim!r}, k={k!r}")
    Q, _ = torch.linalg.qr(torch.randn(dim, k, generator=make_generator(seed), dtype=torch.float64))
    return Q


def matrix_with_spectrum(out_features: int, in_features: int, singular_values, *, seed: int | None = None):
    """A matrix [out, in] with the given singular values and random singular vectors; returns
    ``(A, left, right)`` with ``A = left · diag(s) · rightᵀ``."""
    seed = resolve_seed(seed, "linalg.matrix_with_spectrum")
    s = torch.as_tensor(singular_values, dtype=torch.float64)
    if s.ndim != 1 or not 1 <= len(s) <= min(out_features, in_features):
        raise ValueError(f"singular_values must be a vector of length 1..{min(out_features, in_features)}, "
                         f"got shape {list(s.shape)}")
    gen = make_generator(seed)
    left, _ = torch.linalg.qr(torch.randn(out_features, len(s), generator=gen, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(in_features, len(s), generator=gen, dtype=torch.float64))
    return (left * s) @ right.T, left, right


def covariance_with_spectrum(eigenvalues, *, seed: int | None = None):
    """A covariance ``Q diag(λ) Qᵀ`` [d, d] with the given (non-negative) eigenvalues in a random
    orthonormal basis; returns ``(Σ, Q)``, the columns of ``Q`` in the order of ``eigenvalues``."""
    seed = resolve_seed(seed, "linalg.covariance_with_spectrum")
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64)
    if lam.ndim != 1 or len(lam) < 1 or (lam < 0).any():
        raise ValueError(f"eigenvalues must be a non-empty vector of non-negative numbers, got {lam}")
    Q = random_orthonormal(len(lam), len(lam), seed=seed)
    return (Q * lam) @ Q.T, Q


def psd_sqrt(cov, *, name: str = "cov") -> torch.Tensor:
    """Symmetric square root of a positive semi-definite matrix (a covariance may be singular, e.g.
    pixels that never vary); ``name`` labels the argument in error messages."""
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {list(cov.shape)}")
    if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    eig, vecs = torch.linalg.eigh(cov)
    if eig.min() < -1e-10 * max(eig.max().item(), 1.0):
        raise ValueError(f"{name} must be positive semi-definite, smallest eigenvalue {eig.min().item():.3g}")
    return (vecs * eig.clamp_min(0).sqrt()) @ vecs.T


def relative_error(estimate, target) -> float:
    """``‖estimate − target‖_F / ‖target‖_F``."""
    estimate = torch.as_tensor(estimate, dtype=torch.float64)
    target = torch.as_tensor(target, dtype=torch.float64)
    return ((estimate - target).norm() / target.norm()).item()
