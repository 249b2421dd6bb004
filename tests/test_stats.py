"""The small statistics the chapters share (theorylab.utils.stats), and the plotting and prose helpers
that moved out of chapter 3 (plotting.decades, prose.latex_sci)."""

import math

import numpy as np
import pytest
import torch
from matplotlib.ticker import LogLocator

from theorylab import batchsize, tilting
from theorylab.plotting import decades, figure
from theorylab.prose import latex_sci
from theorylab.utils import stats


def _rng(seed=0):
    return np.random.default_rng(seed)


# --- loglog_slope ------------------------------------------------------------------------------------

def test_loglog_slope_known_values():
    assert stats.loglog_slope([1, 2, 4], [3.0, 6.0, 12.0]) == pytest.approx(1.0)
    assert stats.loglog_slope([1.0, 4.0, 16.0], [1.0, 0.5, 0.25]) == pytest.approx(-0.5)
    # log x = 0, 1, 2 and log y = 0, 2, 1: slope Σ(x − 1)(y − 1) / Σ(x − 1)² = (1 + 0 + 0) / 2
    e = math.e
    assert stats.loglog_slope([1.0, e, e * e], [1.0, e * e, e]) == pytest.approx(0.5)
    assert isinstance(stats.loglog_slope(np.array([1.0, 2.0]), torch.tensor([2.0, 8.0])), float)


def test_loglog_slope_is_still_importable_from_batchsize():
    assert batchsize.loglog_slope is stats.loglog_slope
    assert "loglog_slope" in batchsize.__all__


@pytest.mark.parametrize("x, y, error, match", [
    ([1.0, 2.0], [1.0, 2.0, 3.0], ValueError, "same length"),
    ([1.0], [1.0], ValueError, "same length ≥ 2"),
    ([1.0, 0.0], [1.0, 2.0], ValueError, "x must be positive"),
    ([1.0, 2.0], [1.0, -2.0], ValueError, "y must be positive"),
    ([1.0, math.nan], [1.0, 2.0], ValueError, "x must hold finite"),
    ([[1.0, 2.0]], [1.0, 2.0], ValueError, "x must have 1 dimension"),
    ("1, 2", [1.0, 2.0], TypeError, "x must be"),
    ([1.0, 2.0], None, TypeError, "y must be"),
])
def test_loglog_slope_bad_input_names_the_argument(x, y, error, match):
    with pytest.raises(error, match=match):
        stats.loglog_slope(x, y)


# --- McNemar -------------------------------------------------------------------------------------------

def test_mcnemar_counts_and_z_by_hand():
    first = np.array([True, True, False, True, False])
    second = np.array([False, False, True, True, False])
    assert stats.mcnemar_counts(first, second) == (2, 1)
    assert stats.mcnemar_z(first, second) == pytest.approx(1 / math.sqrt(3))
    assert stats.mcnemar_z(second, first) == pytest.approx(-1 / math.sqrt(3))
    assert stats.mcnemar_z(first, first) == 0.0                  # never disagree: 0, not 0/0
    assert stats.mcnemar_z(torch.tensor(first), torch.tensor(second)) == stats.mcnemar_z(first, second)
    assert stats.mcnemar_z([True] * 9, [False] * 9) == 3.0       # 9 against 0: 9/√9


def test_mcnemar_is_still_importable_from_tilting():
    assert tilting.mcnemar_z is stats.mcnemar_z and tilting.mcnemar_counts is stats.mcnemar_counts
    assert {"mcnemar_z", "mcnemar_counts"} <= set(tilting.__all__)


@pytest.mark.parametrize("first, second, error, match", [
    (np.array([1, 0]), np.array([True, False]), TypeError, "wrong_first must be a 1-D boolean"),
    (np.array([True, False]), np.array([0.0, 1.0]), TypeError, "wrong_second must be a 1-D boolean"),
    (np.array([[True, False]]), np.array([True, False]), ValueError, r"wrong_first must .* shape \[1, 2\]"),
    (np.array([True]), np.array([True, False]), ValueError, "same shape"),
])
def test_mcnemar_bad_input_names_the_argument(first, second, error, match):
    with pytest.raises(error, match=match):
        stats.mcnemar_z(first, second)


# --- paired and per-row statistics ----------------------------------------------------------------------

def test_paired_log_drop_z_by_hand():
    e = math.e
    # log drops per column: 2 − 1 = 1 and 2 − 0 = 2: mean 1.5, std 0.5·√2, standard error 0.5, z = 3
    z = stats.paired_log_drop_z([[e * e, e * e], [e, 1.0]])
    assert z.shape == (1,) and z[0] == pytest.approx(3.0)
    rising = stats.paired_log_drop_z([[1.0, 1.0, 1.0], [2.0, 3.0, 2.5], [4.0, 9.0, 6.0]])
    assert rising.shape == (2,) and (rising < 0).all()            # the values grow: negative drops


def test_geometric_mean_rows_by_hand():
    means = stats.geometric_mean_rows([[1.0, 4.0], [2.0, 8.0], [5.0, 5.0]])
    assert isinstance(means, np.ndarray) and means.shape == (3,)
    np.testing.assert_allclose(means, [2.0, 4.0, 5.0], rtol=1e-15)


def test_mean_and_standard_error_by_hand():
    mean, se = stats.mean_and_standard_error([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    assert mean.shape == se.shape == (2,)
    np.testing.assert_allclose(mean, [2.0, 2.0], rtol=1e-15)
    np.testing.assert_allclose(se, [1 / math.sqrt(3), 0.0], rtol=1e-15)    # std(1, 2, 3; ddof=1) = 1


def test_paired_difference_z_by_hand():
    first, second = [[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], [[1.0, 2.0, 3.0], [4.0, 3.0, 2.0]]
    z = stats.paired_difference_z(first, second)     # differences 1, 2, 3 (mean 2, s.e. 1/√3) and −1, −2, −3
    assert z.shape == (2,)
    np.testing.assert_allclose(z, [2 * math.sqrt(3), -2 * math.sqrt(3)], rtol=1e-14)
    np.testing.assert_allclose(stats.paired_difference_z(second, first), -z, rtol=0)


def test_the_chapter_4_arithmetic_is_kept_bitwise():
    """The moved functions give exactly the numbers of the expressions chapter 4 used to define."""
    rng = _rng()
    values = np.exp(rng.standard_normal((5, 8)))                       # [rows, runs]
    runs = rng.standard_normal((7, 2, 40))                             # [minima, windows, chains]
    drops = np.log(values[:-1]) - np.log(values[1:])
    np.testing.assert_array_equal(stats.paired_log_drop_z(values),
                                  drops.mean(1) / (drops.std(1, ddof=1) / np.sqrt(drops.shape[1])))
    np.testing.assert_array_equal(stats.geometric_mean_rows(values), np.exp(np.log(values).mean(1)))
    per_chain = runs.mean(axis=1)
    mean, se = stats.mean_and_standard_error(per_chain)
    np.testing.assert_array_equal(mean, per_chain.mean(1))
    np.testing.assert_array_equal(se, per_chain.std(1, ddof=1) / np.sqrt(per_chain.shape[1]))
    diff = runs[:, 1] - runs[:, 0]
    np.testing.assert_array_equal(np.abs(stats.paired_difference_z(runs[:, 0], runs[:, 1])),
                                  np.abs(diff.mean(1)) / (diff.std(1, ddof=1) / np.sqrt(diff.shape[1])))


def test_tensors_and_lists_are_accepted():
    values = [[1.0, 2.0], [0.5, 1.5]]
    expected = stats.paired_log_drop_z(np.array(values))
    as_tensor = torch.tensor(values, dtype=torch.float64)
    np.testing.assert_array_equal(stats.paired_log_drop_z(as_tensor), expected)
    np.testing.assert_array_equal(stats.paired_log_drop_z(values), expected)


@pytest.mark.parametrize("call, error, match", [
    (lambda: stats.paired_log_drop_z([1.0, 2.0]), ValueError, "values must have 2 dimension"),
    (lambda: stats.paired_log_drop_z([[1.0, 2.0]]), ValueError, "values must have at least 2 rows"),
    (lambda: stats.paired_log_drop_z([[1.0], [2.0]]), ValueError, "values must have at least 2 samples"),
    (lambda: stats.paired_log_drop_z([[1.0, 2.0], [0.0, 1.0]]), ValueError, "values must be positive"),
    (lambda: stats.paired_log_drop_z([[1.0, 2.0], [math.inf, 1.0]]), ValueError, "values must hold finite"),
    (lambda: stats.paired_log_drop_z("values"), TypeError, "values must be"),
    (lambda: stats.geometric_mean_rows([[1.0, -1.0]]), ValueError, "values must be positive"),
    (lambda: stats.geometric_mean_rows(np.zeros((2, 0))), ValueError, "values must not be empty"),
    (lambda: stats.geometric_mean_rows(np.ones((2, 2, 2))), ValueError, "values must have 2 dimension"),
    (lambda: stats.mean_and_standard_error([[1.0], [2.0]]), ValueError, "samples must have at least 2"),
    (lambda: stats.mean_and_standard_error([[1.0, math.nan]]), ValueError, "samples must hold finite"),
    (lambda: stats.mean_and_standard_error(None), TypeError, "samples must be"),
    (lambda: stats.paired_difference_z([[1.0, 2.0]], [[1.0, 2.0, 3.0]]), ValueError, "same shape"),
    (lambda: stats.paired_difference_z([[1.0, 2.0]], [1.0, 2.0]), ValueError, "second must have 2 dimension"),
    (lambda: stats.paired_difference_z([[1.0]], [[2.0]]), ValueError, "first must have at least 2"),
    (lambda: stats.paired_difference_z(["a", "b"], [[1.0, 2.0]]), TypeError, "first must be"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- plotting.decades and prose.latex_sci -----------------------------------------------------------------

@pytest.mark.parametrize("axis, logs", [("x", ("x",)), ("y", ("y",)), ("both", ("x", "y"))])
def test_decades_labels_powers_of_ten_only(axis, logs):
    _, ax = figure()
    decades(ax, axis)
    for name in ("x", "y"):
        assert getattr(ax, f"get_{name}scale")() == ("log" if name in logs else "linear")
    for name in logs:
        locator = getattr(ax, f"{name}axis").get_major_locator()
        assert isinstance(locator, LogLocator)
        ticks = locator.tick_values(1e-3, 1e4)
        exponents = np.log10(ticks)
        assert len(ticks) >= 8 and np.allclose(exponents, np.round(exponents))   # 10^k, no 2·10^k or 5·10^k


def test_decades_bad_axis_names_the_argument():
    _, ax = figure()
    with pytest.raises(ValueError, match="axis must be 'x', 'y' or 'both', got 'z'"):
        decades(ax, "z")


@pytest.mark.parametrize("x, text", [
    (0.000357, "3.6\\cdot10^{-4}"),
    (12345.0, "1.2\\cdot10^{4}"),
    (-2e-10, "-2.0\\cdot10^{-10}"),
    (1.0, "1.0\\cdot10^{0}"),
    (0.0, "0.0\\cdot10^{0}"),
    (np.float64(0.01 / 28), "3.6\\cdot10^{-4}"),
    (9.96e-3, "1.0\\cdot10^{-2}"),           # rounding carries into the exponent
])
def test_latex_sci_known_values(x, text):
    assert latex_sci(x) == text


@pytest.mark.parametrize("x, error, match", [
    ("0.1", TypeError, "x must be a real number"),
    (None, TypeError, "x must be a real number"),
    (math.inf, ValueError, "x must be a finite number"),
    (math.nan, ValueError, "x must be a finite number"),
])
def test_latex_sci_bad_input_names_the_argument(x, error, match):
    with pytest.raises(error, match=match):
        latex_sci(x)


def test_finite_std_ignores_never_and_nan():
    values = np.array([1.0, 3.0, math.inf, math.nan, -math.inf])
    assert stats.finite_std(values) == pytest.approx(1.0)
    assert stats.finite_std(torch.tensor([2.0, 2.0])) == 0.0
    assert math.isnan(stats.finite_std([math.inf, math.nan]))
