"""Bad input at the public API: a clear error that names the argument, never a silent answer or a hang.

A curated table (``API``) gives, for each public function of ``theorylab`` and ``theorylab.kernels``,
one cheap valid call and the kind of each argument. Every case changes *one* argument of that call
into a bad value of its kind (``MUTATIONS``: wrong shape, zero or negative size, NaN, infinity, a
wrong type or dtype, an empty tensor, a CUDA device on a machine without one) and expects a
``TypeError`` or ``ValueError`` whose message names the argument (a ``RuntimeError`` naming CUDA for
the device). Some changes are *not* errors and must be accepted: a numpy scalar where a Python number
is valid, and (a result or a clear error) a float32 tensor among float64 ones. An accepted call, and
the valid call itself, must return finite numbers. Every call runs under a SIGALRM budget
(``BUDGET_S``): overrunning it fails the case as a hang.

The table is deterministic (no hypothesis): the bad inputs are the classes that issue 14 measured, and
a fixed table runs in seconds. A bug that cannot be fixed at once is recorded in ``KNOWN_BUGS`` (empty
today) and becomes an ``xfail(strict=True)`` with the bug in the reason; fixing it turns the case into a
failure that asks for the entry to be deleted.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

#: seconds a single call may take before the case fails as a hang
BUDGET_S = 2.0


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"the call ran past {BUDGET_S} s")


def call_with_budget(func: Callable, kwargs: dict, budget: float = BUDGET_S):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        return func(**kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------------
# The table: one valid call per public function, and the kind of each argument
# ---------------------------------------------------------------------------------------------------

def g(*shape, seed=0, dtype=torch.float64):
    """A small seeded Gaussian tensor."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def pos(*shape, seed=0):
    return 0.5 + torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@dataclass
class Api:
    """``target`` (``module:function``) called with ``make()``'s keyword arguments; ``kinds`` maps an
    argument to its kind (a key of ``MUTATIONS``); ``skip`` lists mutations that are not errors for
    this function (documented behaviour), by ``argument:mutation``."""

    target: str
    make: Callable[[], dict]
    kinds: dict[str, str]
    skip: tuple[str, ...] = ()
    nan_ok: bool = False          # the valid result may hold NaN by design (e.g. "never reached")
    names: dict[str, str] = field(default_factory=dict)    # argument -> the name its messages use

    @property
    def id(self) -> str:
        module, name = self.target.split(":")
        return f"{module.removeprefix('theorylab.')}.{name}"

    def resolve(self) -> Callable:
        module, name = self.target.split(":")
        func = importlib.import_module(module)
        for part in name.split("."):
            func = getattr(func, part)
        return func


def _layer():
    from theorylab.lowrank import OrderedLowRankLinear
    return OrderedLowRankLinear(4, 3, 2, seed=0)


def _prompts(batch=3, n=5, d=2, dtype=torch.float64):
    return dict(X=g(batch, n, d, dtype=dtype), y=g(batch, n, seed=1, dtype=dtype),
                x_query=g(batch, d, seed=2, dtype=dtype))


def _mixture():
    from theorylab.generative import mixture
    return mixture(4, n_classes=2, correlation=0.1)


L, LK, J, K = "theorylab.linalg:", "theorylab.lowrank:", "theorylab.jepa:", "theorylab.kernels:"
IC, GEN, ST, TI = "theorylab.icl:", "theorylab.generative:", "theorylab.stability:", "theorylab.tilting:"
BS, CO = "theorylab.batchsize:", "theorylab.collapse:"


def a(*shape, seed=0):
    """A small seeded Gaussian numpy array (tilting takes and returns numpy)."""
    return g(*shape, seed=seed).numpy()

API = [
    # --- linalg
    Api(L + "random_orthonormal", lambda: dict(dim=4, k=2, seed=0), dict(dim="size", k="size", seed="seed")),
    Api(L + "matrix_with_spectrum", lambda: dict(out_features=4, in_features=3,
                                                  singular_values=[2.0, 1.0], seed=0),
        dict(out_features="size", in_features="size", singular_values="tensor+", seed="seed")),
    Api(L + "covariance_with_spectrum", lambda: dict(eigenvalues=[2.0, 1.0, 0.5], seed=0),
        dict(eigenvalues="tensor+", seed="seed")),
    Api(L + "psd_sqrt", lambda: dict(cov=torch.eye(3) * 2.0), dict(cov="tensor")),
    Api(L + "relative_error", lambda: dict(estimate=g(3, 2), target=g(3, 2, seed=1)),
        dict(estimate="tensor", target="tensor")),
    # --- lowrank
    Api(LK + "OrderedLowRankLinear", lambda: dict(in_features=4, out_features=3, rank=2, seed=0,
                                                  init_scale=0.1),
        dict(in_features="size", out_features="size", rank="size", seed="seed", init_scale="pos")),
    Api(LK + "rank_distribution", lambda: dict(rank=3, weights=[1.0, 2.0, 3.0]),
        dict(rank="size", weights="tensor+"), names=dict(weights="rank_weights")),
    Api(LK + "ordered_loss", lambda: dict(layer=_layer(), A=g(3, 4), cov_sqrt=torch.eye(4) * 1.0),
        dict(A="tensor", cov_sqrt="tensor")),
    Api(LK + "hierarchical_group_lasso", lambda: dict(layer=_layer(), eps=1e-12), dict(eps="nonneg")),
    Api(LK + "fit_ordered", lambda: dict(A=g(3, 4), steps=2, lr=0.05, seed=0, rank=2, group_lasso=0.01,
                                         progress=False),
        dict(A="tensor", steps="size", lr="pos", seed="seed", rank="size", group_lasso="nonneg")),
    Api(LK + "group_lasso_importances", lambda: dict(singular_values=[2.0, 1.0], rank=3, weight=0.01,
                                                     iterations=5),
        dict(singular_values="tensor+", rank="size", weight="nonneg", iterations="size")),
    Api(LK + "truncated_svd", lambda: dict(A=g(4, 3), k=2), dict(A="tensor", k="count")),
    Api(LK + "rank_losses", lambda: dict(layer=_layer(), A=g(3, 4)), dict(A="tensor")),
    Api(LK + "eckart_young_excess", lambda: dict(layer=_layer(), A=g(3, 4)), dict(A="tensor")),
    Api(LK + "nested_error_bound", lambda: dict(layer=_layer(), A=g(3, 4)), dict(A="tensor")),
    Api(LK + "nested_errors", lambda: dict(layer=_layer(), A=g(3, 4)), dict(A="tensor")),
    Api(LK + "column_alignment", lambda: dict(vectors=g(4, 2), reference=g(4, 2, seed=1)),
        dict(vectors="tensor", reference="tensor")),
    Api(LK + "principal_angle_cosines", lambda: dict(P=g(4, 2), Q=g(4, 2, seed=1)),
        dict(P="tensor", Q="tensor")),
    Api(LK + "sample_ranks", lambda: dict(batch=5, rank=3, generator=0),
        dict(batch="size", rank="size", generator="seed", device="device")),
    Api(LK + "ordered_dropout_sgd", lambda: dict(layer=_layer(), A=g(3, 4), steps=2, batch=4, lr=0.01,
                                                 seed=0, progress=False),
        dict(A="tensor", steps="size", batch="size", lr="pos", seed="seed")),
    # --- icl
    *[Api(IC + name, lambda: dict(n=5, d=3, sigma=0.5), dict(n="size", d="size", sigma="nonneg"))
      for name in ("optimal_step_size", "optimal_risk", "relu_step_size", "relu_optimal_risk")],
    Api(IC + "sample_prompts", lambda: dict(batch=3, n=5, d=2, sigma=0.1, cov=torch.eye(2) * 2.0,
                                           generator=0),
        dict(batch="size", n="size", d="size", sigma="nonneg", cov="tensor", response="choice",
             generator="seed", device="device")),
    Api(IC + "gradient_at_zero", lambda: {k: v for k, v in _prompts().items() if k != "x_query"},
        dict(X="tensor", y="tensor")),
    Api(IC + "one_step_gd_predict", lambda: dict(**_prompts(), gamma=torch.eye(2, dtype=torch.float64)),
        dict(X="tensor", y="tensor", x_query="tensor", gamma="tensor")),
    Api(IC + "ridge_predict", lambda: dict(**_prompts(), sigma=0.5, weight_cov=torch.eye(2) * 1.0),
        dict(X="tensor", y="tensor", x_query="tensor", sigma="nonneg", weight_cov="tensor")),
    Api(IC + "LinearSelfAttention", lambda: dict(d=3, init_scale=0.1, seed=0),
        dict(d="size", init_scale="pos", seed="seed")),
    Api(IC + "train_lsa", lambda: dict(n=4, d=2, sigma=0.1, steps=2, batch=3, lr=0.02, seed=0,
                                       progress=False),
        dict(n="size", d="size", sigma="nonneg", steps="size", batch="size", lr="pos", seed="seed",
             response="choice", device="device")),
    Api(IC + "streamed_risk", lambda: dict(n=4, d=2, sigma=0.1, gamma=0.5, prompts=8, chunks=2, seed=0),
        dict(n="size", d="size", sigma="nonneg", gamma="tensor", prompts="size", chunks="size", seed="seed",
             response="choice", backend="choice", device="device")),
    Api(IC + "streamed_ridge_risk", lambda: dict(n=4, d=2, sigma=0.1, prompts=8, chunks=2, seed=0),
        dict(n="size", d="size", sigma="nonneg", prompts="size", chunks="size", seed="seed",
             device="device")),
    Api(IC + "one_step_gd_risk", lambda: dict(eta=0.3, n=5, d=3, sigma=0.5),
        dict(eta="real", n="size", d="size", sigma="nonneg")),
    Api(IC + "mc_risk", lambda: dict(prediction=g(6), target=g(6, seed=1)),
        dict(prediction="tensor", target="tensor")),
    Api(IC + "random_covariance", lambda: dict(d=3, condition=10.0, seed=0),
        dict(d="size", condition="pos", seed="seed")),
    # --- jepa
    Api(J + "fixed_point", lambda: dict(objective="jepa", rho=[0.5, 0.8], depth=2),
        dict(objective="choice", rho="tensor+", depth="size")),
    Api(J + "critical_time", lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2,
                                          eps=0.01),
        dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit")),
    Api(J + "exact_half_time", lambda: dict(objective="mae", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2,
                                            eps=0.01, fraction=0.5),
        dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", fraction="unit")),
    Api(J + "sample_half_time_ratio", lambda: dict(objective="jepa", x=g(20, 2),
                                                   y=g(20, 2, seed=1) + g(20, 2), depth=1, eps=0.01),
        dict(objective="choice", x="tensor", y="tensor", depth="size", eps="unit")),
    Api(J + "ode_trajectory", lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=1,
                                           eps=0.1, times=[0.0, 1.0, 2.0]),
        dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", times="tensor+")),
    Api(J + "half_time", lambda: dict(times=[0.0, 1.0, 2.0], values=[[0.0, 0.0], [0.4, 1.0], [1.0, 2.0]],
                                      final=[1.0, 2.0], fraction=0.5),
        dict(times="tensor", values="tensor", final="tensor", fraction="unit"),
        skip=("values:nan", "values:inf"), nan_ok=True),
    Api(J + "train_population", lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=1,
                                             eps=0.1, lr=0.1, steps=3, seed=0, init_noise=0.1,
                                             record_every=2),
        dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", lr="pos",
             steps="size", seed="seed", init_noise="nonneg", record_every="size")),
    Api(J + "train_balanced", lambda: dict(objective="mae", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2,
                                           eps=0.1, lr=0.1, steps=3, record_every=2),
        dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", lr="pos",
             steps="size", record_every="size")),
    Api(J + "train_moments", lambda: dict(objective="jepa", Cxx=torch.eye(2) * 2.0, Cxy=torch.eye(2) * 1.0,
                                          depth=1, eps=0.1, lr=0.1, steps=3, seed=0),
        dict(objective="choice", Cxx="tensor", Cxy="tensor", depth="size", eps="unit", lr="pos",
             steps="size", seed="seed")),
    Api(J + "sample_views", lambda: dict(n_samples=5, lam=[1.0, 2.0], rho=[0.5, 0.8], seed=0),
        dict(n_samples="size", lam="tensor+", rho="tensor+", seed="seed")),
    Api(J + "train_samples", lambda: dict(objective="jepa", x=g(8, 2), y=g(8, 2, seed=1), depth=1, eps=0.1,
                                          lr=0.1, steps=3, batch=4, seed=0, record_every=2),
        dict(objective="choice", x="tensor", y="tensor", depth="size", eps="unit", lr="pos", steps="size",
             batch="size", seed="seed", record_every="size")),
    # --- kernels (launchers; the *_reference functions are the tests' oracles and validate nothing)
    Api(K + "lsa_moments", lambda: dict(X=g(2, 3, 2), y=g(2, 3, seed=1), x_query=g(2, 2, seed=2),
                                        y_query=g(2, seed=3), p=g(3, seed=4), K=g(3, 2, seed=5)),
        dict(X="tensor", y="tensor", x_query="tensor", y_query="tensor", p="tensor", K="tensor",
             backend="choice")),
    Api(K + "ordered_lowrank", lambda: dict(x=g(3, 4), U=g(5, 2, seed=1), V=g(4, 2, seed=2),
                                            ranks=torch.tensor([0, 1, 2])),
        dict(x="tensor", U="tensor", V="tensor", ranks="index", backend="choice")),
    Api(K + "feature_half_times", lambda: dict(lam=pos(3), rho=pos(3, seed=1) / 1.5,
                                               t_max=torch.full((3,), 20.0, dtype=torch.float64), depth=1,
                                               eps=0.1, n_steps=20),
        dict(lam="tensor+", rho="tensor+", t_max="tensor+", depth="size", eps="unit", objective="choice",
             n_steps="size", backend="choice"), nan_ok=True),
    Api(K + "classifier_stats", lambda: dict(X=g(6, 3), labels=torch.tensor([1, -1, 1, -1, 1, 0]),
                                             W=g(2, 3, seed=1), b=g(2, seed=2)),
        dict(X="tensor", labels="labels", W="tensor", b="tensor", backend="choice")),
    Api(K + "prefix_class_stats", lambda: dict(X=g(6, 2), y=torch.tensor([0, 1, 0, 1, 0, 1]),
                                               order=torch.stack([torch.arange(6), torch.arange(6).flip(0)]),
                                               ends=torch.tensor([2, 6]), n_classes=2),
        dict(X="tensor", y="index", order="index", ends="index", n_classes="size", backend="choice")),
    Api(K + "relu_gn_sq_norms", lambda: dict(X=g(5, 3), W=g(4, 3, seed=1), v=g(4, seed=2)),
        dict(X="tensor", W="tensor", v="tensor", backend="choice")),
    Api(K + "relu_gn_matvec", lambda: dict(X=g(5, 3), W=g(4, 3, seed=1), v=g(4, seed=2), dW=g(4, 3, seed=3),
                                           dv=g(4, seed=4)),
        dict(X="tensor", W="tensor", v="tensor", dW="tensor", dv="tensor", backend="choice")),
    # --- the modules of the other topics
    Api(K + "sgd_log_norms", lambda: dict(eigenvalues=pos(3), lrs=torch.tensor([0.1, 0.2]).double(),
                                          e0=g(2, 3), steps=3, batch=2, burn_in=1, seed=0,
                                          backend="torch"),    # validation is before dispatch; the
                                                               # interpreted kernel costs 50 ms a call
        dict(eigenvalues="tensor+", lrs="tensor+", e0="tensor", steps="size", batch="size",
             burn_in="count", seed="seed", backend="choice")),
    Api(K + "collapse_directions", lambda: dict(
        size=torch.tensor([5.0, 10.0]), total=torch.tensor([20.0, 20.0]), lambda_w=torch.full((2,), 1e-3),
        lambda_h=torch.full((2,), 1e-3), s0=torch.full((2,), 0.1), t0=torch.full((2,), 0.1), depth=2,
        lr=0.1, momentum=0.9, n_steps=5, backend="torch"),
        dict(size="tensor+", total="tensor+", lambda_w="tensor+", lambda_h="tensor+", s0="tensor",
             t0="tensor", depth="size", lr="pos", momentum="unit0", n_steps="count", backend="choice")),
    Api(GEN + "gaussian_posterior", lambda: dict(X=g(5, 3), prior=torch.tensor([0.4, 0.6]),
                                                 means=g(2, 3, seed=1), var=pos(3, seed=2)),
        dict(X="tensor", prior="tensor+", means="tensor", var="tensor+")),
    Api(GEN + "mixture", lambda: dict(n=4, n_classes=2, correlation=0.1, mean_scale=1.0),
        dict(n="size", n_classes="size", correlation="unit0", mean_scale="pos")),
    Api(GEN + "gaussian_mixture", lambda: dict(m=6, n=3, n_classes=2, correlation=0.1, seed=0),
        dict(m="size", n="size", n_classes="size", correlation="unit0", seed="seed")),
    Api(GEN + "first_crossing", lambda: dict(m_grid=[1.0, 2.0, 4.0], values=[0.5, 0.3, 0.1], level=0.2),
        dict(m_grid="tensor+", values="tensor", level="real")),
    Api(GEN + "logistic_calibration_inverse", lambda: dict(excess=[0.1, 0.2]), dict(excess="tensor+"),
        skip=("excess:extra_dim",)),    # elementwise, any shape (chapter 5 passes [streams, sizes])
    Api(GEN + "nb_error_prediction", lambda: dict(mixture=_mixture(), m=[8, 16], order=2),
        dict(m="tensor+", order="size")),
    Api(GEN + "GaussianNaiveBayes", lambda: dict(var_smoothing=1e-9), dict(var_smoothing="nonneg")),
    Api(ST + "sampling_factor", lambda: dict(batch_size=2, n=5), dict(batch_size="size", n="size")),
    Api(ST + "sparse_regression", lambda: dict(n=5, d=4, sparsity=2, n_test=6, seed=0),
        dict(n="size", d="size", sparsity="size", n_test="size", seed="seed")),
    Api(ST + "DiagonalLinearNetwork", lambda: dict(d=3, init_scale=0.5), dict(d="size", init_scale="pos")),
    Api(TI + "class_centroids", lambda: dict(X=a(6, 3), y=np.array([-1, 1, -1, 1, -1, 1])),
        dict(X="tensor")),
    Api(TI + "signed_distance", lambda: dict(w=a(3), b=0.1, X=a(5, 3, seed=1)),
        dict(w="tensor", b="real", X="tensor")),
    Api(TI + "replicate_pixels", lambda: dict(X=a(2, 4), k=2, shape=(2, 2)), dict(X="tensor", k="size")),
    Api(TI + "plane_data", lambda: dict(n=6, dim=4, separation=2.0, noise=0.1, seed=0),
        dict(n="size", dim="size", separation="pos", noise="nonneg", seed="seed")),
    Api(TI + "flip_labels", lambda: dict(y=np.array([1, -1, 1, -1]), fraction=0.25, seed=0),
        dict(fraction="unit0", seed="seed")),
    Api(TI + "classifier_statistics", lambda: dict(X=a(6, 3), labels=np.array([1, -1, 1, -1, 1, -1]),
                                                   W=a(2, 3, seed=1), b=a(2, seed=2)),
        dict(X="tensor", W="tensor", b="tensor", device="device")),
    Api(BS + "marchenko_pastur", lambda: dict(q=0.5), dict(q="pos")),
    Api(BS + "tracy_widom_edge", lambda: dict(d=10, batch=20), dict(d="size", batch="size")),
    Api(BS + "spike_outlier", lambda: dict(theta=3.0, q=0.5), dict(theta="pos", q="nonneg")),
    Api(BS + "ms_threshold", lambda: dict(eigenvalues=[1.0, 0.5], batch=4), dict(eigenvalues="tensor+",
                                                                                  batch="size")),
    Api(BS + "ms_rate", lambda: dict(lr=0.1, eigenvalues=[1.0, 0.5], batch=4),
        dict(lr="pos", eigenvalues="tensor+", batch="size")),
    Api(BS + "best_lr", lambda: dict(lrs=[0.1, 0.2, 0.4], risks=[0.3, 0.2, 0.5]),
        dict(lrs="tensor+", risks="tensor"), skip=("risks:nan", "risks:inf", "risks:extra_dim")),
    Api(BS + "loglog_slope", lambda: dict(x=[1.0, 2.0, 4.0], y=[1.0, 0.5, 0.26]),
        dict(x="tensor+", y="tensor+")),
    Api(CO + "lambda_bar", lambda: dict(lambda_w=0.01, depth=2), dict(lambda_w="pos", depth="size")),
    Api(CO + "critical_class_size", lambda: dict(total=100, depth=2, lambda_w=1e-3, lambda_h=1e-3),
        dict(total="pos", depth="size", lambda_w="pos", lambda_h="pos")),
    Api(CO + "labels_for", lambda: dict(class_sizes=[2, 3]), dict()),
    Api(CO + "mse_optimum", lambda: dict(class_sizes=[5, 2], depth=2, lambda_w=1e-3, lambda_h=1e-3),
        dict(depth="size", lambda_w="pos", lambda_h="pos")),
]


# ---------------------------------------------------------------------------------------------------
# Mutations: a bad value of each kind, and what must happen
# ---------------------------------------------------------------------------------------------------

ERROR, ACCEPT, EITHER = "error", "accept", "either"


def _with(t: torch.Tensor, value: float) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = value
    return t


def _tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)


def _keep_type(mutate: Callable) -> Callable:
    """``mutate`` on the tensor of a value, returned as a numpy array when the value was one."""
    def wrapped(value):
        out = mutate(value)
        return out.numpy() if isinstance(value, np.ndarray) and isinstance(out, torch.Tensor) else out
    return wrapped


TENSOR = {name: (expect, _keep_type(mutate)) for name, (expect, mutate) in {
    "nan": (ERROR, lambda v: _with(_tensor(v), math.nan)),
    "inf": (ERROR, lambda v: _with(_tensor(v), math.inf)),
    "empty": (ERROR, lambda v: _tensor(v)[:0] if _tensor(v).ndim else _tensor(v).reshape(1)[:0]),
    "extra_dim": (ERROR, lambda v: torch.stack([_tensor(v), _tensor(v) + 1], -1)),
    "string": (ERROR, lambda v: "abc"),
    "complex": (ERROR, lambda v: _tensor(v).to(torch.complex128)),
    "float32": (EITHER, lambda v: _tensor(v).to(torch.float32)),
}.items()}
INDEX = {    # integer tensors: class labels, ranks, orders
    "negative": (ERROR, lambda v: v - 100),
    "too_large": (ERROR, lambda v: v + 100),
    "float_dtype": (EITHER, lambda v: v.double() + 0.5),
    "extra_dim": (ERROR, lambda v: torch.stack([v, v], -1)),
    "empty": (ERROR, lambda v: v[:0]),
    "string": (ERROR, lambda v: "abc"),
}
MUTATIONS: dict[str, dict[str, tuple[str, Callable]]] = {
    "size": {"zero": (ERROR, lambda v: 0), "negative": (ERROR, lambda v: -1),
             "float": (ERROR, lambda v: v + 0.5), "string": (ERROR, lambda v: str(v)),
             "bool": (ERROR, lambda v: True), "numpy": (ACCEPT, lambda v: np.int64(v))},
    "count": {"negative": (ERROR, lambda v: -1), "float": (ERROR, lambda v: v + 0.5),
              "string": (ERROR, lambda v: str(v)), "numpy": (ACCEPT, lambda v: np.int64(v))},
    "seed": {"float": (ERROR, lambda v: 0.5), "string": (ERROR, lambda v: "zero"),
             "numpy": (ACCEPT, lambda v: np.int64(v))},
    "real": {"nan": (ERROR, lambda v: math.nan), "inf": (ERROR, lambda v: math.inf),
             "string": (ERROR, lambda v: str(v)), "none": (ERROR, lambda v: None),
             "numpy32": (ACCEPT, lambda v: np.float32(v)), "numpy64": (ACCEPT, lambda v: np.float64(v))},
    "choice": {"unknown": (ERROR, lambda v: "bogus"), "none": (ERROR, lambda v: None)},
    "device": {"cuda": (ERROR, lambda v: "cuda")},
    "tensor": TENSOR,
    # positive entries required
    "tensor+": {**TENSOR, "negative": (ERROR, _keep_type(lambda v: -_tensor(v)))},
    "index": INDEX,
    "labels": {k: INDEX[k] for k in ("float_dtype", "extra_dim", "empty", "string")},
}
MUTATIONS["nonneg"] = {**MUTATIONS["real"], "negative": (ERROR, lambda v: -1.0)}
MUTATIONS["pos"] = {**MUTATIONS["nonneg"], "zero": (ERROR, lambda v: 0.0)}
MUTATIONS["unit"] = {**MUTATIONS["pos"], "one_or_more": (ERROR, lambda v: 1.5)}
MUTATIONS["unit0"] = {**MUTATIONS["nonneg"], "one_or_more": (ERROR, lambda v: 1.5)}

#: Known bugs: ``case id`` → reason. Each is an ``xfail(strict=True)``, so fixing the bug turns the case
#: into an XPASS failure that asks for the entry to be deleted. Empty since issue 14's 50 entries were
#: fixed (one of them, a 2-D ``excess``, turned out to be documented behaviour: a ``skip`` above). Record
#: a bug here only when it cannot be fixed in the change that finds it.
KNOWN_BUGS: dict[str, str] = {}


def _cases():
    for api in API:
        for arg, kind in api.kinds.items():
            if kind == "device" and torch.cuda.is_available():
                continue
            for label, (expect, _) in MUTATIONS[kind].items():
                if f"{arg}:{label}" in api.skip:
                    continue
                case = f"{api.id}-{arg}-{label}"
                bug = KNOWN_BUGS.get(case)
                marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
                yield pytest.param(api, arg, label, expect, id=case, marks=marks)


# ---------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------

def _has_nan(result) -> bool:
    if isinstance(result, torch.Tensor):
        return bool(result.is_floating_point() and torch.isnan(result.detach()).any())
    if isinstance(result, np.ndarray):
        return bool(np.issubdtype(result.dtype, np.floating) and np.isnan(result).any())
    if isinstance(result, float | np.floating):
        return math.isnan(result)
    if isinstance(result, tuple | list):
        return any(_has_nan(r) for r in result)
    if isinstance(result, dict):
        return any(_has_nan(r) for r in result.values())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return any(_has_nan(getattr(result, f.name)) for f in dataclasses.fields(result))
    if isinstance(result, torch.nn.Module):
        return any(_has_nan(p) for p in result.parameters())
    return False


def _names_argument(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message) is not None


_WARM: dict[str, object] = {}


def warm(api: Api):
    """The valid call, once per function, with a generous budget: a first call pays for lazy imports
    and one-time set-up (torch.optim, a kernel's first interpretation) that the budget must not."""
    if api.id not in _WARM:
        _WARM[api.id] = call_with_budget(api.resolve(), api.make(), budget=30 * BUDGET_S)
    return _WARM[api.id]


@pytest.mark.parametrize("api", API, ids=[api.id for api in API])
def test_the_valid_call_works(api):
    result = warm(api)
    assert api.nan_ok or not _has_nan(result), "the valid call returned NaN"
    # and a second call within the budget
    call_with_budget(api.resolve(), api.make())


@pytest.mark.parametrize("api, arg, label, expect", list(_cases()))
def test_one_bad_argument(api, arg, label, expect):
    warm(api)
    kwargs = api.make()
    value = kwargs[arg] if arg in kwargs else _default(api, arg)
    if value is None and api.kinds[arg] not in ("device", "choice"):
        pytest.skip("the valid call leaves this argument at None")
    kwargs[arg] = MUTATIONS[api.kinds[arg]][label][1](value)
    name = api.names.get(arg, arg)
    try:
        result = call_with_budget(api.resolve(), kwargs)
    except Hang as error:
        pytest.fail(f"hang: {error}")
    except (TypeError, ValueError) as error:
        if expect == ACCEPT:
            pytest.fail(f"a valid value was refused: {type(error).__name__}: {error}")
        assert _names_argument(str(error), name), f"the message does not name {name!r}: {error}"
        return
    except RuntimeError as error:
        if label == "cuda" and "CUDA" in str(error):
            return
        pytest.fail(f"obscure error: {type(error).__name__}: {error}")
    except Exception as error:  # noqa: BLE001 - any other exception is the finding
        pytest.fail(f"obscure error: {type(error).__name__}: {error}")
    if expect == ERROR:
        pytest.fail(f"silent: {arg}={_short(kwargs[arg])} was accepted")
    assert api.nan_ok or not _has_nan(result), f"{arg}={_short(kwargs[arg])} gave NaN"


def _default(api, arg):
    import inspect
    return inspect.signature(api.resolve()).parameters[arg].default


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------------
# Bad settings: the environment variables and the claim checks
# ---------------------------------------------------------------------------------------------------

def _check_claim(measured):
    from theorylab import claims
    return claims.check("properties.claim", measured, 1.0, kind="identity", rtol=1e-12,
                        statement="a property test's claim")


SETTINGS = [
    ("THEORYLAB_PROGRESS", "garbage", lambda: importlib.import_module("theorylab.config").show_progress(),
     ValueError, "THEORYLAB_PROGRESS"),
    ("THEORYLAB_SCALE", "huge", lambda: importlib.import_module("theorylab.config").scale(),
     ValueError, "THEORYLAB_SCALE"),
    ("THEORYLAB_DEVICE", "tpu", lambda: importlib.import_module("theorylab.config").device(),
     ValueError, "THEORYLAB_DEVICE"),
    ("THEORYLAB_SEED", "abc", lambda: importlib.import_module("theorylab.seeding").base_seed(),
     ValueError, "THEORYLAB_SEED"),
    ("THEORYLAB_CLAIMS_FILE", "/nonexistent/directory/claims.jsonl", lambda: _check_claim(1.0),
     OSError, "THEORYLAB_CLAIMS_FILE"),
    (None, None, lambda: _check_claim("1.0"), TypeError, "measured"),
    (None, None, lambda: _check_claim(True), TypeError, "measured"),
]


@pytest.mark.parametrize("variable, value, call, error, match", SETTINGS,
                         ids=[f"{s[0] or 'claims'}-{s[1] or i}" for i, s in enumerate(SETTINGS)])
def test_a_bad_setting_is_a_clear_error(monkeypatch, variable, value, call, error, match):
    if variable:
        monkeypatch.setenv(variable, value)
    with pytest.raises(error, match=match):
        call_with_budget(lambda: call(), {}, budget=10 * BUDGET_S)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_cuda_asked_for_without_a_gpu(monkeypatch):
    from theorylab import config
    monkeypatch.setenv("THEORYLAB_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        config.device()
    monkeypatch.setenv("THEORYLAB_DEVICE", "")
    monkeypatch.setenv("THEORYLAB_SCALE", "full")
    monkeypatch.setattr(config, "_warned_full_on_cpu", False)
    with pytest.warns(RuntimeWarning, match="without a GPU"):
        assert config.scale() == "full"


# ---------------------------------------------------------------------------------------------------
# The examples issue 14 named (silent wrong answers and hangs), each a clear error now
# ---------------------------------------------------------------------------------------------------

def _mod(name):
    return importlib.import_module(f"theorylab.{name}")


ISSUE_EXAMPLES = [
    ("relative_error broadcasts", lambda: _mod("linalg").relative_error(torch.ones(3, 1), torch.ones(3)),
     "same shape"),
    ("truncated_svd(A, -1)", lambda: _mod("lowrank").truncated_svd(g(3, 3), -1), "k must be"),
    ("principal angles of a zero matrix", lambda: _mod("lowrank").principal_angle_cosines(
        torch.zeros(3, 2), torch.eye(3)[:, :2]), "P must have full column rank"),
    ("gaussian_posterior with a length-1 prior", lambda: _mod("generative").gaussian_posterior(
        g(5, 3), torch.tensor([1.0]), g(2, 3, seed=1), pos(3)), "prior must have shape"),
    ("half_time with extra final entries", lambda: _mod("jepa").half_time(
        [0.0, 1.0, 2.0], [[0.0, 0.0], [0.4, 1.0], [1.0, 2.0]], final=[1.0, 2.0, 3.0]), "final must"),
    ("covariance_with_spectrum of a negative value",
     lambda: _mod("linalg").covariance_with_spectrum([1.0, -1.0]), "eigenvalues must be non-negative"),
    ("matrix_with_spectrum of inf", lambda: _mod("linalg").matrix_with_spectrum(3, 3, [1.0, math.inf]),
     "singular_values must hold finite"),
    ("Mixture(correlation=1)", lambda: _mod("generative").mixture(4, correlation=1.0), "correlation must be"),
    ("init_scale=inf", lambda: _mod("lowrank").OrderedLowRankLinear(3, 3, init_scale=math.inf),
     "init_scale must be"),
    ("ode_trajectory to time NaN", lambda: _mod("jepa").ode_trajectory(
        "jepa", [1.0, 2.0], [0.5, 0.8], depth=1, eps=0.1, times=[0.0, math.nan]), "times must"),
    ("ode_trajectory to time inf", lambda: _mod("jepa").ode_trajectory(
        "jepa", [1.0, 2.0], [0.5, 0.8], depth=1, eps=0.1, times=[0.0, math.inf]), "times must"),
    ("record_every=0", lambda: _mod("jepa").train_balanced(
        "jepa", [1.0], [0.5], depth=1, eps=0.1, lr=0.1, steps=2, record_every=0), "record_every must"),
]


@pytest.mark.parametrize("call, match", [case[1:] for case in ISSUE_EXAMPLES],
                         ids=[case[0] for case in ISSUE_EXAMPLES])
def test_the_issues_examples_are_clear_errors(call, match):
    for module in ("linalg", "lowrank", "generative", "jepa"):    # imports are not the call's time
        _mod(module)
    # a one-off first call may pay for lazy imports (scipy) that an interrupted import would break
    with pytest.raises(ValueError, match=match):
        call_with_budget(lambda: call(), {}, budget=10 * BUDGET_S)
