"""Small linear-algebra helpers shared by the chapters (float64 throughout)."""

from __future__ import annotations

import torch

from .seeding import make_generator, resolve_seed
from .utils.validation import check_int, check_same_shape, check_tensor


def random_orthonormal(dim: int, k: int, *, seed: int | None = None) -> torch.Tensor:
    """``k`` random orthonormal columns in ``R^dim`` [dim, k] (Haar-distributed up to signs)."""
    seed = resolve_seed(seed, "linalg.random_orthonormal")
    dim = check_int("dim", dim, low=1)
    k = check_int("k", k, low=1, high=dim)
    Q, _ = torch.linalg.qr(torch.randn(dim, k, generator=make_generator(seed), dtype=torch.float64))
    return Q


def matrix_with_spectrum(out_features: int, in_features: int, singular_values, *, seed: int | None = None):
    """A matrix [out, in] with the given singular values and random singular vectors; returns
    ``(A, left, right)`` with ``A = left · diag(s) · rightᵀ``."""
    seed = resolve_seed(seed, "linalg.matrix_with_spectrum")
    out_features = check_int("out_features", out_features, low=1)
    in_features = check_int("in_features", in_features, low=1)
    s = check_tensor("singular_values", singular_values, ndim=1, dtype=torch.float64, nonnegative=True)
    if not 1 <= len(s) <= min(out_features, in_features):
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
    lam = check_tensor("eigenvalues", eigenvalues, ndim=1, dtype=torch.float64, nonnegative=True)
    Q = random_orthonormal(len(lam), len(lam), seed=seed)
    return (Q * lam) @ Q.T, Q


def psd_sqrt(cov, *, name: str = "cov") -> torch.Tensor:
    """Symmetric square root of a positive semi-definite matrix (a covariance may be singular, e.g.
    pixels that never vary); ``name`` labels the argument in error messages."""
    cov = check_tensor(name, cov, ndim=2, dtype=torch.float64)
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {list(cov.shape)}")
    if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    eig, vecs = torch.linalg.eigh(cov)
    if eig.min() < -1e-10 * max(eig.max().item(), 1.0):
        raise ValueError(f"{name} must be positive semi-definite, smallest eigenvalue {eig.min().item():.3g}")
    return (vecs * eig.clamp_min(0).sqrt()) @ vecs.T


def relative_error(estimate, target) -> float:
    """``‖estimate − target‖_F / ‖target‖_F`` for two arrays of the same shape (no broadcasting); a zero
    ``target`` is an error, since the relative error is then undefined."""
    estimate = check_tensor("estimate", estimate, dtype=torch.float64)
    target = check_tensor("target", target, dtype=torch.float64)
    check_same_shape("estimate", estimate, "target", target)
    norm = target.norm()
    if norm == 0:
        raise ValueError("target must not be zero: the relative error is undefined")
    return ((estimate - target).norm() / norm).item()
