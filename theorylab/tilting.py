"""Boundary tilting: the geometry of adversarial examples of linear classifiers (chapter 3).

Two classes, I with label ``y = −1`` and J with ``y = +1``, in ``R^d``. A linear classifier
``s(x) = w·x + b`` has the signed distance ``d(x) = (w·x + b)/‖w‖`` (in the units of ``x``; in the
book, pixel intensities scaled to [0, 1]). With the class centroids ``i`` and ``j``:

* nearest-centroid normal ``ẑ = (j − i)/‖j − i‖``;
* deviation angle ``θ = angle(w, ẑ)`` in [0, π];
* adversarial distance ``d_adv``: the class-balanced mean of ``y·d(x)``, equal to
  ``½‖j − i‖ cos θ`` for every ``w`` and ``b``;
* error distance ``d_err``: the mean of ``−y·d(x)`` over the misclassified points;
* projected image ``x − d(x) ŵ`` (on the boundary) and mirror image ``x − 2 d(x) ŵ`` (the same
  distance on the other side).
* error mass ``e = mean_bal(|d(x)|·1[x misclassified])``, the error term of the mirror identity;
* tilt direction ``u``: the part of ``ŵ`` orthogonal to ``ẑ``, normalised, and the within-class variance
  along it relative to the average over directions orthogonal to ``ẑ`` (:func:`tilt_variance_ratio`).

Arrays: ``X`` [n, d], labels ``y`` [n] in {−1, +1}, ``w`` [d], ``b`` a scalar; NumPy or torch (CPU)
inputs, float64 NumPy outputs. :func:`classifier_statistics` handles many classifiers at once
through the Triton kernel :func:`theorylab.kernels.classifier_stats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import config
from .kernels import classifier_stats
from .seeding import resolve_seed
from .utils.stats import mcnemar_counts, mcnemar_z  # re-exported: they moved to theorylab.utils.stats
from .utils.validation import check_float_dtype, check_int, check_real

__all__ = [
    "nearest_centroid_normal", "nearest_centroid_classifier", "deviation_angle", "signed_distance",
    "adversarial_distance", "error_distance", "error_rate", "projected_images", "mirror_images",
    "tilted_classifier", "fgsm_threshold", "replicate_pixels", "plane_data", "digits_split",
    "digit_pair", "flip_labels", "critical_C", "sharp_tilt", "SharpTilt", "nc_angle_rounding_bound",
    "svm_path", "classifier_statistics",
    "ClassifierStatistics", "float32_error_bound", "class_centroids", "within_class_covariance",
    "tilt_direction", "tilt_variance_ratio", "error_mass", "path_angles", "path_adversarial_distances",
    "mcnemar_counts", "mcnemar_z", "angle_dips", "AngleDips", "float32_consistency", "Float32Consistency",
]


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------

def _array(name: str, value) -> np.ndarray:
    """``value`` (NumPy array, CPU or GPU torch tensor, nested list) as a float64 array; a wrong type
    or dtype (strings, objects, complex numbers, bools) raises ``TypeError`` naming the argument."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, str | bytes) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__} {value!r}")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}") from None
    real = np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    if raw.dtype == np.bool_ or not real:
        raise TypeError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    return raw.astype(np.float64)


def _device(device) -> torch.device:
    """``device`` as a ``torch.device`` (``config.device()`` when None); a CUDA device this machine lacks
    is ``config.check_cuda``'s clear ``RuntimeError`` here, not torch's deep inside the first transfer."""
    if device is None:
        return config.device()
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if device.type == "cuda":
        config.check_cuda(device)
    return device


def _matrix(name: str, X) -> np.ndarray:
    X = _array(name, X)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array [n, d], got shape {list(X.shape)}")
    if not np.isfinite(X).all():
        row = int(np.argwhere(~np.isfinite(X))[0, 0])
        raise ValueError(f"{name} must be finite, got NaN or infinity in row {row}: {X[row].tolist()[:8]}")
    return X


def _labels(y, n: int) -> np.ndarray:
    y = _array("y", y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape [{n}] (one label per row of X), got {list(y.shape)}")
    values = set(np.unique(y).tolist())
    if not values <= {-1, 1}:
        raise ValueError(f"y must hold labels in {{-1, +1}}, got values {sorted(values)}")
    if len(values) < 2:
        raise ValueError(f"y must contain both classes −1 and +1, got only {sorted(values)}")
    return y.astype(np.float64)


def _data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = _matrix("X", X)
    return X, _labels(y, X.shape[0])


def _normal(w, d: int | None = None, name: str = "w") -> np.ndarray:
    w = _array(name, w)
    if w.ndim != 1 or (d is not None and w.shape[0] != d):
        want = f"[{d}]" if d is not None else "[d]"
        raise ValueError(f"{name} must have shape {want}, got {list(w.shape)}")
    norm = np.linalg.norm(w)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"{name} must be a finite non-zero vector, got norm {norm}")
    return w


def _scalar(name: str, value) -> float:
    """A finite real number (Python, NumPy or 0-d tensor); ``TypeError``/``ValueError`` name it."""
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    return check_real(name, value)


# ---------------------------------------------------------------------------------------------------
# Geometry of one classifier
# ---------------------------------------------------------------------------------------------------

def class_centroids(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Centroids ``(i, j)`` [d] of the classes ``y = −1`` and ``y = +1``."""
    X, y = _data(X, y)
    return X[y < 0].mean(axis=0), X[y > 0].mean(axis=0)


def nearest_centroid_normal(X, y) -> np.ndarray:
    """Unit normal ``ẑ = (j − i)/‖j − i‖`` [d] of the nearest-centroid classifier, pointing from the
    centroid ``i`` of class −1 to the centroid ``j`` of class +1."""
    i, j = class_centroids(X, y)
    gap = np.linalg.norm(j - i)
    if gap == 0:
        raise ValueError("the two class centroids coincide: the nearest-centroid normal is undefined")
    return (j - i) / gap


def nearest_centroid_classifier(X, y) -> tuple[np.ndarray, float]:
    """``(ẑ, −ẑ·m)``: the nearest-centroid classifier, boundary through the midpoint ``m = (i + j)/2``."""
    i, j = class_centroids(X, y)
    z = nearest_centroid_normal(X, y)
    return z, float(-z @ (i + j) / 2)


def deviation_angle(w, X, y) -> float:
    """Angle θ in [0, π] (radians) between ``w`` and the nearest-centroid normal ``ẑ`` of ``(X, y)``.

    Computed as ``atan2(‖ŵ − (ŵ·ẑ)ẑ‖, ŵ·ẑ)``, accurate also near 0 and π (unlike ``arccos``).
    """
    z = nearest_centroid_normal(X, y)
    w = _normal(w, z.shape[0])
    w_hat = w / np.linalg.norm(w)
    cos = w_hat @ z
    return float(math.atan2(np.linalg.norm(w_hat - cos * z), cos))


def signed_distance(w, b, X) -> np.ndarray:
    """``d(x) = (w·x + b)/‖w‖`` [n] for every row of ``X``."""
    X = _matrix("X", X)
    w = _normal(w, X.shape[1])
    return (X @ w + _scalar("b", b)) / np.linalg.norm(w)


def adversarial_distance(w, b, X, y) -> float:
    """Class-balanced mean of ``y·d(x)``: ``½ (mean_{y=+1} d(x) − mean_{y=−1} d(x))``.

    Equal to ``½‖j − i‖ cos θ`` for every ``w`` and ``b`` (misclassified points count negatively).
    """
    X, y = _data(X, y)
    d = signed_distance(w, b, X)
    return float(0.5 * (d[y > 0].mean() - d[y < 0].mean()))


def error_rate(w, b, X, y) -> float:
    """Fraction of points with ``y·s(x) ≤ 0`` (a point on the boundary counts as an error)."""
    X, y = _data(X, y)
    return float(np.mean(y * signed_distance(w, b, X) <= 0))


def error_distance(w, b, X, y) -> float:
    """``d_err``: mean of ``−y·d(x)`` over the misclassified points (NaN when there are none)."""
    X, y = _data(X, y)
    margins = y * signed_distance(w, b, X)
    wrong = margins <= 0
    return float(-margins[wrong].mean()) if wrong.any() else math.nan


def projected_images(w, b, X) -> np.ndarray:
    """``x − d(x) ŵ`` [n, d]: the orthogonal projection of every row onto the boundary."""
    d = signed_distance(w, b, X)
    w = _normal(w)
    return _matrix("X", X) - d[:, None] * (w / np.linalg.norm(w))[None, :]


def mirror_images(w, b, X) -> np.ndarray:
    """``x − 2 d(x) ŵ`` [n, d]: every row reflected through the boundary (same confidence, other
    class), at distance ``2|d(x)|`` from the original."""
    d = signed_distance(w, b, X)
    w = _normal(w)
    return _matrix("X", X) - 2 * d[:, None] * (w / np.linalg.norm(w))[None, :]


def tilted_classifier(X, y, normal, theta) -> tuple[np.ndarray, float]:
    """The nearest-centroid classifier tilted by ``theta`` towards ``normal``.

    ``w_θ = cos θ ẑ + sin θ n̂`` (a unit vector) and ``b_θ = −w_θ·m``, with ``m`` the midpoint of the
    centroids and ``n̂`` the unit vector along the part of ``normal`` orthogonal to ``ẑ``. When
    ``normal`` is orthogonal to the affine span of the data, ``w_θ·(x − m) = cos θ ẑ·(x − m)`` for every
    data point: the classifier labels the data exactly as the nearest-centroid one for θ < π/2.

    Parameters
    ----------
    X : array [n, d]; y : array [n] in {−1, +1}
    normal : array [d]
        Direction to tilt towards; must not be parallel to ``ẑ``.
    theta : float
        Tilting angle in radians, in [0, π/2) (at π/2 and beyond ``w_θ`` no longer points from the
        negative towards the positive centroid).

    Returns
    -------
    (w [d], b): ``deviation_angle(w, X, y) == theta``.
    """
    z = nearest_centroid_normal(X, y)
    normal = _normal(normal, z.shape[0], name="normal")
    theta = _scalar("theta", theta)
    if not 0 <= theta < math.pi / 2:
        raise ValueError(f"theta must lie in [0, π/2) (radians), got theta={theta!r}")
    off = normal - (normal @ z) * z
    if np.linalg.norm(off) <= 1e-8 * np.linalg.norm(normal):
        raise ValueError("normal must not be parallel to the nearest-centroid normal ẑ: nothing to tilt to")
    n_hat = off / np.linalg.norm(off)
    w = math.cos(theta) * z + math.sin(theta) * n_hat
    i, j = class_centroids(X, y)
    return w, float(-w @ (i + j) / 2)


def error_mass(w, b, X, y) -> float:
    """``e = mean_bal(|d(x)|·1[x misclassified])``: the class-balanced mean depth of the errors, 0 when
    there are none. It is the error term of the mirror identity
    ``mean_bal ‖x_m − x‖ = ‖j − i‖ cos θ + 4e``, and ``e = ½ Σ_c (errors of class c / n_c)·d_err,c``."""
    X, y = _data(X, y)
    depth = np.maximum(0.0, -y * signed_distance(w, b, X))
    return float(0.5 * (depth[y < 0].mean() + depth[y > 0].mean()))


# ---------------------------------------------------------------------------------------------------
# Where the tilt goes
# ---------------------------------------------------------------------------------------------------

def within_class_covariance(X, y) -> np.ndarray:
    """Pooled within-class covariance ``Σ_w = mean_k (x_k − c(x_k))(x_k − c(x_k))ᵀ`` [d, d], with
    ``c(x)`` the centroid of the class of ``x`` (the plain mean over all points, divisor ``n``)."""
    X, y = _data(X, y)
    i, j = class_centroids(X, y)
    centred = np.where((y > 0)[:, None], X - j, X - i)
    return centred.T @ centred / len(y)


def tilt_direction(w, X, y) -> np.ndarray:
    """The unit tilt direction ``u`` [d]: the part of ``ŵ`` orthogonal to the nearest-centroid normal
    ``ẑ``, normalised, so that ``ŵ = cos θ ẑ + sin θ u``. Raises for ``w`` parallel to ``ẑ`` (θ = 0
    or π to within 1e-12 rad), where the tilt direction is undefined."""
    z = nearest_centroid_normal(X, y)
    w = _normal(w, z.shape[0])
    w_hat = w / np.linalg.norm(w)
    off = w_hat - (w_hat @ z) * z
    if np.linalg.norm(off) <= 1e-12:
        raise ValueError("w is parallel to the nearest-centroid normal (θ = 0 or π): it has no tilt "
                         "direction")
    return off / np.linalg.norm(off)


def tilt_variance_ratio(w, X, y) -> float:
    """``uᵀΣ_w u / v̄``: the within-class variance of the data along the unit tilt direction ``u``
    (:func:`tilt_direction`), relative to ``v̄ = (tr Σ_w − ẑᵀΣ_w ẑ)/(d − 1)``, the mean of ``vᵀΣ_w v``
    over unit vectors ``v`` orthogonal to ``ẑ`` (the expected variance along a tilt direction chosen
    without looking at the data's spread). Above 1: the tilt goes into directions where the classes
    vary more than average; below 1: less. Needs ``d ≥ 2``."""
    X, y = _data(X, y)
    if X.shape[1] < 2:
        raise ValueError(f"X must have at least 2 columns to have a tilt direction, got {X.shape[1]}")
    u = tilt_direction(w, X, y)
    z = nearest_centroid_normal(X, y)
    sigma = within_class_covariance(X, y)
    mean_variance = (np.trace(sigma) - z @ sigma @ z) / (X.shape[1] - 1)
    if mean_variance <= 0:
        raise ValueError("the classes do not vary in any direction orthogonal to ẑ: the ratio is undefined")
    return float(u @ sigma @ u / mean_variance)


# ---------------------------------------------------------------------------------------------------
# The dimension argument
# ---------------------------------------------------------------------------------------------------

def fgsm_threshold(w, b, X) -> np.ndarray:
    """Smallest L∞ step ``ε*(x) = |s(x)|/‖w‖₁`` [n] for which ``x − ε sign(w) sign(s(x))`` (the fast
    gradient sign step) reaches the boundary of ``s(x) = w·x + b``."""
    X = _matrix("X", X)
    w = _normal(w, X.shape[1])
    return np.abs(X @ w + _scalar("b", b)) / np.abs(w).sum()


#: The largest output :func:`replicate_pixels` makes (2³¹ values, 16 GiB in float64).
MAX_REPLICATED_VALUES = 2**31


def replicate_pixels(X, k: int, shape: tuple[int, int] = (8, 8)) -> np.ndarray:
    """Images [n, h·w] (rows of ``X``, ``shape = (h, w)``) with every pixel replaced by a k×k block:
    [n, hk·wk]."""
    X = _matrix("X", X)
    k = check_int("k", k, low=1)
    h, w = shape
    if X.shape[1] != h * w:
        raise ValueError(f"X must have shape [n, {h * w}] for images of shape {shape}, got {list(X.shape)}")
    values = X.shape[0] * h * w * k * k          # Python ints: no overflow (numpy's repeat would crash)
    if values > MAX_REPLICATED_VALUES:
        raise ValueError(f"k={k} would make {X.shape[0]} images of {h * k}×{w * k} pixels "
                         f"({values:.3g} values), more than {MAX_REPLICATED_VALUES:.3g}")
    images = X.reshape(-1, h, w).repeat(k, axis=1).repeat(k, axis=2)
    return images.reshape(X.shape[0], h * k * w * k)


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------

def plane_data(n: int, dim: int = 100, *, separation: float = 4.1, noise: float = 0.0,
               seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two Gaussian classes on a random 2-D affine plane of ``R^dim``.

    In plane coordinates the classes are ``N((∓separation/2, 0), I₂)`` (``n`` points each, labels −1
    then +1); the plane has a random orthonormal basis and a random offset. ``noise`` > 0 adds
    isotropic Gaussian noise of that standard deviation in the ``dim − 2`` directions orthogonal to it.
    The nearest-centroid error of the population is ``Φ(−separation/2)`` (2.0 % for 4.1).

    Returns
    -------
    X [2n, dim], y [2n], normal [dim]: a unit vector orthogonal to the plane.
    """
    seed = resolve_seed(seed, "tilting.plane_data")
    n, dim = check_int("n", n, low=1), check_int("dim", dim, low=3)
    separation = check_real("separation", separation, low=0.0, low_open=True)
    noise = check_real("noise", noise, low=0.0)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    plane, rest = basis[:, :2], basis[:, 2:]
    coords = rng.standard_normal((2 * n, 2))
    coords[:, 0] += np.repeat([-separation / 2, separation / 2], n)
    offset = rng.standard_normal(dim)
    X = offset + coords @ plane.T
    if noise > 0:
        X = X + noise * rng.standard_normal((2 * n, dim - 2)) @ rest.T
    y = np.repeat([-1.0, 1.0], n)
    return X, y, rest[:, 0].copy()


def digits_split(seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 images, 8×8), pixels scaled to [0, 1], split 50/50 stratified by
    class: ``X_train [n, 64], classes_train [n], X_test, classes_test``."""
    seed = resolve_seed(seed, "tilting.digits_split")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X_train, X_test, c_train, c_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.5, stratify=digits.target, random_state=seed)
    return X_train, c_train, X_test, c_test


def digit_pair(X, classes, negative: int, positive: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``X`` of the two digits, with ``y = −1`` for ``negative`` (class I) and ``+1`` for
    ``positive`` (class J)."""
    X = _matrix("X", X)
    classes = np.asarray(classes)
    if classes.shape != (X.shape[0],):
        raise ValueError(f"classes must have shape [{X.shape[0]}], got {list(classes.shape)}")
    negative, positive = check_int("negative", negative), check_int("positive", positive)
    if negative == positive:
        raise ValueError(f"negative and positive must differ, got {negative!r} twice")
    keep = (classes == negative) | (classes == positive)
    for name, digit in (("negative", negative), ("positive", positive)):
        if not (classes == digit).any():
            raise ValueError(f"{name}={digit!r} does not occur in classes")
    return X[keep], np.where(classes[keep] == positive, 1.0, -1.0)


def flip_labels(y, fraction: float, seed: int | None = None) -> np.ndarray:
    """A copy of ``y`` with ``round(fraction·n)`` labels, chosen at random, flipped."""
    seed = resolve_seed(seed, "tilting.flip_labels")
    y = _array("y", y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {list(y.shape)}")
    _labels(y, len(y))
    fraction = check_real("fraction", fraction, low=0.0, high=1.0)
    flipped = y.copy()
    chosen = np.random.default_rng(seed).choice(len(y), int(round(fraction * len(y))), replace=False)
    flipped[chosen] *= -1
    return flipped


# ---------------------------------------------------------------------------------------------------
# Linear SVMs along a regularisation path
# ---------------------------------------------------------------------------------------------------

def critical_C(X, y) -> float:
    """The critical ``C₀``: the class-balanced linear SVM is the nearest-centroid classifier for every
    ``C ≤ C₀`` (and generically not above).

    For ``svm_path`` (scikit-learn's ``SVC(kernel="linear", class_weight="balanced")``, i.e. the loss
    ``mean_bal hinge(y s) + λ‖w‖²`` with ``C = 1/(2nλ)``) every point is a margin violator when
    ``C ≤ C₀ = 4 / (n (max_{y=+1} a − min_{y=−1} a))``, ``a_k = (j − i)·x_k``; the normal is then
    ``w = C n (j − i)/2``. ``C₀`` is finite and positive because ``max_{y=+1} a − min_{y=−1} a ≥
    mean_{y=+1} a − mean_{y=−1} a = ‖j − i‖² > 0``. Below ``C₀`` the intercept is not unique; at ``C₀``
    it is. Above ``C₀`` the extreme points' dual variables leave their bound and the normal generically
    tilts away from ``ẑ``.
    """
    X, y = _data(X, y)
    nearest_centroid_normal(X, y)          # raises if the centroids coincide
    i, j = class_centroids(X, y)
    a = X @ (j - i)
    return float(4.0 / (len(y) * (a[y > 0].max() - a[y < 0].min())))


def nc_angle_rounding_bound(X, y) -> float:
    """Worst-case float64 rounding error (radians) of :func:`deviation_angle` for a normal that is
    exactly parallel to ``j − i`` in real arithmetic but computed as a weighted sum of the data, as
    libsvm's ``w = Σ_k α_k y_k x_k`` is at ``C ≤ C₀`` (``α_k = C n/(2 n_class)``).

    With the float64 unit roundoff ``eps_64 = 2⁻⁵³``, a sum of ``n`` products errs componentwise by at
    most ``(n + 2) eps_64 Σ_k |α_k x_k|`` (the standard bound for any summation order, plus the rounding
    of the products and of ``α_k``), i.e. by ``(n + 2) eps_64 · 2 mean_bal|x| / ‖j − i‖`` relative to
    ``‖w‖``; the centroid difference ``j − i`` computed from class means errs by as much relative to its
    norm; and evaluating the angle of two unit vectors adds at most ``(d + 8) eps_64``. The bound is the
    sum:

        (n + 2) eps_64 · 4 ‖mean_bal |x|‖ / ‖j − i‖ + (d + 8) eps_64.
    """
    X, y = _data(X, y)
    n, d = X.shape
    i, j = class_centroids(X, y)
    eps_64 = 2.0 ** -53
    mean_abs = 0.5 * (np.abs(X[y < 0]).mean(axis=0) + np.abs(X[y > 0]).mean(axis=0))
    return float((n + 2) * eps_64 * 4 * np.linalg.norm(mean_abs) / np.linalg.norm(j - i) + (d + 8) * eps_64)


@dataclass(frozen=True)
class SharpTilt:
    """The SVM just above ``C₀`` (:func:`sharp_tilt`).

    Attributes
    ----------
    eps : the relative step, ``C = (1 + eps) C₀``.
    phi : angle (radians) between ``Δ = p − q`` and ``j − i``, with ``p`` the point of J with the largest
        ``a = (j − i)·x`` and ``q`` the point of I with the smallest.
    theta_first_order : ``eps · cos φ · sin φ``, the first-order angle.
    theta_exact : ``atan(eps cos φ sin φ / (1 + eps sin²φ))``, the exact angle of the two-point solution.
    w, b : the two-point solution itself (normal and intercept).
    premise : whether the two-point solution is the SVM (its KKT conditions hold: every other point has
        ``y s ≤ 1`` and both free dual weights lie strictly inside ``(0, C c_k)``).
    eps_max : the largest step for which the premise holds: the margins ``y s`` and ``β`` are affine in
        ``eps``, so it is the smallest ``eps`` at which a third point reaches the margin or ``β`` reaches
        its bound (``inf`` if neither ever happens; 0 if a third point already sits on the margin at ``C₀``).
    """

    eps: float
    phi: float
    theta_first_order: float
    theta_exact: float
    w: np.ndarray
    b: float
    premise: bool
    eps_max: float


def sharp_tilt(X, y, eps: float) -> SharpTilt:
    """The class-balanced linear SVM at ``C = (1 + eps) C₀`` when only the two extreme points ``p``
    (largest ``a`` in J) and ``q`` (smallest ``a`` in I) leave their upper bound.

    At ``C₀`` every dual weight is at its bound ``C c_k``, ``c_k = n/(2 n_class)``, and ``p``, ``q`` sit
    exactly on the margin. Just above, their weights drop by the same ``β`` (``Σ α_k y_k = 0``), so
    ``w = (nC/2)(j − i) − β Δ`` with ``Δ = p − q``, and the margin conditions ``w·p + b = 1``,
    ``w·q + b = −1`` give ``w·Δ = 2``, hence ``β = eps (nC₀/2)(j − i)·Δ / ‖Δ‖²``. The angle with
    ``ẑ`` is then exactly ``atan(eps cos φ sin φ / (1 + eps sin²φ))`` and ``eps cos φ sin φ`` to first
    order. ``premise`` says whether this is the SVM (no third point reaches the margin).
    """
    X, y = _data(X, y)
    eps = check_real("eps", eps, low=0.0, low_open=True)
    n = len(y)
    i, j = class_centroids(X, y)
    g = j - i
    a = X @ g
    pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y < 0)
    p_idx, q_idx = pos[np.argmax(a[pos])], neg[np.argmin(a[neg])]
    delta = X[p_idx] - X[q_idx]
    cos_phi = float(g @ delta / (np.linalg.norm(g) * np.linalg.norm(delta)))
    phi = math.acos(min(1.0, max(-1.0, cos_phi)))
    sin_phi = math.sin(phi)
    C0 = critical_C(X, y)
    half = n * C0 / 2
    beta1 = half * float(g @ delta) / float(delta @ delta)     # β = eps · beta1
    # w = w0 + eps w1 and b = b0 + eps b1 (b from w·p + b = 1), so every margin is affine in eps
    w0, w1 = half * g, half * g - beta1 * delta
    b0, b1 = float(1.0 - w0 @ X[p_idx]), float(-(w1 @ X[p_idx]))
    m0, m1 = y * (X @ w0 + b0), y * (X @ w1 + b1)
    w, b = w0 + eps * w1, b0 + eps * b1
    margins = m0 + eps * m1
    others = np.ones(n, dtype=bool)
    others[[p_idx, q_idx]] = False
    upper0 = C0 * n / (2 * max(len(pos), len(neg)))     # the smaller of the two bounds C c_k, at C₀
    rising = others & (m1 > 0)
    eps_max = float(np.min((1.0 - m0[rising]) / m1[rising], initial=math.inf))
    if beta1 <= 0:                                         # β ≤ 0: no two-point solution at any eps
        eps_max = 0.0
    elif beta1 > upper0:                                   # eps·beta1 < (1 + eps)·upper0
        eps_max = min(eps_max, upper0 / (beta1 - upper0))
    eps_max = max(eps_max, 0.0)
    premise = bool(margins[others].max() <= 1.0 and 0.0 < eps * beta1 < (1.0 + eps) * upper0)
    return SharpTilt(eps, phi, eps * cos_phi * sin_phi,
                     math.atan(eps * cos_phi * sin_phi / (1.0 + eps * sin_phi**2)), w, b, premise, eps_max)


def svm_path(X, y, Cs, *, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced linear SVMs (``SVC(kernel="linear", class_weight="balanced")``, libsvm) for
    every ``C`` in ``Cs``: normals ``W`` [len(Cs), d] and intercepts ``b`` [len(Cs)].

    ``tol`` is libsvm's stopping tolerance on the optimality conditions (scikit-learn's default is
    1e-3; the tighter default here makes neighbouring ``C`` comparable).
    """
    from sklearn.svm import SVC

    X, y = _data(X, y)
    Cs = np.atleast_1d(_array("Cs", Cs))
    if Cs.ndim != 1 or not (np.isfinite(Cs).all() and (Cs > 0).all()):
        raise ValueError(f"Cs must be positive finite numbers, got {Cs!r}")
    if Cs.size == 0:
        raise ValueError("Cs must hold at least one C, got none")
    tol = check_real("tol", tol, low=0.0, low_open=True)
    W, b = np.empty((len(Cs), X.shape[1])), np.empty(len(Cs))
    for k, C in enumerate(Cs):
        svm = SVC(kernel="linear", C=float(C), class_weight="balanced", tol=tol).fit(X, y)
        W[k], b[k] = svm.coef_[0], svm.intercept_[0]
    return W, b


# ---------------------------------------------------------------------------------------------------
# Many classifiers at once
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassifierStatistics:
    """Per-classifier statistics, arrays of shape [m] (``centroid_distances``: [m, 2]).

    Attributes
    ----------
    theta : deviation angle θ (radians), from ``W`` and the centroids in float64.
    half_gap : ``½‖j − i‖`` of each classifier's pair of classes.
    d_adv : class-balanced mean of ``y·d(x)``, from the kernel's score sums.
    centroid_distances : ``(d(i), d(j))``, the signed distances of the two centroids from the boundary:
        the centroids' coordinates along ``ŵ`` in the tilting plane (along ``ẑ`` they sit at
        ``∓half_gap`` from their midpoint). ``d_adv = (d(j) − d(i))/2``.
    error : fraction of the classifier's points with ``y·s ≤ 0``.
    d_err : mean of ``−y·d(x)`` over those points (NaN when there are none).
    margin : ``min y·d(x)`` (negative when some point is misclassified).
    counts : ``(n_I, n_J)``, the number of points of each class.
    """

    theta: np.ndarray
    half_gap: np.ndarray
    d_adv: np.ndarray
    centroid_distances: np.ndarray
    error: np.ndarray
    d_err: np.ndarray
    margin: np.ndarray
    counts: np.ndarray


def _class_ids(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape [{n}] (one per row of X), got {list(labels.shape)}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    return labels


def _classifiers(X, labels, W, b, positive, negative):
    X, W = _matrix("X", X), _matrix("W", W)
    n, d = X.shape
    m = W.shape[0]
    if W.shape[1] != d:
        raise ValueError(f"W must have shape [m, {d}] for X of shape {list(X.shape)}, got {list(W.shape)}")
    b = _array("b", b)
    if b.shape != (m,):
        raise ValueError(f"b must have shape [{m}], got {list(b.shape)}")
    if not np.isfinite(b).all():
        raise ValueError(f"b must be finite, got NaN or infinity at index {int(np.argmin(np.isfinite(b)))}")
    labels = _class_ids(labels, n)
    try:
        pos = np.broadcast_to(np.asarray(positive), (m,)).astype(np.int64)
        neg = np.broadcast_to(np.asarray(negative), (m,)).astype(np.int64)
    except ValueError:
        raise ValueError(f"positive and negative must be class ids or arrays of shape [{m}], got "
                         f"{positive!r} and {negative!r}") from None
    norms = np.linalg.norm(W, axis=1)
    if (norms == 0).any():
        raise ValueError(f"W must have non-zero rows, got a zero row at index {int(np.argmin(norms))}")
    classes = np.unique(labels)
    for name, ids in (("positive", pos), ("negative", neg)):
        missing = np.setdiff1d(ids, classes)
        if len(missing):
            raise ValueError(f"{name} names classes absent from labels: {missing.tolist()}")
    if (pos == neg).any():
        raise ValueError(f"positive and negative must differ, got {int(pos[pos == neg][0])} for both")
    return X, labels, W, b, pos, neg, norms


def float32_error_bound(X, labels, W, b, positive=1, negative=-1) -> np.ndarray:
    """A worst-case bound [m] on the error of ``d_adv`` when the scores are computed and summed in
    float32 (as :func:`classifier_statistics` does by default).

    With the float32 unit roundoff ``eps_32 = 2⁻²⁴``, rounding the inputs and a ``d``-term dot product
    perturb a score by at most ``(d + 4) eps_32 (|w|·|x| + |b|)``, and summing ``n`` scores adds at most
    ``n eps_32 Σ|s|`` (the standard bounds for recursive summation). Averaged over a class and divided
    by ``‖w‖``:

        bound = eps_32 ((d + 4) max_c mean_c(|w|·|x| + |b|) + n max_c mean_c |s|) / ‖w‖,

    with the means over each of the classifier's two classes ``c``.
    """
    X, labels, W, b, pos, neg, norms = _classifiers(X, labels, W, b, positive, negative)
    n, d = X.shape
    eps_32 = 2.0 ** -24
    magnitude = np.abs(X) @ np.abs(W).T + np.abs(b)          # [n, m]
    scores = np.abs(X @ W.T + b)                               # [n, m]
    bound = np.zeros(W.shape[0])
    for ids in (pos, neg):
        member = labels[:, None] == ids[None, :]              # [n, m]
        count = member.sum(axis=0)
        mean_magnitude = (magnitude * member).sum(axis=0) / count
        mean_score = (scores * member).sum(axis=0) / count
        bound = np.maximum(bound, eps_32 * ((d + 4) * mean_magnitude + n * mean_score) / norms)
    return bound


def classifier_statistics(X, labels, W, b, positive=1, negative=-1, *, device=None,
                          dtype: torch.dtype = torch.float32, backend: str = "auto") -> ClassifierStatistics:
    """Statistics of ``m`` linear classifiers on the same data, in one pass over it.

    Classifier ``k`` (``W[k]`` [d], ``b[k]``) separates class ``negative[k]`` (``y = −1``) from class
    ``positive[k]`` (``y = +1``) and ignores the other rows. The scores are reduced by
    :func:`theorylab.kernels.classifier_stats` (the Triton kernel on a GPU, its torch reference on a
    CPU) in ``dtype``; the angles are computed in float64.

    Parameters
    ----------
    X : array [n, d]
    labels : integer array [n]
        Class id of every row (for two classes, labels in {−1, +1} with the default
        ``positive=1, negative=-1``).
    W : array [m, d]; b : array [m]
    positive, negative : int or integer array [m]
    device : torch device, default ``config.device()``
    dtype : torch dtype of the scores (float32 by default, as on the GPU)
    backend : {"auto", "triton", "torch"}, passed to the kernel's dispatch

    Returns
    -------
    ClassifierStatistics
    """
    X, labels, W, b, pos, neg, norms = _classifiers(X, labels, W, b, positive, negative)
    device = _device(device)
    dtype = check_float_dtype("dtype", dtype)

    # Geometry in float64: centroids of every class, then ẑ and θ per classifier.
    classes = np.unique(labels)
    centroids = {c: X[labels == c].mean(axis=0) for c in classes.tolist()}
    gaps = np.stack([centroids[p] - centroids[q] for p, q in zip(pos.tolist(), neg.tolist(), strict=True)])
    gap_norms = np.linalg.norm(gaps, axis=1)
    z = gaps / gap_norms[:, None]
    w_hat = W / norms[:, None]
    cos = np.einsum("kd,kd->k", w_hat, z)
    theta = np.arctan2(np.linalg.norm(w_hat - cos[:, None] * z, axis=1), cos)

    as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
    sums = classifier_stats(as_tensor(X), torch.as_tensor(labels, device=device), as_tensor(W), as_tensor(b),
                            torch.as_tensor(pos, device=device), torch.as_tensor(neg, device=device),
                            backend=backend).cpu().numpy()
    n_neg, n_pos, score_neg, score_pos, err_neg, err_pos, depth, min_margin = sums.T
    centroid_distances = np.stack([score_neg / n_neg, score_pos / n_pos], axis=1) / norms[:, None]
    errors = err_neg + err_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        d_err = np.where(errors > 0, depth / np.maximum(errors, 1) / norms, np.nan)
    return ClassifierStatistics(
        theta=theta, half_gap=gap_norms / 2,
        d_adv=(centroid_distances[:, 1] - centroid_distances[:, 0]) / 2,
        centroid_distances=centroid_distances, error=errors / (n_neg + n_pos), d_err=d_err,
        margin=min_margin / norms, counts=np.stack([n_neg, n_pos], axis=1))


# ---------------------------------------------------------------------------------------------------
# Paths, paired tests and the float32 cross-check (the chapter's machinery)
# ---------------------------------------------------------------------------------------------------

def path_angles(W, X, y) -> np.ndarray:
    """Deviation angles θ [m] (radians) of the normals ``W`` [m, d] against the centroids of ``(X, y)``."""
    W = _matrix("W", W)
    return np.array([deviation_angle(w, X, y) for w in W])


def path_adversarial_distances(W, b, X, y) -> np.ndarray:
    """Adversarial distances ``d_adv`` [m] of the classifiers ``(W[k], b[k])`` on ``(X, y)``."""
    W = _matrix("W", W)
    b = _array("b", b)
    if b.shape != (W.shape[0],):
        raise ValueError(f"b must have shape [{W.shape[0]}] (one intercept per row of W), got "
                         f"{list(b.shape)}")
    return np.array([adversarial_distance(w, b_k, X, y) for w, b_k in zip(W, b, strict=True)])


@dataclass(frozen=True)
class AngleDips:
    """How far θ and ``‖w‖`` decrease along a regularisation path (:func:`angle_dips`).

    Attributes
    ----------
    dip : the largest decrease of θ between neighbouring levels of ``C`` (radians; negative when θ grows
        at every step).
    dip_ratio : ``dip`` over ``4r``, ``r`` the solver resolution of θ (radians): above 1 the dip cannot be
        solver error.
    norm_ratio : the largest decrease of ``‖w‖`` between neighbouring levels over its own ``4r``
        (dimensionless; at most 1 by the theorem that ``‖w‖`` does not decrease).
    """

    dip: float
    dip_ratio: float
    norm_ratio: float


def angle_dips(X, y, levels: int = 80) -> AngleDips:
    """The regularisation path of ``(X, y)`` on ``levels`` values of ``C`` from ``C₀`` to ``10⁵C₀``, solved at
    tolerances 1e-9 and 1e-12; the solver resolution ``r`` (largest change between the two) measured for θ
    and for ``‖w‖`` separately. Returns an :class:`AngleDips`: the largest decrease of θ between
    neighbouring levels (``dip``, rad), that decrease over ``4r`` (``dip_ratio``) and the largest decrease of
    ``‖w‖`` over its ``4r`` (``norm_ratio``); a ratio above 1 cannot be solver error."""
    X, y = _data(X, y)
    levels = check_int("levels", levels, low=2)
    Cs = critical_C(X, y) * np.logspace(0, 5, levels)
    W, W_tight = svm_path(X, y, Cs)[0], svm_path(X, y, Cs, tol=1e-12)[0]
    theta, norms = path_angles(W, X, y), np.linalg.norm(W, axis=1)
    r = np.abs(theta - path_angles(W_tight, X, y)).max()
    r_w = np.abs(norms - np.linalg.norm(W_tight, axis=1)).max()
    dip, norm_dip = -np.diff(theta).min(), -np.diff(norms).min()

    def over(a, b):
        return a / b if b > 0 else (math.inf if a > 0 else 0.0)
    return AngleDips(dip=float(dip), dip_ratio=float(over(dip, 4 * r)),
                     norm_ratio=float(over(norm_dip, 4 * r_w)))


@dataclass(frozen=True)
class Float32Consistency:
    """The float32 statistics of ``m`` classifiers checked against float64 (:func:`float32_consistency`).

    Attributes
    ----------
    stats : the float32 :class:`ClassifierStatistics` (arrays [m]).
    identity_ratio : the largest ``|d_adv − ½‖j − i‖ cos θ|`` over :func:`float32_error_bound`
        (dimensionless; at most 1 when the kernel is right).
    sums_ratio : the largest difference of a class mean of the distances from float64, over the same bound.
    count_mismatch : the number of classifiers whose class counts differ, or whose error counts differ by
        more than ``ambiguous`` allows for them.
    ambiguous : the number of (point, classifier) pairs whose float64 score lies within the float32
        rounding of zero (their sign may legitimately flip).
    """

    stats: ClassifierStatistics
    identity_ratio: float
    sums_ratio: float
    count_mismatch: int
    ambiguous: int


def float32_consistency(X, labels, W, b, positive, negative, *, device=None) -> Float32Consistency:
    """Cross-check :func:`classifier_statistics` in float32 (the kernel's precision) against float64.

    Returns a :class:`Float32Consistency`: the float32 statistics (``stats``) and, each against
    :func:`float32_error_bound`, ``identity_ratio``, the largest ``|d_adv − ½‖j − i‖ cos θ|`` over the bound;
    ``sums_ratio``, the largest difference of a class mean of the distances from float64 over the bound;
    ``count_mismatch``, the number of classifiers whose class counts differ or whose error counts differ by
    more than the number of their points whose float64 score lies within the float32 rounding of zero
    (those may legitimately flip); and ``ambiguous``, the number of such points.
    """
    X, labels, W, b, pos, neg, _ = _classifiers(X, labels, W, b, positive, negative)
    stats = classifier_statistics(X, labels, W, b, pos, neg, device=device)
    exact = classifier_statistics(X, labels, W, b, pos, neg, device="cpu", dtype=torch.float64,
                                  backend="torch")
    bound = float32_error_bound(X, labels, W, b, pos, neg)
    identity_ratio = float(np.max(np.abs(stats.d_adv - stats.half_gap * np.cos(stats.theta)) / bound))
    sums_ratio = float(np.max(np.abs(stats.centroid_distances - exact.centroid_distances) / bound[:, None]))
    member = (labels[:, None] == pos) | (labels[:, None] == neg)
    near_zero = np.abs(X @ W.T + b) <= (X.shape[1] + 4) * 2.0**-24 * (np.abs(X) @ np.abs(W).T + np.abs(b))
    flippable = (member & near_zero).sum(axis=0)
    wrong_32, wrong_64 = stats.error * stats.counts.sum(axis=1), exact.error * exact.counts.sum(axis=1)
    mismatch = (np.any(stats.counts != exact.counts, axis=1)
                | (np.abs(np.round(wrong_32 - wrong_64)) > flippable))
    return Float32Consistency(stats=stats, identity_ratio=identity_ratio, sums_ratio=sums_ratio,
                              count_mismatch=int(mismatch.sum()), ambiguous=int(flippable.sum()))
