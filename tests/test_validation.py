import math

import numpy as np
import pytest
import torch

from theorylab.utils.validation import (
    check_choice,
    check_int,
    check_integers,
    check_real,
    check_same_shape,
    check_tensor,
)


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


def test_check_integers():
    """Sizes, indices and labels (issue 14: generative's orders, m_grid, y_test and explore grids)."""
    for value in ([2, 4], (2, 4), np.array([2, 4]), torch.tensor([2.0, 4.0]),
                  torch.tensor([2, 4], dtype=torch.int32)):
        got = check_integers("m", value, ndim=1, low=1, high=4)
        assert got.dtype == torch.int64 and got.tolist() == [2, 4]
    assert check_integers("m", [], nonempty=False).numel() == 0
    for bad, error, match in [
        ("ab", TypeError, "m must be a tensor or an array of integers, got str"),
        (None, TypeError, "m must be a tensor or an array of integers, got NoneType"),
        ([object()], TypeError, "m must be a tensor or an array of integers"),
        ([True, False], TypeError, "m must hold integers, got dtype torch.bool"),
        (torch.tensor([1 + 0j]), TypeError, "m must hold integers, got dtype torch.complex"),
        ([2.5], ValueError, "m must hold integers, got fractional values such as 2.5"),
        ([math.nan], ValueError, "m must hold finite integers"),
        ([math.inf], ValueError, "m must hold finite integers"),
        ([[2]], ValueError, r"m must have 1 dimension\(s\), got shape \[1, 1\]"),
        ([], ValueError, "m must not be empty"),
        ([0, 2], ValueError, "m must hold integers ≥ 1, got a minimum of 0"),
        ([2, 5], ValueError, "m must hold integers ≤ 4, got a maximum of 5"),
    ]:
        with pytest.raises(error, match=match):
            check_integers("m", bad, ndim=1, low=1, high=4)


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


# ---------------------------------------------------------------------------------------------------
# Bad inputs that the measurement of issue 14 (tools/bad_inputs.py) found getting through: one line each
# ---------------------------------------------------------------------------------------------------

def test_check_bool_dtype_and_instance():
    from theorylab.utils.validation import check_bool, check_float_dtype, check_instance
    assert check_bool("flag", np.bool_(True)) is True and check_bool("flag", False) is False
    for bad in ("yes", 1, None):
        with pytest.raises(TypeError, match="flag must be True or False"):
            check_bool("flag", bad)
    assert check_float_dtype("dtype", torch.float32) is torch.float32
    for bad in (torch.int64, "float64"):
        with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
            check_float_dtype("dtype", bad)
    with pytest.raises(TypeError, match="layer must be a Tensor, got str"):
        check_instance("layer", "abc", torch.Tensor)


def _layer():
    from theorylab.lowrank import OrderedLowRankLinear
    return OrderedLowRankLinear(4, 3, 2, seed=0)


def test_lowrank_refuses_what_it_used_to_take_or_crash_on():
    from theorylab import lowrank
    A = torch.ones(3, 4, dtype=torch.float64)
    for func in (lowrank.ordered_loss, lowrank.rank_losses, lowrank.eckart_young_excess,
                 lowrank.nested_error_bound, lowrank.nested_errors):     # AttributeError before
        with pytest.raises(TypeError, match="layer must be an OrderedLowRankLinear, got Linear"):
            func(torch.nn.Linear(4, 3), A)
    with pytest.raises(TypeError, match="layer must be"):
        lowrank.hierarchical_group_lasso("abc")
    with pytest.raises(TypeError, match="layer must be"):
        lowrank.ordered_dropout_sgd(None, A, steps=1, batch=2, lr=0.1, progress=False)
    with pytest.raises(TypeError, match="bias must be True or False"):            # was read as true
        lowrank.OrderedLowRankLinear(4, 3, bias="no")
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):  # NotImplementedError
        lowrank.OrderedLowRankLinear(4, 3, dtype=torch.int64)
    with pytest.raises(TypeError, match="ordered must be True or False"):
        lowrank.ordered_loss(_layer(), A, ordered="no")
    with pytest.raises(TypeError, match="progress must be True or False"):
        lowrank.fit_ordered(A, steps=1, lr=0.1, progress="no")
    with pytest.raises(ValueError, match=r"cov_sqrt must have shape \[4, 4\]"):  # RuntimeError in matmul
        lowrank.rank_losses(_layer(), A, cov_sqrt=torch.eye(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="generator must be an integer ≥ 0"):   # the message said 'seed'
        lowrank.sample_ranks(5, 3, generator=-1)


def test_lowrank_forward_checks_x_and_ranks():
    layer, x = _layer(), torch.ones(5, 4, dtype=torch.float64)
    assert torch.equal(layer(x), x @ layer.V.detach() @ layer.U.detach().T)     # unchanged on valid input
    with pytest.raises(TypeError, match="x must have the layer's dtype torch.float64, got torch.float32"):
        layer(x.float())                                                          # RuntimeError in matmul
    with pytest.raises(ValueError, match="x must hold finite numbers"):           # NaN in, NaN out before
        layer(torch.full((5, 4), math.nan, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must not be empty"):
        layer(x[:0])
    with pytest.raises(TypeError, match="x must be a tensor or an array"):       # AttributeError before
        layer("abc")
    with pytest.raises(TypeError, match="ranks must be a Tensor"):               # AttributeError before
        layer.forward_per_sample(x, "abc")


def test_collapse_labels_and_penalties():
    from theorylab import collapse
    layers, H = [torch.eye(3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)], torch.eye(3, 4)
    with pytest.raises(TypeError, match="labels must be a tensor of integer class labels, got str"):
        collapse.nc_metrics(layers, H.double(), "abc")
    batch = dict(layers=[torch.ones(1, 3, 3, dtype=torch.float64), torch.ones(1, 2, 3, dtype=torch.float64)],
                 H=torch.ones(1, 3, 4, dtype=torch.float64), b=None, labels=torch.tensor([0, 0, 1, 1]),
                 lambda_w=torch.full((1, 2), 1e-3, dtype=torch.float64),
                 lambda_h=torch.full((1,), 1e-3, dtype=torch.float64))
    with pytest.raises(TypeError, match="labels must be a tensor"):
        collapse.ufm_objective_and_grads(**{**batch, "labels": "abc"})
    with pytest.raises(ValueError, match="lambda_w must be positive"):    # a negative objective before
        collapse.ufm_objective_and_grads(**{**batch, "lambda_w": -batch["lambda_w"]})
    with pytest.raises(ValueError, match="lambda_h must be positive"):
        collapse.ufm_objective_and_grads(**{**batch, "lambda_h": 0 * batch["lambda_h"]})


def test_claims_numpy_counts_sources_and_the_defer_setting(monkeypatch):
    from theorylab import claims
    assert claims.bonferroni_z(np.int64(50)) == claims.bonferroni_z(50)          # refused before
    with pytest.raises(TypeError, match="claims must be an integer"):
        claims.bonferroni_z(2.5)
    with pytest.raises(TypeError, match="source must be a string"):               # AttributeError before
        claims.find_claim_sites(None)
    monkeypatch.setenv("THEORYLAB_CLAIMS_DEFER", "maybe")                          # silently "off" before
    with pytest.raises(ValueError, match="THEORYLAB_CLAIMS_DEFER must be one of"):
        claims.check("lab.x", 1.0, 1.0, kind="identity", rtol=1e-9, statement="x")


def test_devices_are_checked_before_torch_sees_them():
    from theorylab import config, seeding
    assert config.check_cuda("cpu") is None and config.check_cuda(torch.device("cpu")) is None   # raised
    with pytest.raises(ValueError, match="where must be a device"):
        config.check_cuda("banana")
    with pytest.raises(ValueError, match="device must be a device"):              # torch's RuntimeError
        seeding.make_generator(0, device="banana")
    from theorylab import icl
    with pytest.raises(ValueError, match="device must be a device"):              # torch's RuntimeError
        icl.sample_prompts(2, 3, 2, 0.1, device="banana")
    if not torch.cuda.is_available():        # "Cannot get CUDA generator without ATen_cuda library" before
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            seeding.make_generator(0, device="cuda")


def test_kernel_launchers_refuse_mixed_dtypes():
    from theorylab import kernels

    def g(*shape, seed=0):
        return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    with pytest.raises(TypeError, match="tensor must be a torch.Tensor"):         # AttributeError before
        kernels.use_triton("abc")
    # each used to pass the launcher's checks and fail inside the torch reference (RuntimeError)
    with pytest.raises(TypeError, match=r"must share one floating dtype, got .*x_query float32"):
        kernels.lsa_moments(g(2, 3, 2), g(2, 3), g(2, 2).float(), g(2), g(3), g(3, 2))
    with pytest.raises(TypeError, match=r"x, U, V must share one floating dtype, got x float32"):
        kernels.ordered_lowrank(g(3, 4).float(), g(5, 2), g(4, 2), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match=r"X, W, b must share one floating dtype, got X float64, W float32"):
        kernels.classifier_stats(g(6, 3), torch.tensor([1, -1, 1, -1, 1, 0]), g(2, 3).float(), g(2))
    with pytest.raises(TypeError, match="X, W, v must share one floating dtype"):
        kernels.relu_gn_sq_norms(g(5, 3), g(4, 3), g(4).float())
    with pytest.raises(TypeError, match=r"must share one floating dtype, got .*dv float32"):
        kernels.relu_gn_matvec(g(5, 3), g(4, 3), g(4), g(4, 3), g(4).float())
