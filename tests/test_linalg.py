import pytest
import torch

from theorylab import linalg


def test_matrix_with_spectrum():
    A, left, right = linalg.matrix_with_spectrum(5, 4, [3.0, 1.0], seed=1)
    torch.testing.assert_close(torch.linalg.svdvals(A)[:2], torch.tensor([3.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(left.T @ left, torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(A, (left * torch.tensor([3.0, 1.0], dtype=torch.float64)) @ right.T)
    with pytest.raises(ValueError, match="singular_values"):
        linalg.matrix_with_spectrum(2, 2, [1.0, 1.0, 1.0])


def test_covariance_with_spectrum_and_sqrt():
    cov, basis = linalg.covariance_with_spectrum([4.0, 1.0, 0.0], seed=2)
    torch.testing.assert_close(cov @ basis[:, 0], 4.0 * basis[:, 0])
    root = linalg.psd_sqrt(cov)
    torch.testing.assert_close(root @ root, cov)
    with pytest.raises(ValueError, match="non-negative"):
        linalg.covariance_with_spectrum([1.0, -1.0])
    with pytest.raises(ValueError, match="symmetric"):
        linalg.psd_sqrt(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        linalg.psd_sqrt(torch.zeros(2, 3))


def test_relative_error():
    assert linalg.relative_error(torch.tensor([1.1, 0.0]), torch.tensor([1.0, 0.0])) == pytest.approx(0.1)


def test_relative_error_refuses_broadcasting_and_zero_targets():
    with pytest.raises(ValueError, match="same shape.*\\[3, 1\\] and \\[3\\]"):
        linalg.relative_error(torch.ones(3, 1), torch.ones(3))
    with pytest.raises(ValueError, match="target must not be zero"):
        linalg.relative_error(torch.ones(3), torch.zeros(3))


@pytest.mark.parametrize("values, error, match", [
    ([1.0, float("nan")], ValueError, "finite"), ([1.0, float("inf")], ValueError, "finite"),
    ([1.0, -2.0], ValueError, "non-negative"), ("abc", TypeError, "array of numbers"),
])
def test_spectra_must_be_finite_and_non_negative(values, error, match):
    with pytest.raises(error, match=match):
        linalg.covariance_with_spectrum(values)
    with pytest.raises(error, match=match):
        linalg.matrix_with_spectrum(3, 3, values)


def test_sizes_accept_numpy_integers_and_name_bad_ones():
    import numpy as np
    assert linalg.random_orthonormal(np.int64(4), np.int32(2)).shape == (4, 2)
    with pytest.raises(TypeError, match="dim must be an integer"):
        linalg.random_orthonormal(4.0, 2)
    with pytest.raises(ValueError, match="k must be an integer in \\[1, 4\\]"):
        linalg.random_orthonormal(4, 5)
