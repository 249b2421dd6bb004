"""Boundary tilting (chapter 3): the geometry functions, the SVM path, the many-classifier statistics,
``classifier_stats``' torch path and input checks (the kernel against its reference:
``tests/test_kernel_classifier_stats.py``)."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from kernel_helpers import classifier_stats_inputs

from theorylab import tilting as tl
from theorylab.kernels import classifier_stats, classifier_stats_reference


def two_blobs(n_neg=30, n_pos=45, d=7, seed=0):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(-1.0, 1.0, (n_neg, d)), rng.normal(1.0, 1.0, (n_pos, d))] + rng.normal(size=d)
    y = np.r_[-np.ones(n_neg), np.ones(n_pos)]
    return X, y


# ---------------------------------------------------------------------------------------------------
# One classifier
# ---------------------------------------------------------------------------------------------------

def test_nearest_centroid_normal_points_from_class_minus_to_plus():
    X, y = two_blobs()
    z = tl.nearest_centroid_normal(X, y)
    i, j = X[y < 0].mean(0), X[y > 0].mean(0)
    np.testing.assert_allclose(z, (j - i) / np.linalg.norm(j - i))
    assert abs(np.linalg.norm(z) - 1) < 1e-15
    np.testing.assert_allclose(tl.nearest_centroid_normal(X, -y), -z)


def test_deviation_angle_known_values():
    X, y = two_blobs()
    z = tl.nearest_centroid_normal(X, y)
    other = np.random.default_rng(1).normal(size=z.shape)
    other -= (other @ z) * z
    assert tl.deviation_angle(3.0 * z, X, y) < 1e-15
    assert abs(tl.deviation_angle(-z, X, y) - math.pi) < 1e-15
    assert abs(tl.deviation_angle(other, X, y) - math.pi / 2) < 1e-15
    for theta in (1e-9, 0.3, 1.2, 3.0):
        w = math.cos(theta) * z + math.sin(theta) * other / np.linalg.norm(other)
        assert abs(tl.deviation_angle(w, X, y) - theta) < 1e-14


@pytest.mark.parametrize("n_neg, n_pos", [(30, 45), (50, 5)])
def test_identity_holds_for_any_w_and_b(n_neg, n_pos):
    X, y = two_blobs(n_neg, n_pos)
    i, j = tl.class_centroids(X, y)
    rng = np.random.default_rng(2)
    for _ in range(5):
        w, b = rng.normal(size=X.shape[1]), rng.normal() * 10
        predicted = 0.5 * np.linalg.norm(j - i) * math.cos(tl.deviation_angle(w, X, y))
        assert abs(tl.adversarial_distance(w, b, X, y) - predicted) < 1e-12
        assert abs(tl.adversarial_distance(w, b, X, y) - tl.adversarial_distance(w, 0.0, X, y)) < 1e-12


def test_mirror_and_projected_images():
    X, y = two_blobs()
    w, b = np.arange(1.0, 8.0), -0.5
    d = tl.signed_distance(w, b, X)
    mirrors, projections = tl.mirror_images(w, b, X), tl.projected_images(w, b, X)
    np.testing.assert_allclose(tl.signed_distance(w, b, mirrors), -d, atol=1e-12)
    np.testing.assert_allclose(tl.signed_distance(w, b, projections), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(mirrors - X, axis=1), 2 * np.abs(d), atol=1e-12)
    assert mirrors.shape == X.shape


def test_error_rate_and_distance():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([-1.0, -1.0, 1.0, 1.0])
    w, b = np.array([2.0]), -5.0           # boundary at x = 2.5: the point x = 2 is wrong by 0.5
    assert tl.error_rate(w, b, X, y) == 0.25
    assert tl.error_distance(w, b, X, y) == pytest.approx(0.5)
    assert math.isnan(tl.error_distance(w, -3.0, X, y))


def test_tilted_classifier_keeps_predictions_on_the_plane():
    X, y, normal = tl.plane_data(200, 30, seed=4)
    w0, b0 = tl.nearest_centroid_classifier(X, y)
    i, j = tl.class_centroids(X, y)
    for theta in (0.0, 0.7, 1.5, math.pi / 2 - 1e-6):
        w, b = tl.tilted_classifier(X, y, normal, theta)
        assert abs(np.linalg.norm(w) - 1) < 1e-14
        assert abs(tl.deviation_angle(w, X, y) - theta) < 1e-12
        np.testing.assert_array_equal(np.sign(X @ w + b), np.sign(X @ w0 + b0))
        predicted = 0.5 * np.linalg.norm(j - i) * math.cos(theta)
        assert tl.adversarial_distance(w, b, X, y) == pytest.approx(predicted, rel=1e-9)
    # a normal with a component along ẑ: only its orthogonal part is used
    z = tl.nearest_centroid_normal(X, y)
    w, _ = tl.tilted_classifier(X, y, normal + 3 * z, 0.4)
    np.testing.assert_allclose(w, tl.tilted_classifier(X, y, normal, 0.4)[0], atol=1e-14)


@pytest.mark.parametrize("separation", [4.1, 2.5])
def test_plane_data_has_the_population_nearest_centroid_error(separation):
    """The generator's classes have the stated nearest-centroid error Φ(−separation/2) (chapter 3 uses
    4.1, a 2.0 % error). Pooled over 10 draws of 2000 points per class the binomial s.e. is under 0.2 %
    of the points: 4 s.e. rejects a rate of 0 and one off by a factor of 2 at both separations."""
    from scipy.stats import norm
    errors = []
    for seed in range(10):
        X, y, _ = tl.plane_data(2000, 100, separation=separation, seed=seed)
        errors.append(tl.error_rate(*tl.nearest_centroid_classifier(X, y), X, y))
    p = norm.cdf(-separation / 2)
    se = math.sqrt(p * (1 - p) / (10 * 4000))
    assert 4 * se < p / 2
    assert abs(np.mean(errors) - p) <= 4 * se


def test_pixel_replication_is_exact():
    X, y = two_blobs(d=16)
    X = np.abs(X)
    w1, b1 = tl.nearest_centroid_classifier(X, y)
    X3 = tl.replicate_pixels(X, 3, shape=(4, 4))
    assert X3.shape == (len(X), 144)
    assert X3.reshape(-1, 12, 12)[0, 4, 5] == X.reshape(-1, 4, 4)[0, 1, 1]
    w3, b3 = tl.nearest_centroid_classifier(X3, y)
    np.testing.assert_allclose(tl.fgsm_threshold(w3, b3, X3), tl.fgsm_threshold(w1, b1, X), rtol=1e-12)
    np.testing.assert_allclose(tl.signed_distance(w3, b3, X3), 3 * tl.signed_distance(w1, b1, X), rtol=1e-12)


def test_fgsm_threshold_reaches_the_boundary():
    X, y = two_blobs()
    w, b = np.linspace(-1, 1, 7) + 0.1, 0.3
    eps = tl.fgsm_threshold(w, b, X)
    s = X @ w + b
    stepped = X - eps[:, None] * np.sign(w)[None, :] * np.sign(s)[:, None]
    np.testing.assert_allclose(stepped @ w + b, 0.0, atol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda X, y: tl.nearest_centroid_normal(X, np.where(y > 0, 1, 0)), "labels in"),
    (lambda X, y: tl.nearest_centroid_normal(X, np.ones_like(y)), "both classes"),
    (lambda X, y: tl.nearest_centroid_normal(X, y[:-1]), "y must have shape"),
    (lambda X, y: tl.nearest_centroid_normal(X[:, :, None], y), "2-D"),
    (lambda X, y: tl.deviation_angle(np.zeros(7), X, y), "non-zero"),
    (lambda X, y: tl.deviation_angle(np.ones(6), X, y), r"w must have shape \[7\]"),
    (lambda X, y: tl.adversarial_distance(np.zeros(7), 0.0, X, y), "non-zero"),
    (lambda X, y: tl.adversarial_distance(np.ones(7), 0.0, X, 2 * y), "labels in"),
    (lambda X, y: tl.mirror_images(np.ones(5), 0.0, X), "w must have shape"),
    (lambda X, y: tl.mirror_images(np.zeros(7), 0.0, X), "non-zero"),
    (lambda X, y: tl.tilted_classifier(X, y, np.ones(7), 4.0), "theta must lie in"),
    (lambda X, y: tl.tilted_classifier(X, y, np.ones(7), 2.0), r"theta must lie in \[0, π/2\)"),
    (lambda X, y: tl.tilted_classifier(X, y, np.ones(7), math.pi / 2), "theta="),
    (lambda X, y: tl.tilted_classifier(X, y, np.ones(7), -0.1), "theta must lie in"),
    (lambda X, y: tl.tilted_classifier(X, y, tl.nearest_centroid_normal(X, y), 0.3), "parallel"),
    (lambda X, y: tl.tilted_classifier(X, y, np.zeros(7), 0.3), "normal must be a finite non-zero"),
    (lambda X, y: tl.replicate_pixels(X, 0, shape=(7, 1)), "k must be an integer ≥ 1"),
    (lambda X, y: tl.replicate_pixels(X, 2, shape=(2, 2)), "shape"),
    (lambda X, y: tl.svm_path(X, y, [1.0, -1.0]), "Cs must be positive"),
    (lambda X, y: tl.flip_labels(y, 1.5), "fraction"),
    (lambda X, y: tl.digit_pair(X, np.arange(len(X)), 3, 3), "must differ"),
])
def test_bad_input_raises_value_error(call, match):
    X, y = two_blobs()
    with pytest.raises(ValueError, match=match):
        call(X, y)


# ---------------------------------------------------------------------------------------------------
# The SVM path
# ---------------------------------------------------------------------------------------------------

def test_svm_is_the_nearest_centroid_classifier_up_to_critical_C():
    X, y = two_blobs(25, 35, d=5, seed=3)
    C0 = tl.critical_C(X, y)
    W, b = tl.svm_path(X, y, [0.5 * C0, C0, 3 * C0])
    i, j = tl.class_centroids(X, y)
    # below C0 exactly (every dual variable pinned at its bound); at C0 the two extreme points sit on their
    # margins, where libsvm's stopping rule (tol 1e-9) may leave their dual variables just short of it
    assert tl.deviation_angle(W[0], X, y) < 1e-12 and tl.deviation_angle(W[1], X, y) < 1e-8
    np.testing.assert_allclose(W[0], len(y) * 0.5 * C0 * (j - i) / 2, rtol=1e-12)
    np.testing.assert_allclose(W[1], len(y) * C0 * (j - i) / 2, rtol=1e-6)
    assert tl.deviation_angle(W[2], X, y) > 1e-3
    # at C0 the extreme points sit exactly on their margins
    margins = y * (X @ W[1] + b[1])
    assert margins.max() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("n_neg,n_pos", [(30, 45), (40, 40)])
def test_sharp_tilt_is_the_svm_just_above_critical_C(n_neg, n_pos):
    X, y = two_blobs(n_neg, n_pos)
    eps = 1e-4
    st = tl.sharp_tilt(X, y, eps)
    assert st.premise
    W, b = tl.svm_path(X, y, [(1 + eps) * tl.critical_C(X, y)], tol=1e-12)
    np.testing.assert_allclose(st.w, W[0], rtol=1e-8, atol=1e-10 * np.linalg.norm(W[0]))
    assert abs(st.b - b[0]) <= 1e-7 * max(1.0, abs(b[0]))
    assert abs(tl.deviation_angle(st.w, X, y) - st.theta_exact) <= 1e-12
    assert 0 < st.theta_exact < st.theta_first_order <= st.theta_exact * (1 + eps + eps**2 / 12)
    # a huge step lets other points reach the margin: the two-point solution is no longer the SVM
    assert not tl.sharp_tilt(X, y, 10.0).premise
    with pytest.raises(ValueError, match="eps"):
        tl.sharp_tilt(X, y, 0.0)


@pytest.mark.parametrize("n_neg,n_pos", [(30, 45), (40, 40)])
def test_sharp_tilt_eps_max_is_where_the_premise_stops_holding(n_neg, n_pos):
    X, y = two_blobs(n_neg, n_pos)
    eps_max = tl.sharp_tilt(X, y, 1e-4).eps_max
    assert 0 < eps_max < 10.0
    assert tl.sharp_tilt(X, y, 2 * eps_max).eps_max == eps_max     # a property of the data, not of eps
    assert tl.sharp_tilt(X, y, eps_max * (1 - 1e-6)).premise
    assert not tl.sharp_tilt(X, y, eps_max * (1 + 1e-6)).premise
    # just below eps_max the two-point solution is still libsvm's SVM
    eps = 0.9 * eps_max
    W, _ = tl.svm_path(X, y, [(1 + eps) * tl.critical_C(X, y)], tol=1e-12)
    st = tl.sharp_tilt(X, y, eps)
    np.testing.assert_allclose(st.w, W[0], rtol=1e-7, atol=1e-9 * np.linalg.norm(W[0]))


def test_nc_angle_rounding_bound_covers_a_weighted_sum_parallel_to_j_minus_i():
    X, y = two_blobs(25, 60, d=9, seed=6)
    X = X * 1e3 + 5e3                      # an offset larger than ‖j − i‖: the sums cancel
    bound = tl.nc_angle_rounding_bound(X, y)
    alpha = 0.37 * len(y) / (2 * np.where(y < 0, np.sum(y < 0), np.sum(y > 0)))
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = rng.permutation(len(y))
        w = np.zeros(X.shape[1])
        for k in order:                    # recursive summation in a random order
            w += alpha[k] * y[k] * X[k]
        assert tl.deviation_angle(w, X, y) <= bound
    assert bound < 1e-9
    with pytest.raises(ValueError, match="coincide"):
        tl.critical_C(np.r_[X[:2], X[:2]], np.array([-1.0, 1.0, 1.0, -1.0]))


def test_flip_labels_flips_the_requested_number():
    y = np.r_[-np.ones(40), np.ones(60)]
    flipped = tl.flip_labels(y, 0.1, seed=5)
    assert np.sum(flipped != y) == 10 and np.array_equal(tl.flip_labels(y, 0.1, seed=5), flipped)


def test_digits_split_and_pair():
    X_train, c_train, X_test, c_test = tl.digits_split(seed=0)
    assert X_train.shape[1] == 64 and len(X_train) + len(X_test) == 1797
    assert X_train.min() >= 0 and X_train.max() <= 1
    X, y = tl.digit_pair(X_train, c_train, 3, 7)
    assert set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(X[y > 0], X_train[c_train == 7])


def test_tilt_direction_completes_the_nearest_centroid_normal():
    X, y = two_blobs()
    z = tl.nearest_centroid_normal(X, y)
    w = 2.0 * z + np.random.default_rng(3).normal(size=7)
    u, theta = tl.tilt_direction(w, X, y), tl.deviation_angle(w, X, y)
    assert u @ z == pytest.approx(0.0, abs=1e-14) and np.linalg.norm(u) == pytest.approx(1.0)
    np.testing.assert_allclose(w / np.linalg.norm(w), math.cos(theta) * z + math.sin(theta) * u, atol=1e-14)
    with pytest.raises(ValueError, match="no tilt direction"):
        tl.tilt_direction(3 * z, X, y)


def test_tilt_variance_ratio_averages_to_one_over_the_directions_orthogonal_to_z():
    X, y = two_blobs(d=6)
    z = tl.nearest_centroid_normal(X, y)
    basis = np.linalg.qr(np.c_[z, np.random.default_rng(4).normal(size=(6, 5))])[0][:, 1:]  # ⊥ ẑ
    ratios = [tl.tilt_variance_ratio(z + v, X, y) for v in basis.T]
    assert np.mean(ratios) == pytest.approx(1.0, rel=1e-12)
    sigma = tl.within_class_covariance(X, y)
    i, j = tl.class_centroids(X, y)
    centred = np.where((y > 0)[:, None], X - j, X - i)
    np.testing.assert_allclose(sigma, np.cov(centred.T, bias=True), atol=1e-13)
    # a direction of zero within-class variance has ratio 0
    X2 = np.c_[X, np.zeros(len(X))]
    assert tl.tilt_variance_ratio(np.r_[z, 0.0] + np.eye(7)[6], X2, y) == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(ValueError, match="at least 2 columns"):
        tl.tilt_variance_ratio([1.0], X[:, :1], y)


def test_error_mass_mirror_identity_and_hinge_bound():
    X, y = two_blobs()
    rng = np.random.default_rng(5)
    z, b_nc = tl.nearest_centroid_classifier(X, y)
    i, j = tl.class_centroids(X, y)
    for _ in range(5):
        w, b = z + rng.normal(size=7), float(rng.normal())
        e = tl.error_mass(w, b, X, y)
        mirror = np.linalg.norm(tl.mirror_images(w, b, X) - X, axis=1)
        balanced = 0.5 * (mirror[y < 0].mean() + mirror[y > 0].mean())
        theta = tl.deviation_angle(w, X, y)
        assert balanced == pytest.approx(np.linalg.norm(j - i) * math.cos(theta) + 4 * e, rel=1e-12)
        hinge = np.maximum(0.0, 1 - y * (X @ w + b))
        assert e <= 0.5 * (hinge[y < 0].mean() + hinge[y > 0].mean()) / np.linalg.norm(w) + 1e-15
    far = np.r_[-np.ones(5), np.ones(5)]
    assert tl.error_mass([1.0], 0.0, far[:, None] * 3, far) == 0.0     # no errors, no mass


# ---------------------------------------------------------------------------------------------------
# Many classifiers at once
# ---------------------------------------------------------------------------------------------------

def multiclass_problem(n=150, d=9, m=23, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    X = rng.normal(size=(n, d)) + labels[:, None] * 0.5
    W, b = rng.normal(size=(m, d)), rng.normal(size=m)
    pos = rng.integers(0, classes, m)
    neg = (pos + rng.integers(1, classes, m)) % classes
    return X, labels, W, b, pos, neg


def test_classifier_statistics_match_the_one_classifier_functions():
    X, labels, W, b, pos, neg = multiclass_problem()
    stats = tl.classifier_statistics(X, labels, W, b, pos, neg, device="cpu", dtype=torch.float64,
                                     backend="torch")
    for k in range(len(W)):
        keep = (labels == pos[k]) | (labels == neg[k])
        Xk, yk = X[keep], np.where(labels[keep] == pos[k], 1.0, -1.0)
        assert stats.theta[k] == pytest.approx(tl.deviation_angle(W[k], Xk, yk), abs=1e-13)
        assert stats.d_adv[k] == pytest.approx(tl.adversarial_distance(W[k], b[k], Xk, yk), abs=1e-12)
        assert stats.error[k] == pytest.approx(tl.error_rate(W[k], b[k], Xk, yk), abs=1e-15)
        d_err = tl.error_distance(W[k], b[k], Xk, yk)
        assert (math.isnan(d_err) and math.isnan(stats.d_err[k])) or stats.d_err[k] == pytest.approx(d_err)
        assert stats.margin[k] == pytest.approx(np.min(yk * tl.signed_distance(W[k], b[k], Xk)))
        assert stats.counts[k].tolist() == [np.sum(yk < 0), np.sum(yk > 0)]
    np.testing.assert_allclose(stats.d_adv, stats.half_gap * np.cos(stats.theta), atol=1e-12)


def test_classifier_statistics_in_float32_within_the_rounding_bound():
    X, labels, W, b, pos, neg = multiclass_problem(seed=1)
    stats = tl.classifier_statistics(X, labels, W, b, pos, neg, device="cpu")
    exact = tl.classifier_statistics(X, labels, W, b, pos, neg, device="cpu", dtype=torch.float64)
    bound = tl.float32_error_bound(X, labels, W, b, pos, neg)
    assert np.all(np.abs(stats.d_adv - exact.d_adv) <= bound)
    assert np.all(bound < 1e-3 * np.abs(exact.centroid_distances).max())


def test_classifier_statistics_two_class_labels_and_validation():
    X, y = two_blobs()
    W = np.stack([np.ones(7), tl.nearest_centroid_normal(X, y)])
    stats = tl.classifier_statistics(X, y, W, np.zeros(2), device="cpu")
    assert stats.theta[1] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="zero row"):
        tl.classifier_statistics(X, y, np.zeros((1, 7)), np.zeros(1), device="cpu")
    with pytest.raises(ValueError, match="absent"):
        tl.classifier_statistics(X, y, W, np.zeros(2), positive=5, device="cpu")
    with pytest.raises(ValueError, match=r"b must have shape \[2\]"):
        tl.classifier_statistics(X, y, W, np.zeros(3), device="cpu")
    with pytest.raises(ValueError, match="must differ"):
        tl.classifier_statistics(X, y, W, np.zeros(2), positive=1, negative=1, device="cpu")
    with pytest.raises(ValueError, match="labels must be integer"):
        tl.classifier_statistics(X, y + 0.5, W, np.zeros(2), device="cpu")


def test_a_lost_tile_of_rows_moves_d_adv_far_beyond_the_float32_bound():
    """A kernel that skipped a tile of 64 rows (a wrong mask) would move d_adv far beyond the float32
    rounding bound that the chapter's float32-vs-float64 comparison allows, for most classifiers."""
    X, labels, W, b, pos, neg = multiclass_problem(n=256, m=40, seed=2)
    exact = tl.classifier_statistics(X, labels, W, b, pos, neg, device="cpu", dtype=torch.float64,
                                     backend="torch")
    bound = tl.float32_error_bound(X, labels, W, b, pos, neg)
    for start in range(0, 256, 64):
        keep = np.ones(256, dtype=bool)
        keep[start:start + 64] = False
        lost = tl.classifier_statistics(X[keep], labels[keep], W, b, pos, neg, device="cpu",
                                        dtype=torch.float64, backend="torch")
        shift = np.abs(lost.d_adv - exact.d_adv) / bound
        assert np.median(shift) > 10 and np.mean(shift > 1) > 0.5


# ---------------------------------------------------------------------------------------------------
# classifier_stats' torch path and input checks (the kernel against its reference:
# tests/test_kernel_classifier_stats.py)
# ---------------------------------------------------------------------------------------------------

def test_classifier_stats_auto_backend_and_validation():
    X, labels, W, b, pos, neg = classifier_stats_inputs(10, 4, 3)
    torch.testing.assert_close(classifier_stats(X, labels, W, b, pos, neg, backend="torch"),
                               classifier_stats_reference(X, labels, W, b, pos, neg))
    with pytest.raises(ValueError, match="W must have shape"):
        classifier_stats(X, labels, W[:, :3], b, pos, neg)
    with pytest.raises(ValueError, match=r"b must have shape \[3\]"):
        classifier_stats(X, labels, W, b[:2], pos, neg)
    with pytest.raises(ValueError, match="labels must have shape"):
        classifier_stats(X, labels[:5], W, b, pos, neg)
    with pytest.raises(ValueError, match="positive must be an integer or have shape"):
        classifier_stats(X, labels, W, b, pos[:2], neg)
    with pytest.raises(ValueError, match="must differ"):
        classifier_stats(X, labels, W, b, pos, pos)
    with pytest.raises(TypeError, match="labels must be an integer"):
        classifier_stats(X, labels.float(), W, b, pos, neg)
    with pytest.raises(TypeError, match="X must be a floating-point"):
        classifier_stats(X.long(), labels, W, b, pos, neg)
    with pytest.raises(ValueError, match="_blocks must be three powers of two"):
        classifier_stats(X, labels, W, b, pos, neg, backend="triton", _blocks=(64, 48, 32))


# ---------------------------------------------------------------------------------------------------
# Input validation (issue 14) and the chapter's machinery moved into the library
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda X, y: tl.signed_distance(np.ones(7), "0.5", X), TypeError, "b must be a real number"),
    (lambda X, y: tl.signed_distance(np.ones(7), True, X), TypeError, "b must be a real number"),
    (lambda X, y: tl.signed_distance(np.ones(7), math.nan, X), ValueError, "b must be a finite"),
    (lambda X, y: tl.signed_distance(np.array(["a"] * 7), 0.0, X), TypeError, "w must hold real numbers"),
    (lambda X, y: tl.signed_distance(np.ones(7), 0.0, X.astype(complex)), TypeError, "X must hold real"),
    (lambda X, y: tl.signed_distance(np.ones(7), 0.0, np.where(X > 2, np.inf, X)), ValueError,
     "X must be finite, got NaN or infinity in row"),
    (lambda X, y: tl.class_centroids(X, y.astype(bool)), TypeError, "y must hold real numbers"),
    (lambda X, y: tl.flip_labels(y, "0.1"), TypeError, "fraction must be a real number"),
    (lambda X, y: tl.plane_data(10.0, 5), TypeError, "n must be an integer"),
    (lambda X, y: tl.plane_data(10, 5, noise=-1.0), ValueError, "noise must be ≥ 0"),
    (lambda X, y: tl.svm_path(X, y, [1.0], tol=0.0), ValueError, "tol must be > 0"),
    (lambda X, y: tl.mcnemar_z(np.array([1, 0]), np.array([True, False])), TypeError, "wrong_first must be"),
    (lambda X, y: tl.mcnemar_z(np.array([True]), np.array([True, False])), ValueError, "same shape"),
    (lambda X, y: tl.path_adversarial_distances(np.ones((2, 7)), [0.0], X, y), ValueError,
     r"b must have shape \[2\]"),
    (lambda X, y: tl.angle_dips(X, y, levels=1), ValueError, "levels must be an integer ≥ 2"),
    # issue 14, the last cases of tools/bad_inputs.py (before: accepted, empty arrays, errors inside torch)
    (lambda X, y: tl.digit_pair(X, y, -1, True), TypeError, "positive must be an integer, got bool"),
    (lambda X, y: tl.digit_pair(X, y, "a", 1), TypeError, "negative must be an integer, got str"),
    (lambda X, y: tl.svm_path(X, y, []), ValueError, "Cs must hold at least one C"),
    (lambda X, y: tl.classifier_statistics(X, y, np.ones((1, 7)), np.zeros(1), device="cpu",
     dtype=torch.int64),
     TypeError, "dtype must be a floating torch dtype"),
    (lambda X, y: tl.classifier_statistics(X, y, np.ones((1, 7)), np.zeros(1), device="cpu", dtype="float64"),
     TypeError, "dtype must be a floating torch dtype"),
])
def test_bad_input_names_the_argument(call, error, match):
    X, y = two_blobs()
    with pytest.raises(error, match=match):
        call(X, y)


def test_numpy_scalars_and_torch_inputs_are_accepted():
    X, y = two_blobs()
    w, b = np.linspace(-1, 1, 7) + 0.1, 0.3
    want = tl.signed_distance(w, b, X)
    np.testing.assert_allclose(tl.signed_distance(w, np.float32(b), X), want, atol=1e-7)
    as_tensors = torch.tensor(w), torch.tensor(b, dtype=torch.float64), torch.tensor(X)
    np.testing.assert_array_equal(tl.signed_distance(*as_tensors), want)
    assert tl.flip_labels(y, np.float64(0.1), seed=1).shape == y.shape
    assert tl.replicate_pixels(X[:, :4], np.int64(2), shape=(2, 2)).shape == (len(X), 16)


def test_mcnemar_sign_and_counts():
    first = np.array([True, True, True, False, False])
    second = np.array([False, False, True, True, False])
    assert tl.mcnemar_counts(first, second) == (2, 1)
    assert tl.mcnemar_z(first, second) == pytest.approx(1 / math.sqrt(3))   # positive: the first is worse
    assert tl.mcnemar_z(second, first) == pytest.approx(-1 / math.sqrt(3))
    assert tl.mcnemar_z(first, first) == 0.0


def test_path_helpers_match_the_single_classifier_functions():
    X, y = two_blobs()
    W = np.random.default_rng(3).standard_normal((4, 7))
    b = np.linspace(-1, 1, 4)
    np.testing.assert_array_equal(tl.path_angles(W, X, y), [tl.deviation_angle(w, X, y) for w in W])
    np.testing.assert_array_equal(tl.path_adversarial_distances(W, b, X, y),
                                  [tl.adversarial_distance(w, c, X, y) for w, c in zip(W, b, strict=True)])


def test_angle_dips_reports_ratios_to_the_solver_resolution():
    X, y = two_blobs(n_neg=20, n_pos=25, d=5)
    out = tl.angle_dips(X, y, levels=6)
    assert isinstance(out, tl.AngleDips)
    assert all(isinstance(value, float) for value in (out.dip, out.dip_ratio, out.norm_ratio))
    assert out.norm_ratio <= 1.0                         # ‖w‖ is non-decreasing (theorem)
    assert out.dip_ratio >= 0.0 or out.dip < 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.dip = 0.0


def test_float32_consistency_passes_for_the_kernel_and_sees_a_shifted_intercept():
    rng = np.random.default_rng(5)
    X = rng.random((300, 16))
    labels = rng.integers(0, 3, 300)
    W, b = rng.standard_normal((5, 16)), rng.standard_normal(5)
    pos, neg = np.array([1, 2, 2, 1, 0]), np.array([0, 0, 1, 2, 2])
    out = tl.float32_consistency(X, labels, W, b, pos, neg, device="cpu")
    assert isinstance(out, tl.Float32Consistency)
    assert out.identity_ratio <= 1 and out.sums_ratio <= 1 and out.count_mismatch == 0
    assert out.stats.theta.shape == (5,) and out.ambiguous >= 0


def test_float32_statistics_agree_with_float64_on_the_chapters_svms():
    """Chapter 3's at-scale statistics on its own kind of classifiers: SVM paths of digit pairs on the
    8×8 digits, both halves. The float32 statistics satisfy the identity and agree with float64 (counts
    exactly up to scores within rounding of 0, class means within the rounding bound)."""
    X_train, c_train, X_test, c_test = tl.digits_split(seed=0)
    pairs = [(3, 7), (5, 9), (1, 7)]
    normals, intercepts = [], []
    for first, second in pairs:
        X, y = tl.digit_pair(X_train, c_train, first, second)
        W, b = tl.svm_path(X, y, tl.critical_C(X, y) * np.logspace(0, 5, 4))
        normals.append(W)
        intercepts.append(b)
    W, b = np.concatenate(normals), np.concatenate(intercepts)
    negative, positive = np.repeat([p[0] for p in pairs], 4), np.repeat([p[1] for p in pairs], 4)
    for half, (X, c) in enumerate(((X_train, c_train), (X_test, c_test))):
        out = tl.float32_consistency(X, c, W, b, positive, negative, device="cpu")
        assert out.identity_ratio <= 1 and out.sums_ratio <= 1 and out.count_mismatch == 0
        if half == 0:                    # on the training half every path starts at the NC classifier
            assert out.stats.theta[::4] == pytest.approx(0.0, abs=1e-6)


def test_replicate_pixels_refuses_an_output_too_large_to_make():
    X = np.zeros((2, 64))
    with pytest.raises(ValueError, match=r"k=4611686018427387904 would make 2 images"):
        tl.replicate_pixels(X, 2**62)          # used to crash the interpreter inside numpy's repeat
    assert tl.replicate_pixels(X, 3).shape == (2, 64 * 9)


# ---------------------------------------------------------------------------------------------------
# The path-dips calibration (theorylab.tilting_calibration)
# ---------------------------------------------------------------------------------------------------

def test_rate_floor_is_three_standard_errors_below_rounded_down():
    from theorylab import tilting_calibration as tcal

    rate, se, low = tcal.rate_floor(83, 200)
    assert rate == 0.415 and se == pytest.approx(math.sqrt(0.415 * 0.585 / 200))
    assert low == 0.31                                    # 0.415 − 3·0.03484 = 0.3105, rounded down
    assert (tcal.RATE, tcal.RATE_SE, tcal.RATE_LOW) == tcal.rate_floor(tcal.DIPPED, tcal.TOTAL)
    assert tcal.TOTAL == tcal.SPLITS * len(tcal.SEEDS) and set(tcal.SEEDS).isdisjoint(range(10))
    with pytest.raises(ValueError, match="dipped"):
        tcal.rate_floor(201, 200)


def test_calibration_draws_the_chapters_splits_and_check_sees_changed_counts(monkeypatch, capsys):
    """dip_path is the chapter's recipe (stream tilting-dip-split[k] of the base seed, 80 levels); the
    --check run, shrunk to two splits of one seed, passes at its own counts and fails at others."""
    from theorylab import tilting_calibration as tcal
    from theorylab.seeding import seed

    X, c, _, _ = tl.digits_split(seed=seed("tilting-dip-split[1]", base=10))
    assert tcal.dip_path(1, base=10) == tl.angle_dips(*tl.digit_pair(X, c, 2, 5), levels=80)
    monkeypatch.setattr(tcal, "SEEDS", range(10, 11))
    monkeypatch.setattr(tcal, "SPLITS", 2)
    monkeypatch.setattr(tcal, "TOTAL", 2)
    counts = {pair: sum(tcal.dipped_splits(10, pair)) for pair in (tcal.PAIR, tcal.OTHER_PAIR)}
    monkeypatch.setattr(tcal, "DIPPED", counts[tcal.PAIR])
    monkeypatch.setattr(tcal, "DIPPED_OTHER", counts[tcal.OTHER_PAIR])
    assert tcal.main(["--check"]) == 0
    monkeypatch.setattr(tcal, "DIPPED", counts[tcal.PAIR] + 1)
    assert tcal.main(["--check"]) == 1
    assert "the counts changed" in capsys.readouterr().err
