import math

import numpy as np
import pytest
import torch

from theorylab.utils.validation import check_choice, check_int, check_real, check_same_shape, check_tensor


def test_check_int():
    assert check_int("n", np.int64(10), low=1) == 10 and type(check_int("n", np.int64(10))) is int
    for bad in (1.0, True, "3", None, np.float32(2)):
        with pytest.raises(TypeError, match="n must be an integer"):
            check_int("n", bad)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 5\], got 0"):
        check_int("n", 0, low=1, high=5)
    with pytest.raises(ValueError, match="≥ 1"):
        check_int("n", -3, low=1)


def test_check_real():
    assert check_real("lr", np.float32(0.01), low=0, low_open=True) == pytest.approx(0.01)
    assert check_real("lr", torch.tensor(0.5)) == 0.5
    assert check_real("t", math.inf, finite=False) == math.inf
    for bad in ("0.1", True, None, [0.1]):
        with pytest.raises(TypeError, match="lr must be a real number"):
            check_real("lr", bad)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="lr must be a finite number"):
            check_real("lr", bad)
    with pytest.raises(ValueError, match="lr must be > 0"):
        check_real("lr", 0.0, low=0, low_open=True)
    with pytest.raises(ValueError, match="rho must be < 1"):
        check_real("rho", 1.0, high=1, high_open=True)


def test_check_tensor_and_shapes():
    t = check_tensor("x", [[1, 2], [3, 4]], ndim=2)
    assert t.dtype == torch.float64
    assert check_tensor("x", torch.ones(2, dtype=torch.float32)).dtype == torch.float32
    with pytest.raises(ValueError, match="x must have 1 dimension"):
        check_tensor("x", torch.ones(2, 2), ndim=1)
    with pytest.raises(ValueError, match="x must not be empty"):
        check_tensor("x", torch.ones(0))
    with pytest.raises(ValueError, match="finite"):
        check_tensor("x", [1.0, float("nan")])
    with pytest.raises(TypeError, match="x must be real"):
        check_tensor("x", torch.ones(2, dtype=torch.complex64))
    with pytest.raises(TypeError, match="array of numbers"):
        check_tensor("x", "ab")
    with pytest.raises(ValueError, match="same shape"):
        check_same_shape("a", torch.ones(3, 1), "b", torch.ones(3))
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of"):
        check_choice("mode", "c", ("a", "b"))


def test_a_list_keeps_float64_precision():
    value = [1 / 3, 0.1]
    assert check_tensor("x", value, dtype=torch.float64).tolist() == value


def test_check_tensor_sign_requirements():
    values = torch.tensor([0.0, 1.0, 2.0])
    assert torch.equal(check_tensor("v", values, nonnegative=True), values)
    with pytest.raises(ValueError, match="v must be positive, got a minimum of 0"):
        check_tensor("v", values, positive=True)
    with pytest.raises(ValueError, match="w must be non-negative, got a minimum of -1"):
        check_tensor("w", [-1.0, 3.0], nonnegative=True)
    assert check_tensor("v", [1e-300, 5.0], positive=True).min().item() > 0
