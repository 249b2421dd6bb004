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
