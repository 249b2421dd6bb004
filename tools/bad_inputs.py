"""Measure how the public API of ``theorylab`` and ``theorylab.kernels`` answers bad input (issue 14).

A developer tool, not run by the tests. The table ``SPECS`` holds one cheap valid call per public function
(or class, or method) and the kind of each argument; every *case* changes one argument of that call into
a bad value of its kind (``MUTATIONS``: wrong shape, negative or zero, NaN, infinity, an integer or float32
tensor, a numpy scalar, an empty tensor, ``device='cuda'`` on a machine without a GPU, a string or a bool
where a number is, ...), calls it and classifies the outcome:

``clear``     a ``TypeError``/``ValueError`` raised by a ``raise`` statement of ``theorylab/`` or
              ``kernels/`` (not by torch's C code called from there) whose message names the argument
              (for ``device='cuda'``: a ``RuntimeError`` of theorylab's that names CUDA; for a claim,
              ``ClaimFailed``; for a shape that does not match another argument's, a message naming
              either argument);
``obscure``   any other exception (raised inside torch/numpy/scipy, of another type, or not naming the
              argument);
``silent``    an invalid input returned without an error (or a valid one returned a different answer
              than the same values given the plain way);
``nan``       the call returned NaN or infinity and no error;
``hang``      the call ran past ``--timeout`` seconds (default 20);
``accepted``  a valid input (a numpy scalar where a Python number is valid, ...) was accepted and gave
              the same answer as the plain value;
``refused``   a valid input was refused with an error.

Some changed inputs are neither valid nor invalid in general (an integer or float32 tensor where float64
is expected, a numpy array where a tensor is): for those (``either``) a clear error and a correct answer
are both fine. The answer is compared with the call on the same values converted the plain way.

Every case runs in a worker process under a timeout; a hang kills the worker and the next case starts a
new one. The issue's examples are re-checked one by one (``EXAMPLES``), and the settings read from the
environment (``SETTINGS``) each in a fresh process.

Usage::

    python tools/bad_inputs.py [--out DIR] [--only TEXT] [--timeout 20] [--list]

writes ``DIR/results.jsonl`` (one record per case) and ``DIR/table.md`` (the table and every case that is
not ``clear`` or ``accepted``), and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import math
import os
import re
import select
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_DIRS = (str(ROOT / "theorylab") + os.sep, str(ROOT / "kernels") + os.sep)

INVALID, VALID, EITHER = "invalid", "valid", "either"
OUTCOMES = ("clear", "obscure", "silent", "nan", "hang", "accepted", "refused")


# ---------------------------------------------------------------------------------------------------
# Values for the valid calls
# ---------------------------------------------------------------------------------------------------

def g(*shape, seed=0, dtype=torch.float64):
    """A small seeded Gaussian tensor."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def eye(n):
    """The float64 identity [n, n]."""
    return torch.eye(n, dtype=torch.float64)


def full(*values):
    """A float64 vector of ``values``."""
    return torch.tensor(values, dtype=torch.float64)


def pos(*shape, seed=0):
    """Entries in [0.5, 1.5)."""
    return 0.5 + torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def a(*shape, seed=0):
    """A small seeded Gaussian numpy array (tilting takes and returns numpy)."""
    return g(*shape, seed=seed).numpy()


def pm1(n):
    """Labels −1, +1, −1, ... as a numpy array."""
    return np.array([-1, 1] * (n // 2))


# ---------------------------------------------------------------------------------------------------
# Mutations: (label, input class, validity, mutate, reference)
# ``reference(value)`` gives the plain value the answer of an accepted VALID/EITHER input is compared
# with (``None``: compare with the valid call itself).
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutation:
    label: str
    klass: str          # the input class of the table
    validity: str
    mutate: Callable
    reference: Callable | None = None
    rtol: float = 1e-12


def _t(value) -> torch.Tensor:
    """A value as a tensor (lists become float64)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return torch.as_tensor(value, dtype=torch.float64)


def _like(original, out):
    """``out`` (a tensor) returned as a numpy array when ``original`` was one."""
    if isinstance(original, np.ndarray) and isinstance(out, torch.Tensor):
        return out.numpy()
    return out


def _set_first(value, number):
    t = _t(value).clone()
    if not t.is_floating_point():
        t = t.double()
    t.view(-1)[0] = number
    return _like(value, t)


def _tensor_op(f):
    return lambda v: _like(v, f(_t(v)))


SHAPE, SIGN, NONFINITE, DTYPE, NUMPY, CUDA, EMPTY, TYPE, CHOICE = (
    "wrong shape", "negative or zero", "NaN or inf", "wrong dtype (int, float32, mixed, complex)",
    "numpy scalar or array", "device='cuda' without a GPU", "empty tensor",
    "wrong type (string, bool, None)", "unknown choice")


def _number_mutations(kind: str) -> list[Mutation]:
    """Mutations of a number argument of ``kind``."""
    common = [
        Mutation("string", TYPE, INVALID, lambda v: str(v)),
        Mutation("bool", TYPE, INVALID, lambda v: True),
        Mutation("none", TYPE, INVALID, lambda v: None),
    ]
    if kind in ("size", "count", "seed"):
        out = [*common,
               Mutation("float", TYPE, INVALID, lambda v: v + 0.5),
               Mutation("negative", SIGN, INVALID, lambda v: -1),
               Mutation("nan", NONFINITE, INVALID, lambda v: math.nan),
               Mutation("numpy_int64", NUMPY, VALID, lambda v: np.int64(v), lambda v: v),
               Mutation("numpy_int32", NUMPY, VALID, lambda v: np.int32(v), lambda v: v)]
        if kind == "size":
            out.append(Mutation("zero", SIGN, INVALID, lambda v: 0))
        if kind == "seed":      # None is the named stream: valid
            out = [m for m in out if m.label != "none"]
        return out
    out = [*common,
           Mutation("nan", NONFINITE, INVALID, lambda v: math.nan),
           Mutation("inf", NONFINITE, INVALID, lambda v: math.inf),
           Mutation("numpy_float32", NUMPY, VALID, lambda v: np.float32(v), lambda v: float(np.float32(v))),
           Mutation("numpy_float64", NUMPY, VALID, lambda v: np.float64(v), lambda v: v)]
    if kind in ("nonneg", "pos", "unit", "unit0", "prob", "angle"):
        out.append(Mutation("negative", SIGN, INVALID, lambda v: -abs(v) - 1.0))
    if kind in ("pos", "unit"):
        out.append(Mutation("zero", SIGN, INVALID, lambda v: 0.0))
    if kind in ("unit", "unit0"):
        out.append(Mutation("one", SIGN, INVALID, lambda v: 1.0))
    if kind in ("unit", "unit0", "prob"):
        out.append(Mutation("above_one", SIGN, INVALID, lambda v: 1.5))
    if kind == "angle":
        out.append(Mutation("above_pi", SIGN, INVALID, lambda v: 4.0))
    return out


def _tensor_mutations(kind: str) -> list[Mutation]:
    """Mutations of an array argument of ``kind``: ``tensor`` (shape fixed by the call), ``free`` (any
    length), ``tensor+`` (positive entries), ``tensor0+`` (non-negative entries), ``np`` (a numpy array)."""
    out = [
        Mutation("nan", NONFINITE, INVALID, lambda v: _set_first(v, math.nan)),
        Mutation("inf", NONFINITE, INVALID, lambda v: _set_first(v, math.inf)),
        Mutation("empty", EMPTY, INVALID, _tensor_op(lambda t: t[:0] if t.ndim else t.reshape(1)[:0])),
        Mutation("extra_dim", SHAPE, INVALID, _tensor_op(lambda t: torch.stack([t, t + 1], -1))),
        Mutation("string", TYPE, INVALID, lambda v: "abc"),
        Mutation("complex", DTYPE, INVALID, _tensor_op(lambda t: t.to(torch.complex128))),
        Mutation("int_dtype", DTYPE, EITHER, _tensor_op(lambda t: (10 * t).round().long()),
                 _tensor_op(lambda t: (10 * t).round().double())),
        Mutation("float32", DTYPE, EITHER, _tensor_op(lambda t: t.float()),
                 _tensor_op(lambda t: t.float().double()), rtol=1e-3),
    ]
    if kind != "free":
        out.append(Mutation("short", SHAPE, INVALID,
                            _tensor_op(lambda t: t[:-1] if t.ndim else t[None, None])))
    if kind in ("tensor+",):
        out.append(Mutation("zero_entry", SIGN, INVALID, lambda v: _set_first(v, 0.0)))
    if kind in ("tensor+", "tensor0+"):
        out.append(Mutation("negative", SIGN, INVALID, _tensor_op(lambda t: -t.abs() - 0.5)))
    if kind == "np":
        out.append(Mutation("torch_tensor", NUMPY, EITHER, lambda v: torch.from_numpy(np.asarray(v,
                                                                                                 dtype=float))))
    else:
        out.append(Mutation("numpy_array", NUMPY, EITHER, lambda v: _t(v).numpy(), lambda v: v))
    return out


def _index_mutations(kind: str) -> list[Mutation]:
    """Integer arrays: ``index`` (indices, ranks, class ids 0..K-1), ``pm1`` (labels in {−1, +1}),
    ``bools`` (boolean masks)."""
    out = [
        Mutation("extra_dim", SHAPE, INVALID, _tensor_op(lambda t: torch.stack([t, t], -1))),
        Mutation("short", SHAPE, INVALID, _tensor_op(lambda t: t[:-1])),
        Mutation("empty", EMPTY, INVALID, _tensor_op(lambda t: t[:0])),
        Mutation("string", TYPE, INVALID, lambda v: "abc"),
    ]
    if kind == "index":
        out += [Mutation("negative", SIGN, INVALID, _tensor_op(lambda t: t - 100)),
                Mutation("too_large", SHAPE, INVALID, _tensor_op(lambda t: t + 100)),
                Mutation("float_dtype", DTYPE, EITHER, _tensor_op(lambda t: t.double())),
                Mutation("fractional", DTYPE, INVALID, _tensor_op(lambda t: t.double() + 0.5))]
    elif kind == "pm1":
        out += [Mutation("other_values", SIGN, INVALID, _tensor_op(lambda t: 2 * t)),
                Mutation("one_class", SHAPE, INVALID, _tensor_op(lambda t: t.abs())),
                Mutation("nan", NONFINITE, INVALID, lambda v: _set_first(v, math.nan)),
                Mutation("float_dtype", DTYPE, EITHER, _tensor_op(lambda t: t.double()))]
    elif kind == "bools":
        out += [Mutation("int_dtype", DTYPE, EITHER, _tensor_op(lambda t: t.long()),
                         _tensor_op(lambda t: t.bool())),
                Mutation("fractional", DTYPE, INVALID, _tensor_op(lambda t: t.double() * 0.5))]
    return out


MUTATIONS: dict[str, list[Mutation]] = {
    **{k: _number_mutations(k) for k in ("size", "count", "seed", "real", "nonneg", "pos", "unit", "unit0",
                                         "prob", "angle")},
    **{k: _tensor_mutations(k) for k in ("tensor", "free", "tensor+", "tensor0+", "np")},
    **{k: _index_mutations(k) for k in ("index", "pm1", "bools")},
    "choice": [Mutation("unknown", CHOICE, INVALID, lambda v: "bogus"),
               Mutation("none", TYPE, INVALID, lambda v: None),
               Mutation("int", TYPE, INVALID, lambda v: 1)],
    "device": [Mutation("cuda", CUDA, INVALID, lambda v: "cuda"),
               Mutation("unknown", CHOICE, INVALID, lambda v: "banana")],
    "dtype": [Mutation("int_dtype", DTYPE, INVALID, lambda v: torch.int64),
              Mutation("string", TYPE, INVALID, lambda v: "float64")],
    "flag": [Mutation("string", TYPE, INVALID, lambda v: "yes")],
    "object": [Mutation("string", TYPE, INVALID, lambda v: "abc"),
               Mutation("none", TYPE, INVALID, lambda v: None)],
    "list": [Mutation("empty_list", EMPTY, INVALID, lambda v: []),
             Mutation("string", TYPE, INVALID, lambda v: "abc")],
}


# ---------------------------------------------------------------------------------------------------
# The table: one valid call per public function, and the kind of each argument
# ---------------------------------------------------------------------------------------------------

@dataclass
class Spec:
    """``target`` (``module:name``, ``name`` may be ``Class.method``) called with ``make()``'s keyword
    arguments; ``kinds`` maps an argument to its kind (a key of ``MUTATIONS``). ``names`` gives the name
    an argument has in messages where it differs; ``skip`` lists ``arg:label`` cases that are documented
    behaviour, not bad input; ``nan_ok``: the valid result may hold NaN by design."""

    target: str
    make: Callable[[], dict]
    kinds: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    nan_ok: bool = False

    @property
    def id(self) -> str:
        module, name = self.target.split(":")
        return f"{module.removeprefix('theorylab.')}.{name}"

    def resolve(self) -> Callable:
        module, name = self.target.split(":")
        if module == "local":        # a helper of this file that calls a method after building its object
            return globals()[name]
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj


L, LR, J, IC = "theorylab.linalg:", "theorylab.lowrank:", "theorylab.jepa:", "theorylab.icl:"
K, GEN, ST, TI = "theorylab.kernels:", "theorylab.generative:", "theorylab.stability:", "theorylab.tilting:"
BS, CO, CL, CF, SE = ("theorylab.batchsize:", "theorylab.collapse:", "theorylab.claims:", "theorylab.config:",
                      "theorylab.seeding:")


def _layer():
    from theorylab.lowrank import OrderedLowRankLinear
    return OrderedLowRankLinear(4, 3, 2, seed=0)


def _prompts(batch=3, n=5, d=2):
    return dict(X=g(batch, n, d), y=g(batch, n, seed=1), x_query=g(batch, d, seed=2))


def _lsa():
    from theorylab.icl import LinearSelfAttention
    return LinearSelfAttention(2, seed=0, dtype=torch.float64)


def _mixture(n_classes=2):
    from theorylab import generative
    return generative.mixture(4, n_classes=n_classes, correlation=0.1)


def _dln(d=3):
    from theorylab.stability import DiagonalLinearNetwork
    return DiagonalLinearNetwork(d, init_scale=0.5, seed=0)


def _relu(d=3, width=4):
    from theorylab.stability import TwoLayerReLU
    return TwoLayerReLU(d, width, init_scale=0.5, seed=0)


def _trained():
    """A short training run (a ``stability.TrainingRun``) with its history recorded at every step."""
    from theorylab.stability import train
    return train(_dln(), g(6, 3), g(6, seed=1), lr=0.05, batch_size=2, steps=10, seed=0, record_every=1)


def _pool():
    from theorylab import generative
    X, y = generative.gaussian_mixture(12, 3, seed=0)
    return X, y


def _orders():
    from theorylab import generative
    _, y = _pool()
    return generative.random_orders(y, 2, length=8, seed=0)


def _stats():
    from theorylab.kernels import prefix_class_stats
    return prefix_class_stats


def _candidate():
    from theorylab.collapse import ce_candidate
    return ce_candidate("etf", 5, 4, depth=2, lambda_w=1e-3, lambda_h=1e-3)


def _ufm_batch():
    """A batch of one deep linear UFM (depth 2, width 3, K = 2, N = 4) for ufm_objective_and_grads."""
    return dict(layers=[g(1, 3, 3), g(1, 2, 3, seed=1)], H=g(1, 3, 4, seed=2), b=g(1, 2, seed=3),
                labels=torch.tensor([0, 0, 1, 1]), lambda_w=torch.full((1, 2), 1e-3, dtype=torch.float64),
                lambda_h=torch.full((1,), 1e-3, dtype=torch.float64))


def _nb_learner():
    from theorylab import generative
    return generative.GaussianNaiveBayes()


def _sampler(m, seed):
    from theorylab import generative
    return generative.gaussian_mixture(m, 4, seed=seed)


def logistic_regression_fit(C, max_iter, tol):
    """``generative.LogisticRegression(C, max_iter, tol).fit(X, y)`` on a small pool: the estimator, like
    scikit-learn's, checks its hyper-parameters when it fits."""
    from theorylab import generative
    X, y = _pool()
    return generative.LogisticRegression(C=C, max_iter=max_iter, tol=tol).fit(X, y)


def _generator():
    return torch.Generator().manual_seed(0)


def _streamed():
    from theorylab.icl import streamed_risk
    return streamed_risk(4, 2, 0.1, gamma=0.5, prompts=8, chunks=2, seed=0)


SIZES = ("size",)

SPECS: list[Spec] = [
    # --- linalg
    Spec(L + "random_orthonormal", lambda: dict(dim=4, k=2, seed=0), dict(dim="size", k="size", seed="seed")),
    Spec(L + "matrix_with_spectrum", lambda: dict(out_features=4, in_features=3, singular_values=[2.0, 1.0],
                                                  seed=0),
         dict(out_features="size", in_features="size", singular_values="tensor0+", seed="seed"),
         skip=("singular_values:short",)),
    Spec(L + "covariance_with_spectrum", lambda: dict(eigenvalues=[2.0, 1.0, 0.5], seed=0),
         dict(eigenvalues="tensor0+", seed="seed"), skip=("eigenvalues:short",)),
    Spec(L + "psd_sqrt", lambda: dict(cov=eye(3) * 2.0), dict(cov="tensor")),
    Spec(L + "relative_error", lambda: dict(estimate=g(3, 2), target=g(3, 2, seed=1)),
         dict(estimate="tensor", target="tensor")),
    # --- lowrank
    Spec(LR + "OrderedLowRankLinear",
         lambda: dict(in_features=4, out_features=3, rank=2, seed=0, init_scale=0.1,
                                                   bias=False, dtype=torch.float64),
         dict(in_features="size", out_features="size", rank="size", seed="seed", init_scale="pos",
              bias="flag",
              dtype="dtype")),
    Spec(LR + "OrderedLowRankLinear.forward", lambda: dict(self=_layer(), x=g(5, 4), rank=1),
         dict(x="free", rank="size")),
    Spec(LR + "OrderedLowRankLinear.forward_per_sample", lambda: dict(self=_layer(), x=g(3, 4),
                                                                      ranks=torch.tensor([1, 2, 1])),
         dict(x="tensor", ranks="index")),
    Spec(LR + "OrderedLowRankLinear.product", lambda: dict(self=_layer(), rank=1), dict(rank="size")),
    Spec(LR + "rank_distribution", lambda: dict(rank=3, weights=[1.0, 2.0, 3.0]),
         dict(rank="size", weights="tensor+"), names=dict(weights="rank_weights")),
    Spec(LR + "ordered_loss", lambda: dict(layer=_layer(), A=g(3, 4), cov_sqrt=eye(4),
                                           ordered=True, rank_weights=[1.0, 2.0]),
         dict(layer="object", A="tensor", cov_sqrt="tensor", ordered="flag", rank_weights="tensor+")),
    Spec(LR + "hierarchical_group_lasso", lambda: dict(layer=_layer(), eps=1e-12),
         dict(layer="object", eps="nonneg")),
    Spec(LR + "fit_ordered", lambda: dict(A=g(3, 4), steps=2, lr=0.05, seed=0, rank=2, group_lasso=0.01,
                                          cov=eye(4) * 2, rank_weights=[1.0, 1.0],
                                          ordered=True, progress=False),
         dict(A="tensor", steps="size", lr="pos", seed="seed", rank="size", group_lasso="nonneg",
              cov="tensor",
              rank_weights="tensor+", ordered="flag", progress="flag"), skip=("A:short",)),
    Spec(LR + "group_lasso_importances", lambda: dict(singular_values=[2.0, 1.0], rank=3, weight=0.01,
                                                      iterations=5),
         dict(singular_values="tensor+", rank="size", weight="nonneg", iterations="size"),
         skip=("singular_values:short",)),
    Spec(LR + "truncated_svd", lambda: dict(A=g(4, 3), k=2), dict(A="tensor", k="count"), skip=("A:short",)),
    Spec(LR + "rank_losses", lambda: dict(layer=_layer(), A=g(3, 4), cov_sqrt=eye(4)),
         dict(layer="object", A="tensor", cov_sqrt="tensor")),
    Spec(LR + "eckart_young_excess", lambda: dict(layer=_layer(), A=g(3, 4)),
         dict(layer="object", A="tensor")),
    Spec(LR + "nested_error_bound", lambda: dict(layer=_layer(), A=g(3, 4)),
         dict(layer="object", A="tensor")),
    Spec(LR + "nested_errors", lambda: dict(layer=_layer(), A=g(3, 4)), dict(layer="object", A="tensor")),
    Spec(LR + "column_alignment", lambda: dict(vectors=g(4, 2), reference=g(4, 2, seed=1)),
         dict(vectors="tensor", reference="tensor")),
    Spec(LR + "principal_angle_cosines", lambda: dict(P=g(4, 2), Q=g(4, 2, seed=1)),
         dict(P="tensor", Q="tensor")),
    Spec(LR + "sample_ranks", lambda: dict(batch=5, rank=3, generator=0, device=None),
         dict(batch="size", rank="size", generator="seed", device="device")),
    Spec(LR + "ordered_dropout_sgd",
         lambda: dict(layer=_layer(), A=g(3, 4), steps=2, batch=4, lr=0.01, seed=0,
                                                  progress=False),
         dict(layer="object", A="tensor", steps="size", batch="size", lr="pos", seed="seed")),
    # --- icl
    *[Spec(IC + name, lambda: dict(n=5, d=3, sigma=0.5), dict(n="size", d="size", sigma="nonneg"))
      for name in ("optimal_step_size", "optimal_risk", "relu_step_size", "relu_optimal_risk")],
    Spec(IC + "sample_prompts", lambda: dict(batch=3, n=5, d=2, sigma=0.1, cov=eye(2) * 2,
                                            weight_cov=eye(2), response="linear",
                                            generator=0, dtype=torch.float64, device=None),
         dict(batch="size", n="size", d="size", sigma="nonneg", cov="tensor", weight_cov="tensor",
              response="choice", generator="seed", dtype="dtype", device="device")),
    Spec(IC + "gradient_at_zero", lambda: {k: v for k, v in _prompts().items() if k != "x_query"},
         dict(X="tensor", y="tensor")),
    Spec(IC + "one_step_gd_predict", lambda: dict(**_prompts(), gamma=eye(2)),
         dict(X="tensor", y="tensor", x_query="tensor", gamma="tensor")),
    Spec(IC + "ridge_predict", lambda: dict(**_prompts(), sigma=0.5, weight_cov=eye(2)),
         dict(X="tensor", y="tensor", x_query="tensor", sigma="nonneg", weight_cov="tensor")),
    Spec(IC + "LinearSelfAttention", lambda: dict(d=3, init_scale=0.1, seed=0, mask_query=True,
                                                  dtype=torch.float64),
         dict(d="size", init_scale="pos", seed="seed", mask_query="flag", dtype="dtype")),
    Spec(IC + "LinearSelfAttention.forward", lambda: dict(self=_lsa(), **_prompts()),
         dict(X="tensor", y="tensor", x_query="tensor")),
    Spec(IC + "LinearSelfAttention.nuisance_fraction", lambda: dict(self=_lsa(), **_prompts()),
         dict(X="tensor", y="tensor", x_query="tensor")),
    Spec(IC + "train_lsa", lambda: dict(n=4, d=2, sigma=0.1, steps=2, batch=3, lr=0.02, seed=0, restarts=1,
                                        response="linear", cov=eye(2),
                                        mask_query=True, device=None, progress=False),
         dict(n="size", d="size", sigma="nonneg", steps="size", batch="size", lr="pos", seed="seed",
              restarts="size", response="choice", cov="tensor", mask_query="flag", device="device")),
    Spec(IC + "streamed_risk", lambda: dict(n=4, d=2, sigma=0.1, gamma=0.5, prompts=8, chunks=2, seed=0,
                                            response="linear", device=None, backend="auto"),
         dict(n="size", d="size", sigma="nonneg", gamma="free", prompts="size", chunks="size", seed="seed",
              response="choice", backend="choice", device="device")),
    Spec(IC + "StreamedRisk.risk_at", lambda: dict(self=_streamed(), scale=0.5), dict(scale="real")),
    Spec(IC + "streamed_ridge_risk",
         lambda: dict(n=4, d=2, sigma=0.1, prompts=8, chunks=2, seed=0, device=None),
         dict(n="size", d="size", sigma="nonneg", prompts="size", chunks="size", seed="seed",
              device="device")),
    Spec(IC + "one_step_gd_risk", lambda: dict(eta=0.3, n=5, d=3, sigma=0.5),
         dict(eta="real", n="size", d="size", sigma="nonneg")),
    Spec(IC + "mc_risk", lambda: dict(prediction=g(6), target=g(6, seed=1)),
         dict(prediction="tensor", target="tensor")),
    Spec(IC + "random_covariance", lambda: dict(d=3, condition=10.0, seed=0),
         dict(d="size", condition="pos", seed="seed")),
    # --- jepa
    Spec(J + "fixed_point", lambda: dict(objective="jepa", rho=[0.5, 0.8], depth=2),
         dict(objective="choice", rho="tensor+", depth="size"), skip=("rho:short",)),
    Spec(J + "critical_time",
         lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2, eps=0.01),
         dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit")),
    Spec(J + "exact_half_time",
         lambda: dict(objective="mae", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2, eps=0.01,
                                             fraction=0.5),
         dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", fraction="unit")),
    Spec(J + "fastest_rate", lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2, eps=0.01,
                                          points=11),
         dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", points="size")),
    Spec(J + "sample_half_time_ratio",
         lambda: dict(objective="jepa", x=g(20, 2), y=g(20, 2, seed=1) + g(20, 2),
                                                    depth=1, eps=0.01),
         dict(objective="choice", x="tensor", y="tensor", depth="size", eps="unit")),
    Spec(J + "ode_trajectory",
         lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=1, eps=0.1,
                                            times=[0.0, 1.0, 2.0]),
         dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", times="free")),
    Spec(J + "half_time", lambda: dict(times=[0.0, 1.0, 2.0], values=[[0.0, 0.0], [0.4, 1.0], [1.0, 2.0]],
                                       final=[1.0, 2.0], fraction=0.5),
         dict(times="tensor", values="tensor", final="tensor", fraction="unit"),
         skip=("values:nan", "values:inf"), nan_ok=True),
    Spec(J + "train_population",
         lambda: dict(objective="jepa", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=1, eps=0.1,
                                              lr=0.1, steps=3, seed=0, init_noise=0.1, record_every=2),
         dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", lr="pos",
              steps="size",
              seed="seed", init_noise="nonneg", record_every="size")),
    Spec(J + "train_balanced", lambda: dict(objective="mae", lam=[1.0, 2.0], rho=[0.5, 0.8], depth=2, eps=0.1,
                                            lr=0.1, steps=3, record_every=2),
         dict(objective="choice", lam="tensor+", rho="tensor+", depth="size", eps="unit", lr="pos",
              steps="size",
              record_every="size")),
    Spec(J + "train_moments", lambda: dict(objective="jepa", Cxx=eye(2) * 2.0,
                                           Cxy=eye(2), depth=1, eps=0.1, lr=0.1,
                                           steps=3, seed=0, init_noise=0.0, record_every=1),
         dict(objective="choice", Cxx="tensor", Cxy="tensor", depth="size", eps="unit", lr="pos",
              steps="size",
              seed="seed", init_noise="nonneg", record_every="size")),
    Spec(J + "sample_views", lambda: dict(n_samples=5, lam=[1.0, 2.0], rho=[0.5, 0.8], seed=0),
         dict(n_samples="size", lam="tensor+", rho="tensor+", seed="seed")),
    Spec(J + "train_samples", lambda: dict(objective="jepa", x=g(8, 2), y=g(8, 2, seed=1), depth=1, eps=0.1,
                                           lr=0.1, steps=3, batch=4, seed=0, record_every=2),
         dict(objective="choice", x="tensor", y="tensor", depth="size", eps="unit", lr="pos", steps="size",
              batch="size", seed="seed", record_every="size")),
    # --- kernels (the launchers; the *_reference functions are the tests' oracles and check nothing)
    Spec(K + "lsa_moments", lambda: dict(X=g(2, 3, 2), y=g(2, 3, seed=1), x_query=g(2, 2, seed=2),
                                         y_query=g(2, seed=3), p=g(3, seed=4), K=g(3, 2, seed=5),
                                         backend="auto"),
         dict(X="tensor", y="tensor", x_query="tensor", y_query="tensor", p="tensor", K="tensor",
              backend="choice")),
    Spec(K + "ordered_lowrank", lambda: dict(x=g(3, 4), U=g(5, 2, seed=1), V=g(4, 2, seed=2),
                                             ranks=torch.tensor([0, 1, 2]), backend="auto"),
         dict(x="tensor", U="tensor", V="tensor", ranks="index", backend="choice"), skip=("U:short",)),
    Spec(K + "feature_half_times", lambda: dict(lam=pos(3), rho=pos(3, seed=1) / 1.5,
                                                t_max=torch.full((3,), 20.0, dtype=torch.float64), depth=1,
                                                eps=0.1, objective="jepa", n_steps=20, backend="auto"),
         dict(lam="tensor+", rho="tensor+", t_max="tensor+", depth="size", eps="unit", objective="choice",
              n_steps="size", backend="choice"), nan_ok=True),
    Spec(K + "classifier_stats", lambda: dict(X=g(6, 3), labels=torch.tensor([1, -1, 1, -1, 1, 0]),
                                              W=g(2, 3, seed=1), b=g(2, seed=2), positive=1, negative=-1,
                                              backend="auto"),
         dict(X="tensor", labels="index", W="tensor", b="tensor", backend="choice"),
         skip=("labels:negative", "labels:too_large")),    # any integer is a class id
    Spec(K + "prefix_class_stats", lambda: dict(X=g(6, 2), y=torch.tensor([0, 1, 0, 1, 0, 1]),
                                                order=torch.stack([torch.arange(6), torch.arange(6).flip(0)]),
                                                ends=torch.tensor([2, 6]), n_classes=2, backend="auto"),
         dict(X="tensor", y="index", order="index", ends="index", n_classes="size", backend="choice"),
         skip=("ends:short", "order:short")),
    Spec(K + "relu_gn_sq_norms", lambda: dict(X=g(5, 3), W=g(4, 3, seed=1), v=g(4, seed=2), backend="auto"),
         dict(X="tensor", W="tensor", v="tensor", backend="choice"), skip=("X:short",)),
    Spec(K + "relu_gn_matvec", lambda: dict(X=g(5, 3), W=g(4, 3, seed=1), v=g(4, seed=2), dW=g(4, 3, seed=3),
                                            dv=g(4, seed=4), backend="auto"),
         dict(X="tensor", W="tensor", v="tensor", dW="tensor", dv="tensor",
              backend="choice"), skip=("X:short",)),
    Spec(K + "sgd_log_norms",
         lambda: dict(eigenvalues=pos(3), lrs=torch.tensor([0.1, 0.2], dtype=torch.float64),
                                           e0=g(2, 3), steps=3, batch=2, burn_in=1, seed=0, backend="auto"),
         dict(eigenvalues="tensor+", lrs="tensor+", e0="tensor", steps="size", batch="size", burn_in="count",
              seed="seed", backend="choice"), skip=("lrs:short", "e0:short")),
    Spec(K + "collapse_directions", lambda: dict(
        size=full(5.0, 10.0), total=full(20.0, 20.0), lambda_w=full(1e-3, 1e-3), lambda_h=full(1e-3, 1e-3),
        s0=full(0.1, 0.1), t0=full(0.1, 0.1), depth=2, lr=0.1, momentum=0.9, n_steps=5, backend="auto"),
         dict(size="tensor+", total="tensor+", lambda_w="tensor+", lambda_h="tensor+", s0="tensor",
              t0="tensor", depth="size", lr="pos", momentum="unit0", n_steps="count", backend="choice")),
    Spec(K + "use_triton", lambda: dict(tensor=g(2), backend="auto"),
         dict(tensor="object", backend="choice")),
    # --- tilting (numpy in, numpy out)
    *[Spec(TI + name, lambda: dict(X=a(8, 3), y=pm1(8)), dict(X="np", y="pm1"))
      for name in ("nearest_centroid_normal", "nearest_centroid_classifier", "critical_C",
                   "nc_angle_rounding_bound", "class_centroids", "within_class_covariance")],
    *[Spec(TI + name, lambda: dict(w=a(3, seed=1), X=a(8, 3), y=pm1(8)), dict(w="np", X="np", y="pm1"))
      for name in ("deviation_angle", "tilt_direction", "tilt_variance_ratio")],
    *[Spec(TI + name, lambda: dict(w=a(3, seed=1), b=0.1, X=a(8, 3)), dict(w="np", b="real", X="np"),
           skip=("X:short",))
      for name in ("signed_distance", "projected_images", "mirror_images", "fgsm_threshold")],
    *[Spec(TI + name, lambda: dict(w=a(3, seed=1), b=0.1, X=a(8, 3), y=pm1(8)),
           dict(w="np", b="real", X="np", y="pm1"), nan_ok=name == "error_distance")
      for name in ("adversarial_distance", "error_distance", "error_rate", "error_mass")],
    Spec(TI + "tilted_classifier", lambda: dict(X=a(8, 3), y=pm1(8), normal=a(3, seed=1), theta=0.3),
         dict(X="np", y="pm1", normal="np", theta="angle")),
    Spec(TI + "replicate_pixels", lambda: dict(X=a(2, 4), k=2, shape=(2, 2)), dict(X="np", k="size"),
         skip=("X:short",)),
    Spec(TI + "plane_data", lambda: dict(n=6, dim=4, separation=2.0, noise=0.1, seed=0),
         dict(n="size", dim="size", separation="pos", noise="nonneg", seed="seed")),
    Spec(TI + "digits_split", lambda: dict(seed=0), dict(seed="seed")),
    Spec(TI + "digit_pair",
         lambda: dict(X=a(6, 3), classes=np.array([0, 1, 2, 0, 1, 2]), negative=0, positive=1),
         dict(X="np", classes="index", negative="count", positive="count"),
         skip=("classes:negative", "classes:too_large")),
    Spec(TI + "flip_labels", lambda: dict(y=pm1(4), fraction=0.25, seed=0), dict(y="pm1", fraction="prob",
                                                                                 seed="seed"),
         skip=("y:short", "y:one_class")),
    Spec(TI + "sharp_tilt", lambda: dict(X=a(8, 3), y=pm1(8), eps=0.01), dict(X="np", y="pm1", eps="pos")),
    Spec(TI + "svm_path", lambda: dict(X=a(8, 3), y=pm1(8), Cs=[0.1, 1.0], tol=1e-9),
         dict(X="np", y="pm1", Cs="tensor+", tol="pos"), skip=("Cs:short",)),
    Spec(TI + "classifier_statistics",
         lambda: dict(X=a(6, 3), labels=pm1(6), W=a(2, 3, seed=1), b=a(2, seed=2),
                                                    positive=1, negative=-1, device=None, dtype=torch.float32,
                                                    backend="auto"),
         dict(X="np", labels="pm1", W="np", b="np", device="device", dtype="dtype", backend="choice"),
         skip=("labels:other_values",)),
    Spec(TI + "float32_error_bound",
         lambda: dict(X=a(6, 3), labels=pm1(6), W=a(2, 3, seed=1), b=a(2, seed=2)),
         dict(X="np", labels="pm1", W="np", b="np"), skip=("labels:other_values",)),
    Spec(TI + "float32_consistency", lambda: dict(X=a(6, 3), labels=pm1(6), W=a(2, 3, seed=1), b=a(2, seed=2),
                                                  positive=1, negative=-1, device=None),
         dict(X="np", labels="pm1", W="np", b="np", device="device"), skip=("labels:other_values",)),
    Spec(TI + "path_angles", lambda: dict(W=a(2, 3, seed=1), X=a(8, 3), y=pm1(8)),
         dict(W="np", X="np", y="pm1"),
         skip=("W:short",)),
    Spec(TI + "path_adversarial_distances",
         lambda: dict(W=a(2, 3, seed=1), b=a(2, seed=2), X=a(8, 3), y=pm1(8)),
         dict(W="np", b="np", X="np", y="pm1")),
    Spec(TI + "mcnemar_counts", lambda: dict(wrong_first=np.array([True, False, True, False]),
                                             wrong_second=np.array([False, False, True, True])),
         dict(wrong_first="bools", wrong_second="bools")),
    Spec(TI + "mcnemar_z", lambda: dict(wrong_first=np.array([True, False, True, False]),
                                        wrong_second=np.array([False, False, True, True])),
         dict(wrong_first="bools", wrong_second="bools")),
    Spec(TI + "angle_dips", lambda: dict(X=a(8, 3), y=pm1(8), levels=3),
         dict(X="np", y="pm1", levels="size")),
    # --- stability
    Spec(ST + "DiagonalLinearNetwork", lambda: dict(d=3, init_scale=0.5, seed=0, dtype=torch.float64),
         dict(d="size", init_scale="pos", seed="seed", dtype="dtype")),
    Spec(ST + "TwoLayerReLU", lambda: dict(d=3, width=4, init_scale=0.5, seed=0, dtype=torch.float64),
         dict(d="size", width="size", init_scale="pos", seed="seed", dtype="dtype")),
    Spec(ST + "sparse_regression", lambda: dict(n=5, d=4, sparsity=2, n_test=6, seed=0, dtype=torch.float64),
         dict(n="size", d="size", sparsity="size", n_test="size", seed="seed", dtype="dtype")),
    Spec(ST + "relu_teacher", lambda: dict(n=5, d=3, neurons=2, n_test=6, seed=0, dtype=torch.float64),
         dict(n="size", d="size", neurons="size", n_test="size", seed="seed", dtype="dtype")),
    Spec(ST + "train", lambda: dict(model=_dln(), X=g(6, 3), y=g(6, seed=1), lr=0.05, batch_size=2, steps=5,
                                    seed=0, clip=10.0, record_every=1),
         dict(model="object", X="tensor", y="tensor", lr="pos", batch_size="size", steps="size", seed="seed",
              clip="pos", record_every="size"), skip=("clip:none",)),    # None: no clipping
    Spec(ST + "train_many", lambda: dict(models=[_dln(), _dln()], X=g(6, 3), y=g(6, seed=1), lr=0.05,
                                         batch_size=2, steps=5, seed=0, clip=10.0, record_every=1,
                                         engine="auto"),
         dict(models="list", X="tensor", y="tensor", lr="pos", batch_size="size", steps="size", seed="seed",
              clip="pos", record_every="size", engine="choice"), skip=("clip:none",)),
    Spec(ST + "clipped_fraction", lambda: dict(run=_trained(), after=5),
         dict(run="object", after="count")),
    Spec(ST + "clipping_budget", lambda: dict(steps=200, share=0.002), dict(steps="size", share="unit0")),
    Spec(ST + "excursion_steps", lambda: dict(run=_trained()), dict(run="object")),
    Spec(ST + "per_sample_gradients", lambda: dict(model=_relu(), X=g(5, 3)),
         dict(model="object", X="tensor"),
         skip=("X:short",)),
    Spec(ST + "gauss_newton_trace", lambda: dict(model=_relu(), X=g(5, 3), backend="auto"),
         dict(model="object", X="tensor", backend="choice"), skip=("X:short",)),
    Spec(ST + "gauss_newton_matvec", lambda: dict(model=_relu(), X=g(5, 3), u=g(16, seed=1), backend="auto"),
         dict(model="object", X="tensor", u="tensor", backend="choice"), skip=("X:short",)),
    Spec(ST + "gauss_newton_lambda_max",
         lambda: dict(model=_relu(), X=g(5, 3), method="lanczos", iters=5, seed=0,
                                                      backend="auto"),
         dict(model="object", X="tensor", method="choice", iters="size", seed="seed", backend="choice"),
         skip=("X:short",)),
    Spec(ST + "mean_square_radius",
         lambda: dict(model=_dln(), X=g(5, 3), lr=0.1, batch_size=2, rank_tol=1e-7),
         dict(model="object", X="tensor", lr="pos", batch_size="size", rank_tol="unit"), skip=("X:short",)),
    Spec(ST + "mean_square_threshold", lambda: dict(model=_dln(), X=g(5, 3), batch_size=2, rank_tol=1e-7),
         dict(model="object", X="tensor", batch_size="size", rank_tol="unit"), skip=("X:short",)),
    Spec(ST + "lyapunov_exponent",
         lambda: dict(model=_dln(), X=g(5, 3), lr=0.1, batch_size=2, steps=20, chains=2,
                                                burn_in=10, seed=0, rank_tol=1e-7),
         dict(model="object", X="tensor", lr="pos", batch_size="size", steps="size", chains="size",
              burn_in="count", seed="seed", rank_tol="unit"), skip=("X:short",)),
    Spec(ST + "lyapunov_exponents", lambda: dict(models=[_dln(), _dln()], X=g(5, 3), lr=0.1, batch_size=2,
                                                 steps=20, chains=2, burn_in=10, windows=1, seed=0),
         dict(models="list", X="tensor", lr="pos", batch_size="size", steps="size", chains="size",
              burn_in="count", windows="size", seed="seed"), skip=("X:short",)),
    Spec(ST + "gd_escape_threshold",
         lambda: dict(models=[_dln()], X=g(5, 3), y=g(5, seed=1), low=0.01, high=2.0,
                                                  iters=3, steps=20, eps=1e-3),
         dict(models="list", X="tensor", y="tensor", low="pos", high="pos", iters="size", steps="size",
              eps="pos"), nan_ok=True),     # NaN for a bracket that is wrong at the start, documented
    Spec(ST + "sampling_factor", lambda: dict(batch_size=2, n=5), dict(batch_size="size", n="size")),
    Spec(ST + "l1_norm", lambda: dict(model=_dln()), dict(model="object")),
    Spec(ST + "path_norm", lambda: dict(model=_relu()), dict(model="object")),
    *[Spec(ST + name, lambda: dict(model=_dln(), X=g(5, 3), y=g(5, seed=1)),
           dict(model="object", X="tensor", y="tensor"))
      for name in ("test_error", "training_loss")],
    Spec(ST + "parameter_count", lambda: dict(model=_dln()), dict(model="object")),
    # --- generative (through its public names only)
    Spec(GEN + "GaussianNaiveBayes", lambda: dict(var_smoothing=1e-9), dict(var_smoothing="nonneg")),
    Spec(GEN + "GaussianNaiveBayes.fit", lambda: dict(self=_nb_learner(), X=_pool()[0], y=_pool()[1]),
         dict(X="tensor", y="index")),
    Spec("local:logistic_regression_fit", lambda: dict(C=1.0, max_iter=100, tol=1e-7),
         dict(C="pos", max_iter="size", tol="pos")),     # scikit-learn's convention: fit checks them
    Spec(GEN + "Mixture", lambda: dict(means=torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64),
                                       std=torch.tensor([1.0, 2.0], dtype=torch.float64), correlation=0.1),
         dict(means="tensor", std="tensor+", correlation="unit0")),
    Spec(GEN + "mixture", lambda: dict(n=4, n_classes=2, correlation=0.1, mean_scale=1.0),
         dict(n="size", n_classes="size", correlation="unit0", mean_scale="pos")),
    Spec(GEN + "gaussian_mixture",
         lambda: dict(m=6, n=3, n_classes=2, correlation=0.1, seed=0, mean_scale=1.0),
         dict(m="size", n="size", n_classes="size", correlation="unit0", seed="seed", mean_scale="pos")),
    Spec(GEN + "gaussian_posterior",
         lambda: dict(X=g(5, 3), prior=torch.tensor([0.4, 0.6], dtype=torch.float64),
                                                  means=g(2, 3, seed=1), var=pos(3, seed=2)),
         dict(X="tensor", prior="tensor0+", means="tensor", var="tensor+"), skip=("X:short",)),
    Spec(GEN + "nb_parameters", lambda: dict(counts=torch.tensor([3.0, 4.0], dtype=torch.float64),
                                             means=g(2, 3), variances=pos(2, 3), var_smoothing=1e-9),
         dict(counts="tensor+", means="tensor", variances="tensor0+", var_smoothing="nonneg")),
    Spec(GEN + "fit_logistic_many", lambda: dict(X=_pool()[0][None], y=_pool()[1][None], n_classes=2, C=1.0,
                                                 max_iter=50, tol=1e-6),
         dict(X="tensor", y="index", n_classes="size", C="pos", max_iter="size", tol="pos")),
    Spec(GEN + "random_orders", lambda: dict(y=_pool()[1], n_orders=2, length=6, disjoint=False, seed=0),
         dict(y="index", n_orders="size", length="size", disjoint="flag", seed="seed"),
         skip=("y:short",)),
    Spec(GEN + "nb_prefix_fits", lambda: dict(X=_pool()[0], y=_pool()[1], orders=_orders(), m_grid=[4, 8],
                                              var_smoothing=1e-9),
         dict(X="tensor", y="index", orders="index", m_grid="tensor+", var_smoothing="nonneg"),
         skip=("orders:short", "m_grid:short")),
    Spec(GEN + "lr_prefix_fits",
         lambda: dict(X=_pool()[0], y=_pool()[1], orders=_orders(), m_grid=[4, 8], C=1.0,
                                              max_iter=50, tol=1e-6),
         dict(X="tensor", y="index", orders="index", m_grid="tensor+", C="pos", max_iter="size", tol="pos"),
         skip=("orders:short", "m_grid:short")),
    Spec(GEN + "test_errors", lambda: dict(W=g(2, 3), b=g(2, seed=1), X_test=_pool()[0], y_test=_pool()[1]),
         dict(W="tensor", b="tensor", X_test="tensor", y_test="index")),
    Spec(GEN + "learning_curves", lambda: dict(X_pool=_pool()[0], y_pool=_pool()[1], X_test=_pool()[0],
                                               y_test=_pool()[1], m_grid=[4, 8], n_orders=2, seed=0, C=1.0,
                                               var_smoothing=1e-9, max_iter=50),
         dict(X_pool="tensor", y_pool="index", m_grid="tensor+", n_orders="size", seed="seed", C="pos",
              var_smoothing="nonneg", max_iter="size"),
         skip=("m_grid:short",)),
    Spec(GEN + "samples_to_reach", lambda: dict(learner=_nb_learner(), sampler=_sampler, target_error=0.4,
                                                n_test=100, repeats=2, seed=0, rtol=0.0, m_max=64),
         dict(learner="object", sampler="object", target_error="unit", n_test="size", repeats="size",
              seed="seed", rtol="nonneg", m_max="size")),
    Spec(GEN + "nb_error_prediction", lambda: dict(mixture=_mixture(), m=[8, 16], order=2),
         dict(mixture="object", m="tensor+", order="size"), skip=("m:short",)),
    Spec(GEN + "nb_error_simulation",
         lambda: dict(mixture=_mixture(), m=10, repeats=20, seed=0, var_smoothing=1e-9),
         dict(mixture="object", m="size", repeats="size", seed="seed", var_smoothing="nonneg")),
    Spec(GEN + "nb_prediction_start", lambda: dict(mixture=_mixture()), dict(mixture="object")),
    Spec(GEN + "lr_error_coefficient", lambda: dict(mixture=_mixture()), dict(mixture="object")),
    Spec(GEN + "logistic_calibration_inverse", lambda: dict(excess=[0.1, 0.2]), dict(excess="tensor0+"),
         skip=("excess:extra_dim", "excess:short")),    # elementwise, any shape
    Spec(GEN + "first_crossing", lambda: dict(m_grid=[1.0, 2.0, 4.0], values=[0.5, 0.3, 0.1], level=0.2),
         dict(m_grid="tensor+", values="tensor", level="real")),
    Spec(GEN + "bootstrap_crossings", lambda: dict(m_grid=[1.0, 2.0, 4.0],
                                                   curves=torch.tensor([[0.5, 0.3, 0.1], [0.6, 0.25, 0.15]],
                                                                       dtype=torch.float64),
                                                   level=0.2, draws=5, generator=_generator()),
         dict(m_grid="tensor+", curves="tensor", level="real", draws="size", generator="object"),
         skip=("curves:short",)),
    Spec(GEN + "explore_table", lambda: dict(ns=(4,), n_classes=(2,), correlations=(0.0,), sizes=(6, 12),
                                             streams=2, n_test=50, seed=0),
         dict(ns="tensor+", correlations="tensor0+", sizes="tensor+", streams="size", n_test="size",
              seed="seed"),
         skip=("sizes:short",)),
    Spec(GEN + "pretrained_digit_features", lambda: dict(hidden=4, steps=3, lr=0.01, seed=0),
         dict(hidden="size", steps="size", lr="pos", seed="seed")),
    # --- batchsize
    Spec(BS + "marchenko_pastur", lambda: dict(q=0.5), dict(q="pos")),
    Spec(BS + "wigner_edge", lambda: dict(q=0.5), dict(q="nonneg")),
    Spec(BS + "spike_outlier", lambda: dict(theta=3.0, q=0.5), dict(theta="pos", q="nonneg")),
    Spec(BS + "bbp_batch", lambda: dict(theta=3.0, d=10), dict(theta="pos", d="size")),
    Spec(BS + "outlier_learning_rate", lambda: dict(theta=3.0, d=10, batch=4),
         dict(theta="pos", d="size", batch="size")),
    Spec(BS + "batch_hessian_eigenvalues", lambda: dict(eigenvalues=[2.0, 1.0, 0.5], batch=4, draws=3, seed=0,
                                                        spike_overlap=False),
         dict(eigenvalues="tensor+", batch="size", draws="size", seed="seed", spike_overlap="flag"),
         skip=("eigenvalues:short",)),
    Spec(BS + "subsample_top_eigenvalue", lambda: dict(X=g(8, 3), batch=4, draws=3, seed=0),
         dict(X="tensor", batch="size", draws="size", seed="seed"), skip=("X:short",)),
    Spec(BS + "additive_top_eigenvalue", lambda: dict(beta=2.0, sigma=1.0, size=5, batch=4, draws=3, seed=0),
         dict(beta="nonneg", sigma="pos", size="size", batch="size", draws="size", seed="seed")),
    Spec(BS + "second_moment_step",
         lambda: dict(lr=0.1, eigenvalues=[2.0, 1.0], batch=4, s=[1.0, 1.0], noise=0.1,
                                                 kurtosis=3.0),
         dict(lr="pos", eigenvalues="tensor+", batch="size", s="tensor0+", noise="nonneg", kurtosis="pos"),
         skip=("s:extra_dim",)),     # s may be [..., d]
    Spec(BS + "ms_rate", lambda: dict(lr=0.1, eigenvalues=[1.0, 0.5], batch=4, kurtosis=3.0),
         dict(lr="pos", eigenvalues="tensor+", batch="size", kurtosis="pos"), skip=("eigenvalues:short",)),
    Spec(BS + "ms_threshold", lambda: dict(eigenvalues=[1.0, 0.5], batch=4, kurtosis=3.0),
         dict(eigenvalues="tensor+", batch="size", kurtosis="pos"), skip=("eigenvalues:short",)),
    Spec(BS + "isotropic_ms_threshold", lambda: dict(d=10, batch=4), dict(d="size", batch="size")),
    Spec(BS + "small_batch_threshold", lambda: dict(eigenvalues=[1.0, 0.5, 0.25], batch=2),
         dict(eigenvalues="tensor+", batch="size"), skip=("eigenvalues:short",)),
    Spec(BS + "large_batch_threshold", lambda: dict(eigenvalues=[2.0, 0.5, 0.25], batch=50),
         dict(eigenvalues="tensor+", batch="size"), skip=("eigenvalues:short",)),
    Spec(BS + "frozen_rmsprop_threshold", lambda: dict(eigenvalues=[1.0, 0.5], batch=4, noise=0.5),
         dict(eigenvalues="tensor+", batch="size", noise="pos"), skip=("eigenvalues:short",)),
    Spec(BS + "lyapunov_exponents",
         lambda: dict(eigenvalues=[1.0, 0.5], batch=2, lrs=[0.1, 0.5], runs=2, steps=10,
                                                 burn_in=2, seed=0),
         dict(eigenvalues="tensor+", batch="size", lrs="tensor+", runs="size", steps="size", burn_in="count",
              seed="seed"), skip=("eigenvalues:short", "lrs:short")),
    Spec(BS + "expected_sgd_risk", lambda: dict(eigenvalues=[1.0, 0.5], batch=2, lrs=[0.1, 0.5], samples=20,
                                                noise=0.1, init=1.0, kurtosis=3.0),
         dict(eigenvalues="tensor+", batch="size", lrs="tensor+", samples="size", noise="nonneg",
              init="nonneg",
              kurtosis="pos"), skip=("eigenvalues:short", "lrs:short")),
    Spec(BS + "sgd_risk", lambda: dict(eigenvalues=[1.0, 0.5], batch=2, lrs=[0.1, 0.5], samples=20, noise=0.1,
                                       runs=2, seed=0),
         dict(eigenvalues="tensor+", batch="size", lrs="tensor+", samples="size", noise="nonneg", runs="size",
              seed="seed"), skip=("eigenvalues:short", "lrs:short")),
    Spec(BS + "rmsprop_risk",
         lambda: dict(eigenvalues=[1.0, 0.5], batch=2, lrs=[0.01, 0.05], samples=20, noise=0.1,
                                           runs=2, beta2=0.9, eps=1e-12, seed=0, return_state=False),
         dict(eigenvalues="tensor+", batch="size", lrs="tensor+", samples="size", noise="nonneg", runs="size",
              beta2="unit0", eps="nonneg", seed="seed", return_state="flag"),
         skip=("eigenvalues:short", "lrs:short")),
    Spec(BS + "best_lr", lambda: dict(lrs=[0.1, 0.2, 0.4], risks=[0.3, 0.2, 0.5]),
         dict(lrs="tensor+", risks="tensor"), skip=("risks:nan", "risks:inf", "risks:extra_dim")),
    Spec(BS + "loglog_slope", lambda: dict(x=[1.0, 2.0, 4.0], y=[1.0, 0.5, 0.26]),
         dict(x="tensor+", y="tensor+")),
    Spec(BS + "tracy_widom_edge", lambda: dict(d=10, batch=20), dict(d="size", batch="size")),
    # --- collapse
    Spec(CO + "lambda_bar", lambda: dict(lambda_w=0.01, depth=2), dict(lambda_w="pos", depth="size")),
    Spec(CO + "per_direction_objective",
         lambda: dict(a=[0.0, 0.5], class_size=5, total=10, depth=2, lambda_w=1e-3,
                                                      lambda_h=1e-3),
         dict(a="tensor0+", class_size="pos", total="pos", depth="size", lambda_w="pos", lambda_h="pos"),
         skip=("a:short", "a:extra_dim")),
    *[Spec(CO + name, lambda: dict(class_size=5, total=10, depth=2, lambda_w=1e-3, lambda_h=1e-3),
           dict(class_size="pos", total="pos", depth="size", lambda_w="pos", lambda_h="pos"))
      for name in ("stationary_points", "largest_stationary_root")],
    Spec(CO + "stationary_objectives",
         lambda: dict(class_sizes=[5, 2], depth=2, lambda_w=1e-3, lambda_h=1e-3),
         dict(class_sizes="tensor+", depth="size", lambda_w="pos", lambda_h="pos")),
    Spec(CO + "critical_class_size", lambda: dict(total=100, depth=2, lambda_w=1e-3, lambda_h=1e-3),
         dict(total="pos", depth="size", lambda_w="pos", lambda_h="pos")),
    Spec(CO + "mse_optimum",
         lambda: dict(class_sizes=[5, 2], depth=2, lambda_w=1e-3, lambda_h=1e-3, bias=False),
         dict(class_sizes="tensor+", depth="size", lambda_w="pos", lambda_h="pos", bias="flag")),
    Spec(CO + "ce_candidate", lambda: dict(kind="etf", class_size=5, num_classes=4, depth=2, lambda_w=1e-3,
                                           lambda_h=1e-3),
         dict(kind="choice", class_size="pos", num_classes="size", depth="size", lambda_w="pos",
              lambda_h="pos")),
    Spec(CO + "ce_critical_point", lambda: dict(candidate=_candidate(), class_size=5, depth=2, lambda_w=1e-3,
                                                lambda_h=1e-3, width=8),
         dict(candidate="object", class_size="size", depth="size", lambda_w="pos", lambda_h="pos",
              width="size")),
    Spec(CO + "nc_metrics", lambda: dict(layers=[g(3, 3), g(2, 3, seed=1)], H=g(3, 4, seed=2),
                                         labels=torch.tensor([0, 0, 1, 1]), reference="orthogonal"),
         dict(layers="list", H="tensor", labels="index", reference="choice")),
    Spec(CO + "labels_for", lambda: dict(class_sizes=[2, 3]), dict(class_sizes="tensor+")),
    Spec(CO + "train_ufm", lambda: dict(class_sizes=[3, 2], depth=2, lambda_w=1e-3, lambda_h=1e-3, loss="mse",
                                        bias=False, width=3, steps=5, lr=0.1, momentum=0.9, init="gaussian",
                                        init_scale=0.3, batch=None, seed=0),
         dict(class_sizes="tensor+", depth="size", lambda_w="pos", lambda_h="pos", loss="choice", bias="flag",
              width="size", steps="count", lr="pos", momentum="unit0", init="choice", init_scale="pos",
              seed="seed")),
    Spec(CO + "ufm_objective_and_grads", _ufm_batch,
         dict(layers="list", H="tensor", b="tensor", labels="index", lambda_w="tensor+", lambda_h="tensor+")),
    Spec(CO + "balanced_factors", lambda: dict(Z=eye(3) - 1 / 3, depth=2, lambda_w=1e-3,
                                               lambda_h_eff=1e-3, width=4),
         dict(Z="tensor", depth="size", lambda_w="pos", lambda_h_eff="pos", width="size")),
    # --- claims
    Spec(CL + "check", lambda: dict(claim_id="lab.valid-claim", measured=1.0, expected=1.0, kind="identity",
                                    rtol=1e-9, atol=0.0, se=None, statement="a valid claim"),
         dict(claim_id="choice", measured="real", expected="real", kind="choice", rtol="nonneg",
              atol="nonneg",
              statement="choice"), skip=("statement:unknown",)),    # any text is a statement
    Spec(CL + "check_at_most", lambda: dict(claim_id="lab.valid-bound", measured=1.0, bound=2.0, se=0.1,
                                            statement="a valid bound"),
         dict(claim_id="choice", measured="real", bound="real", se="pos"), skip=("bound:inf",)),
    Spec(CL + "check_at_least", lambda: dict(claim_id="lab.valid-bound", measured=1.0, bound=0.5,
                                             statement="a valid bound"),
         dict(claim_id="choice", measured="real", bound="real"), skip=("bound:inf",)),
    Spec(CL + "find_claim_sites", lambda: dict(source='check("a.b", 1, 1)\n'), dict(source="object"),
         skip=("source:string",)),     # any text is a source
    Spec(CL + "bonferroni_z", lambda: dict(claims=50, alpha=0.01), dict(claims="size", alpha="unit")),
    # --- config and seeding
    Spec(CF + "check_cuda", lambda: dict(where=torch.device("cpu")), dict(where="device")),
    Spec(SE + "seed", lambda: dict(name="stream", base=3), dict(name="choice", base="seed"),
         skip=("name:unknown",)),    # any non-empty string names a stream
    Spec(SE + "make_generator", lambda: dict(seed=3, device="cpu"), dict(seed="seed", device="device")),
    Spec(SE + "resolve_seed", lambda: dict(value=3, name="stream"), dict(value="seed"),
         names=dict(value="seed")),
    Spec(SE + "seed_everything", lambda: dict(seed=3), dict(seed="seed")),
]



# ---------------------------------------------------------------------------------------------------
# The examples issue 14 named, each re-checked as written there
# ---------------------------------------------------------------------------------------------------

def _m(name):
    return importlib.import_module(f"theorylab.{name}")


def _kernels():
    return importlib.import_module("theorylab.kernels")


#: (label, call, argument its error must name, validity)
EXAMPLES: list[tuple[str, Callable, str, str]] = [
    ("linalg.relative_error([3,1] vs [3])",
     lambda: _m("linalg").relative_error(torch.ones(3, 1), torch.ones(3)),
     "estimate", INVALID),
    ("lowrank.truncated_svd(A, -1)", lambda: _m("lowrank").truncated_svd(g(3, 3), -1), "k", INVALID),
    ("lowrank.principal_angle_cosines(zeros, e1e2)", lambda: _m("lowrank").principal_angle_cosines(
        torch.zeros(3, 2, dtype=torch.float64), eye(3)[:, :2]), "P", INVALID),
    ("generative.gaussian_posterior(length-1 prior)", lambda: _m("generative").gaussian_posterior(
        g(5, 3), torch.tensor([1.0]), g(2, 3, seed=1), pos(3)), "prior", INVALID),
    ("jepa.half_time(extra final entries)", lambda: _m("jepa").half_time(
        [0.0, 1.0, 2.0], [[0.0, 0.0], [0.4, 1.0], [1.0, 2.0]], final=[1.0, 2.0, 3.0]), "final", INVALID),
    ("linalg.covariance_with_spectrum([1, nan])",
     lambda: _m("linalg").covariance_with_spectrum([1.0, math.nan]),
     "eigenvalues", INVALID),
    ("linalg.covariance_with_spectrum([1, inf])",
     lambda: _m("linalg").covariance_with_spectrum([1.0, math.inf]),
     "eigenvalues", INVALID),
    ("linalg.covariance_with_spectrum([1, -1])", lambda: _m("linalg").covariance_with_spectrum([1.0, -1.0]),
     "eigenvalues", INVALID),
    ("linalg.matrix_with_spectrum(.., [1, nan])",
     lambda: _m("linalg").matrix_with_spectrum(3, 3, [1.0, math.nan]),
     "singular_values", INVALID),
    ("linalg.matrix_with_spectrum(.., [1, inf])",
     lambda: _m("linalg").matrix_with_spectrum(3, 3, [1.0, math.inf]),
     "singular_values", INVALID),
    ("linalg.matrix_with_spectrum(.., [1, -1])", lambda: _m("linalg").matrix_with_spectrum(3, 3, [1.0, -1.0]),
     "singular_values", INVALID),
    ("generative.mixture(correlation=1)", lambda: _m("generative").mixture(4, correlation=1.0), "correlation",
     INVALID),
    ("generative.Mixture(correlation=1)", lambda: _m("generative").Mixture(
        torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), torch.tensor([1.0, 2.0]), 1.0), "correlation", INVALID),
    ("lowrank.OrderedLowRankLinear(init_scale=inf)", lambda: _m("lowrank").OrderedLowRankLinear(
        3, 3, init_scale=math.inf), "init_scale", INVALID),
    ("icl.LinearSelfAttention(init_scale=inf)", lambda: _m("icl").LinearSelfAttention(3, init_scale=math.inf),
     "init_scale", INVALID),
    ("stability.DiagonalLinearNetwork(init_scale=inf)", lambda: _m("stability").DiagonalLinearNetwork(
        3, init_scale=math.inf), "init_scale", INVALID),
    ("collapse.train_ufm(init_scale=inf)", lambda: _m("collapse").train_ufm(
        [2, 2], depth=1, lambda_w=1e-3, lambda_h=1e-3, steps=1, init_scale=math.inf), "init_scale", INVALID),
    ("jepa.ode_trajectory(times=[0, nan])", lambda: _m("jepa").ode_trajectory(
        "jepa", [1.0, 2.0], [0.5, 0.8], depth=1, eps=0.1, times=[0.0, math.nan]), "times", INVALID),
    ("jepa.ode_trajectory(times=[0, inf])", lambda: _m("jepa").ode_trajectory(
        "jepa", [1.0, 2.0], [0.5, 0.8], depth=1, eps=0.1, times=[0.0, math.inf]), "times", INVALID),
    ("jepa.train_balanced(record_every=0)", lambda: _m("jepa").train_balanced(
        "jepa", [1.0], [0.5], depth=1, eps=0.1, lr=0.1, steps=2, record_every=0), "record_every", INVALID),
    ("jepa.train_population(record_every=0)", lambda: _m("jepa").train_population(
        "jepa", [1.0], [0.5], depth=1, eps=0.1, lr=0.1, steps=2, record_every=0), "record_every", INVALID),
    ("stability.train(record_every=0)", lambda: _m("stability").train(
        _dln(), g(6, 3), g(6, seed=1), lr=0.05, batch_size=2, steps=5, record_every=0),
     "record_every", INVALID),
    ("icl.sample_prompts(sigma=np.float32(0.01))", lambda: _m("icl").sample_prompts(
        2, 3, 2, np.float32(0.01), generator=0), "sigma", VALID),
    ("icl.sample_prompts(batch=np.int64(10))", lambda: _m("icl").sample_prompts(
        np.int64(10), 3, 2, 0.1, generator=0), "batch", VALID),
    ("jepa.train_samples(lr=np.float32(0.01), steps=np.int64(10))", lambda: _m("jepa").train_samples(
        "jepa", g(8, 2), g(8, 2, seed=1), depth=1, eps=0.1, lr=np.float32(0.01), steps=np.int64(10), batch=4,
        seed=0), "lr", VALID),
    ("stability.train(lr=np.float32(0.01), steps=np.int64(10))", lambda: _m("stability").train(
        _dln(), g(6, 3), g(6, seed=1), lr=np.float32(0.01), batch_size=np.int64(2), steps=np.int64(10),
        seed=0),
     "lr", VALID),
    ("jepa.train_samples(float32 data)", lambda: _m("jepa").train_samples(
        "jepa", g(8, 2).float(), g(8, 2, seed=1).float(), depth=1, eps=0.1, lr=0.1, steps=3, batch=4, seed=0),
     "x", EITHER),
    ("stability.gauss_newton_matvec(float32 data)", lambda: _m("stability").gauss_newton_matvec(
        _relu(), g(5, 3).float(), g(16, seed=1).float()), "X", EITHER),
    ("stability.gauss_newton_matvec(float32 u)", lambda: _m("stability").gauss_newton_matvec(
        _relu(), g(5, 3), g(16, seed=1).float()), "u", EITHER),
    ("kernels.lsa_moments(mixed float32/float64)", lambda: _kernels().lsa_moments(
        g(2, 3, 2).float(), g(2, 3, seed=1), g(2, 2, seed=2), g(2, seed=3), g(3, seed=4), g(3, 2, seed=5)),
     "X", EITHER),
    ("kernels.ordered_lowrank(mixed)", lambda: _kernels().ordered_lowrank(
        g(3, 4).float(), g(5, 2, seed=1), g(4, 2, seed=2), torch.tensor([0, 1, 2])), "x", EITHER),
    ("kernels.classifier_stats(mixed)", lambda: _kernels().classifier_stats(
        g(6, 3).float(), torch.tensor([1, -1, 1, -1, 1, 0]), g(2, 3, seed=1), g(2, seed=2)), "X", EITHER),
    ("kernels.relu_gn_matvec(mixed)", lambda: _kernels().relu_gn_matvec(
        g(5, 3).float(), g(4, 3, seed=1), g(4, seed=2), g(4, 3, seed=3), g(4, seed=4)), "X", EITHER),
    ("kernels.relu_gn_sq_norms(mixed)", lambda: _kernels().relu_gn_sq_norms(
        g(5, 3), g(4, 3, seed=1).float(), g(4, seed=2)), "W", EITHER),
    ("kernels.prefix_class_stats(float32 X)", lambda: _kernels().prefix_class_stats(
        g(6, 2).float(), torch.tensor([0, 1, 0, 1, 0, 1]), torch.arange(6)[None], torch.tensor([2, 6]), 2),
     "X", EITHER),
    ("kernels.feature_half_times(mixed)", lambda: _kernels().feature_half_times(
        pos(3).float(), pos(3, seed=1) / 1.5, torch.full((3,), 20.0, dtype=torch.float64), depth=1, eps=0.1,
        n_steps=20), "lam", EITHER),
    ("kernels.collapse_directions(mixed)", lambda: _kernels().collapse_directions(
        torch.tensor([5.0, 10.0]), torch.tensor([20.0, 20.0], dtype=torch.float64), torch.full((2,), 1e-3),
        torch.full((2,), 1e-3), torch.full((2,), 0.1), torch.full((2,), 0.1), depth=2, lr=0.1, momentum=0.9,
        n_steps=5), "size", EITHER),
    ("kernels.sgd_log_norms(mixed)", lambda: _kernels().sgd_log_norms(
        pos(3).float(), torch.tensor([0.1, 0.2], dtype=torch.float64), g(2, 3), steps=3, batch=2, burn_in=1,
        seed=0), "eigenvalues", EITHER),
    ("icl.sample_prompts(device='cuda')", lambda: _m("icl").sample_prompts(2, 3, 2, 0.1, device="cuda"),
     "device", INVALID),
    ("icl.train_lsa(device='cuda')", lambda: _m("icl").train_lsa(4, 2, 0.1, steps=2, batch=3, device="cuda",
                                                                 progress=False), "device", INVALID),
    ("lowrank.sample_ranks(device='cuda')", lambda: _m("lowrank").sample_ranks(5, 3, device="cuda"), "device",
     INVALID),
    ("seeding.make_generator(device='cuda')", lambda: _m("seeding").make_generator(0, device="cuda"),
     "device",
     INVALID),
    ("tilting.classifier_statistics(device='cuda')", lambda: _m("tilting").classifier_statistics(
        a(6, 3), pm1(6), a(2, 3, seed=1), a(2, seed=2), device="cuda"), "device", INVALID),
    ("claims.check(measured='1.0')", lambda: _m("claims").check(
        "lab.example", "1.0", 1.0, kind="identity", rtol=1e-9, statement="x"), "measured", INVALID),
    ("claims.check(measured=True)", lambda: _m("claims").check(
        "lab.example", True, 1.0, kind="identity", rtol=1e-9, statement="x"), "measured", INVALID),
    ("claims.check(expected=True)", lambda: _m("claims").check(
        "lab.example", 1.0, True, kind="identity", rtol=1e-9, statement="x"), "expected", INVALID),
    ("claims.check(rtol='0.1')", lambda: _m("claims").check(
        "lab.example", 1.0, 1.0, kind="identity", rtol="0.1", statement="x"), "rtol", INVALID),
    ("claims.check(se=True)", lambda: _m("claims").check(
        "lab.example", 1.0, 1.0, kind="identity", rtol=1e-9, se=True, statement="x"), "se", INVALID),
    ("claims.check(measured=np.float32(1))", lambda: _m("claims").check(
        "lab.example", np.float32(1.0), 1.0, kind="identity", rtol=1e-6, statement="x"), "measured", VALID),
    ("claims.check(measured=tensor(1.))", lambda: _m("claims").check(
        "lab.example", torch.tensor(1.0), 1.0, kind="identity", rtol=1e-6, statement="x"), "measured", VALID),
    ("claims.check(measured=[1.0])", lambda: _m("claims").check(
        "lab.example", [1.0], 1.0, kind="identity", rtol=1e-6, statement="x"), "measured", INVALID),
    ("claims.check(measured=tensor([1., 2.]))", lambda: _m("claims").check(
        "lab.example", torch.tensor([1.0, 2.0]), 1.0, kind="identity", rtol=1e-6, statement="x"), "measured",
     INVALID),
    ("claims.bonferroni_z(np.int64(50))", lambda: _m("claims").bonferroni_z(np.int64(50)), "claims", VALID),
    ("claims.find_claim_sites(None)", lambda: _m("claims").find_claim_sites(None), "source", INVALID),
    ("config.check_cuda('cpu')", lambda: _m("config").check_cuda("cpu"), "where", VALID),
    ("config.check_cuda(torch.device('cuda'))", lambda: _m("config").check_cuda(torch.device("cuda")), "cuda",
     INVALID),
    ("stability.train(X float64, model float32)", lambda: _m("stability").train(
        _m("stability").DiagonalLinearNetwork(3, seed=0, dtype=torch.float32), g(6, 3), g(6, seed=1), lr=0.05,
        batch_size=2, steps=5, seed=0), "X", EITHER),
    ("lowrank.ordered_loss(layer=nn.Linear)",
     lambda: _m("lowrank").ordered_loss(torch.nn.Linear(4, 3), g(3, 4)),
     "layer", INVALID),
    ("lowrank.OrderedLowRankLinear.forward_per_sample(float ranks)", lambda: _layer().forward_per_sample(
        g(3, 4), torch.tensor([1.0, 2.0, 1.0])), "ranks", EITHER),
    ("lowrank.OrderedLowRankLinear.forward(x float32)", lambda: _layer().forward(g(5, 4).float()), "x",
     EITHER),
]


# ---------------------------------------------------------------------------------------------------
# Settings read from the environment: each in a fresh process
# ---------------------------------------------------------------------------------------------------

#: (label, environment, code run in a fresh ``python -c``, the outcome that is right:
#: ``"error:<Type>:<text it must contain>"``, ``"warns:<text>"`` or ``"ok:<text printed>"``)
SETTINGS: list[tuple[str, dict, str, str]] = [
    ("THEORYLAB_PROGRESS=garbage", {"THEORYLAB_PROGRESS": "garbage"},
     "from theorylab import config; print(config.show_progress())", "error:ValueError:THEORYLAB_PROGRESS"),
    ("THEORYLAB_PROGRESS=0", {"THEORYLAB_PROGRESS": "0"},
     "from theorylab import config; print(config.show_progress())", "ok:False"),
    ("THEORYLAB_SCALE=full on a CPU", {"THEORYLAB_SCALE": "full"},
     "from theorylab import config; print(config.scale())", "warns:without a GPU"),
    ("THEORYLAB_SCALE=huge", {"THEORYLAB_SCALE": "huge"},
     "from theorylab import config; print(config.scale())", "error:ValueError:THEORYLAB_SCALE"),
    ("THEORYLAB_SEED=abc", {"THEORYLAB_SEED": "abc"},
     "from theorylab import seeding; print(seeding.base_seed())", "error:ValueError:THEORYLAB_SEED"),
    ("THEORYLAB_SEED=-1", {"THEORYLAB_SEED": "-1"},
     "from theorylab import seeding; print(seeding.base_seed())", "error:ValueError:THEORYLAB_SEED"),
    ("THEORYLAB_SEED=1.5", {"THEORYLAB_SEED": "1.5"},
     "from theorylab import seeding; print(seeding.base_seed())", "error:ValueError:THEORYLAB_SEED"),
    ("THEORYLAB_DEVICE=tpu", {"THEORYLAB_DEVICE": "tpu"},
     "from theorylab import config; print(config.device())", "error:ValueError:THEORYLAB_DEVICE"),
    ("THEORYLAB_DEVICE=cuda without a GPU", {"THEORYLAB_DEVICE": "cuda"},
     "from theorylab import config; print(config.device())", "error:RuntimeError:CUDA"),
    ("THEORYLAB_DEVICE=cuda, then tilting.classifier_statistics()", {"THEORYLAB_DEVICE": "cuda"},
     "from theorylab import tilting\n"
     "import numpy as np; X = np.random.default_rng(0).normal(size=(6, 3)); l = np.array([-1, 1] * 3)\n"
     "print(tilting.classifier_statistics(X, l, X[:2], np.zeros(2)))", "error:RuntimeError:CUDA"),
    ("THEORYLAB_CLAIMS_FILE unwritable", {"THEORYLAB_CLAIMS_FILE": "/nonexistent/directory/claims.jsonl"},
     "from theorylab import claims\n"
     "claims.check('lab.x', 1.0, 1.0, kind='identity', rtol=1e-9, statement='x')",
     "error:OSError:THEORYLAB_CLAIMS_FILE"),
    ("THEORYLAB_CLAIMS_DEFER=garbage", {"THEORYLAB_CLAIMS_DEFER": "garbage"},
     "from theorylab import claims\n"
     "claims.check('lab.x', 2.0, 1.0, kind='identity', rtol=1e-9, statement='x')",
     "error:ValueError:THEORYLAB_CLAIMS_DEFER"),
    *[(f"TRITON_INTERPRET={value}", {"TRITON_INTERPRET": value},
       "import torch; from theorylab import kernels\n"
       "g = lambda *s: torch.randn(*s, dtype=torch.float64)\n"
       "X, y, xq, yq, p, K = g(2, 3, 2), g(2, 3), g(2, 2), g(2), g(3), g(3, 2)\n"
       "out = kernels.lsa_moments(X, y, xq, yq, p, K)\n"
       "ref = kernels.lsa_moments_reference(X, y, xq, yq, p, K)\n"
       "print('interpreter on:', kernels.interpreter_on()); print(bool(torch.allclose(out, ref, rtol=1e-4)))",
       "ok:True")
      for value in ("no", "off", "FALSE", "2", "0", "1", "true")],
]


# ---------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    spec: int          # index into SPECS, or -1 for an example
    arg: str | None
    label: str
    klass: str
    validity: str
    example: int = -1  # index into EXAMPLES


def _defaults_none(spec: Spec) -> set[str]:
    """The arguments of ``spec``'s function whose default is ``None`` (``None`` is valid there)."""
    try:
        parameters = inspect.signature(spec.resolve()).parameters
    except (TypeError, ValueError):
        return set()
    return {name for name, p in parameters.items() if p.default is None}


def cases() -> list[Case]:
    out = []
    for i, spec in enumerate(SPECS):
        optional = _defaults_none(spec)
        out.append(Case(f"{spec.id}:valid-call", i, None, "valid_call", "valid call", VALID))
        tensor_args = [arg for arg, kind in spec.kinds.items()
                       if kind in ("tensor", "free", "tensor+", "tensor0+", "np")]
        for arg, kind in spec.kinds.items():
            for mutation in MUTATIONS[kind]:
                if f"{arg}:{mutation.label}" in spec.skip or (mutation.label == "none" and arg in optional):
                    continue
                klass = mutation.klass
                validity = mutation.validity
                label = mutation.label
                if label == "float32" and len(tensor_args) > 1:
                    label = "float32_mixed"
                out.append(Case(f"{spec.id}:{arg}:{label}", i, arg, mutation.label, klass, validity))
    for j, (label, _, _, validity) in enumerate(EXAMPLES):
        out.append(Case(f"example:{label}", -1, None, "example", "issue example", validity, example=j))
    return out


def _mutation(kind: str, label: str) -> Mutation:
    return next(m for m in MUTATIONS[kind] if m.label == label)


# ---------------------------------------------------------------------------------------------------
# Running one case (in the worker)
# ---------------------------------------------------------------------------------------------------

def _flatten(result, depth=0) -> list:
    """The numbers of a result as a list of float64 arrays (and other leaves as themselves)."""
    if depth > 6:
        return []
    if isinstance(result, torch.Tensor):
        r = result.detach().cpu()
        return [r.to(torch.float64).numpy() if not r.is_complex() else r.numpy()]
    if isinstance(result, np.ndarray):
        return [result.astype(np.float64) if result.dtype != object else result]
    if isinstance(result, bool | int | float | np.number):
        return [np.asarray(float(result))]
    if isinstance(result, tuple | list):
        return [x for r in result for x in _flatten(r, depth + 1)]
    if isinstance(result, dict):
        return [x for k in sorted(result, key=str) for x in _flatten(result[k], depth + 1)]
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return [x for f in dataclasses.fields(result) for x in _flatten(getattr(result, f.name), depth + 1)]
    if isinstance(result, torch.nn.Module):
        return [x for p in result.parameters() for x in _flatten(p, depth + 1)]
    if hasattr(result, "__dict__") and depth == 0:
        return [x for k, v in sorted(vars(result).items()) if not k.startswith("_")
                for x in _flatten(v, depth + 1)]
    return []


def _nonfinite(result) -> bool:
    for leaf in _flatten(result):
        if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "fc" and not np.isfinite(leaf).all():
            return True
    return False


def _same(a, b, rtol) -> str | None:
    """None when two results agree to ``rtol`` (NaN where NaN), else a description of the difference."""
    fa, fb = _flatten(a), _flatten(b)
    if len(fa) != len(fb):
        return f"{len(fa)} arrays vs {len(fb)}"
    for x, y in zip(fa, fb, strict=True):
        if x.shape != y.shape:
            return f"shape {list(x.shape)} vs {list(y.shape)}"
        if x.dtype == object or y.dtype == object:
            continue
        scale = max(float(np.nanmax(np.abs(y), initial=0.0)) if np.isfinite(y).any() else 0.0, 1e-300)
        close = np.isclose(x, y, rtol=rtol, atol=rtol * scale * 1e-3, equal_nan=True)
        if not close.all():
            k = int(np.argmin(close.reshape(-1)))
            return f"entry {k}: {x.reshape(-1)[k]!r} vs {y.reshape(-1)[k]!r}"
    return None


def _names(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message) is not None


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    path = last.filename
    for prefix in (str(ROOT) + os.sep,):
        path = path.removeprefix(prefix)
    if "site-packages" in path:
        path = path.split("site-packages" + os.sep, 1)[1]
    return f"{path}:{last.lineno}"


def _in_library(error: BaseException) -> bool:
    """Whether ``error`` was raised by a ``raise`` statement of ``theorylab/`` or ``kernels/``: an error that
    torch's or numpy's C code raises inside a call on a line of theorylab's does not count."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames or not frames[-1].filename.startswith(LIBRARY_DIRS):
        return False
    return (frames[-1].line or "").lstrip().startswith("raise")


def classify_error(error: BaseException, name: str, label: str, klass: str = "",
                   partners: tuple[str, ...] = ()) -> tuple[str, str]:
    """``("clear" | "obscure", why)`` for an exception raised by a call whose argument ``name`` was bad.

    A shape that does not match another argument's may be reported under either name (``y must have
    shape [2, 5], got [3, 5]`` when ``X`` lost a prompt): for the wrong-shape class, naming one of the
    call's other arguments (``partners``) counts."""
    from theorylab.claims import ClaimFailed
    message = str(error)
    if isinstance(error, ClaimFailed):
        return "clear", "ClaimFailed"
    if not _in_library(error):
        return "obscure", "not raised by theorylab's own checks"
    if isinstance(error, RuntimeError) and "CUDA" in message.upper() and (label == "cuda" or name in (
            "device", "where", "cuda")):
        return "clear", "RuntimeError naming CUDA"
    if not isinstance(error, TypeError | ValueError):
        return "obscure", f"{type(error).__name__} (not TypeError/ValueError)"
    if not _names(message, name):
        if klass == SHAPE and any(_names(message, other) for other in partners):
            return "clear", ""
        return "obscure", f"message does not name {name!r}"
    return "clear", ""


def _short(value, limit=70) -> str:
    text = repr(value)
    if isinstance(value, torch.Tensor):
        text = f"tensor{list(value.shape)} {str(value.dtype).removeprefix('torch.')}"
        if value.numel() <= 4:
            text += " " + repr(value.tolist())
    elif isinstance(value, np.ndarray):
        text = f"array{list(value.shape)} {value.dtype}"
        if value.size <= 4:
            text += " " + repr(value.tolist())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _call(spec: Spec, kwargs: dict):
    return spec.resolve()(**kwargs)


class Worker:
    """State of the worker process: valid results per spec (the references of VALID inputs)."""

    def __init__(self):
        self.valid: dict[int, object] = {}

    def warm(self, i: int) -> str | None:
        """The valid call of spec ``i`` (once); an error message if it fails."""
        if i in self.valid:
            return None
        spec = SPECS[i]
        try:
            self.valid[i] = _call(spec, spec.make())
        except Exception as error:  # noqa: BLE001
            self.valid[i] = error
            return f"{type(error).__name__}: {error}"
        return None

    def run(self, case: Case) -> dict:
        if case.example >= 0:
            return self.run_example(case)
        spec = SPECS[case.spec]
        record = dict(id=case.id, spec=spec.id, arg=case.arg, label=case.label, klass=case.klass,
                      validity=case.validity)
        valid = self.valid.get(case.spec)
        if isinstance(valid, Exception):
            return {**record, "outcome": "obscure", "detail": f"the valid call fails: {valid!r}"[:300]}
        if case.arg is None:
            bad = _nonfinite(valid) and not spec.nan_ok
            return {**record, "outcome": "nan" if bad else "accepted", "detail": "valid call"}
        kind = spec.kinds[case.arg]
        mutation = _mutation(kind, case.label)
        kwargs = spec.make()
        original = kwargs[case.arg]
        kwargs[case.arg] = mutation.mutate(original)
        record["input"] = _short(kwargs[case.arg])
        name = spec.names.get(case.arg, case.arg)
        partners = tuple(spec.names.get(k, k) for k in kwargs if k not in (case.arg, "self"))
        return {**record, **self.judge(lambda: _call(spec, kwargs), name, case, spec, mutation, original,
                                       partners)}

    def judge(self, call, name, case, spec=None, mutation=None, original=None, partners=()) -> dict:
        start = time.perf_counter()
        try:
            result = call()
        except Exception as error:  # noqa: BLE001
            seconds = time.perf_counter() - start
            outcome, why = classify_error(error, name, case.label, case.klass, partners)
            detail = f"{type(error).__name__}: {error}"[:300] + f"  [at {_where(error)}]"
            if why:
                detail += f"  ({why})"
            if case.validity == VALID:
                outcome = "refused" if outcome == "clear" else outcome
            return dict(outcome=outcome, detail=detail, seconds=round(seconds, 3))
        seconds = time.perf_counter() - start
        nan_ok = spec.nan_ok if spec else False
        if case.validity == INVALID:
            if _nonfinite(result) and not nan_ok:
                return dict(outcome="nan", detail="returned NaN or inf", seconds=round(seconds, 3))
            return dict(outcome="silent", detail=f"returned {_short(result, 120)}", seconds=round(seconds, 3))
        # a valid (or either) input was accepted: is the answer right?
        reference = None
        if spec is not None and mutation is not None:
            if mutation.reference is None:
                reference = self.valid[case.spec]
            else:
                kwargs = spec.make()
                kwargs[case.arg] = mutation.reference(original)
                try:
                    reference = _call(spec, kwargs)
                except Exception as error:  # noqa: BLE001
                    return dict(outcome="accepted", seconds=round(seconds, 3),
                                detail=f"accepted; the plain values raise {type(error).__name__}")
            diff = _same(result, reference, mutation.rtol)
            if diff:
                return dict(outcome="silent", detail=f"a different answer than the plain values: {diff}",
                            seconds=round(seconds, 3))
        if _nonfinite(result) and not (nan_ok or (reference is not None and _nonfinite(reference))):
            return dict(outcome="nan", detail="returned NaN or inf", seconds=round(seconds, 3))
        return dict(outcome="accepted", detail="", seconds=round(seconds, 3))

    def run_example(self, case: Case) -> dict:
        label, call, name, validity = EXAMPLES[case.example]
        record = dict(id=case.id, spec="example", arg=name, label=label, klass=case.klass, validity=validity,
                      input=label)
        return {**record, **self.judge(call, name, case)}


def worker_main() -> None:
    """Read case indices from stdin, write one JSON line per message to the original stdout."""
    results = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    warnings.simplefilter("ignore")
    all_cases = cases()
    state = Worker()
    for line in sys.stdin:
        case = all_cases[int(line)]
        warm_error = state.warm(case.spec) if case.spec >= 0 else None
        results.write(json.dumps(dict(phase="ready", warm_error=warm_error)) + "\n")
        try:
            record = state.run(case)
        except Exception as error:  # noqa: BLE001 - a bug of this tool, reported as such
            record = dict(id=case.id, outcome="tool-error", detail=traceback.format_exc()[-600:],
                          error=repr(error))
        results.write(json.dumps(record, default=str) + "\n")


# ---------------------------------------------------------------------------------------------------
# The parent: one worker at a time, a timeout per case
# ---------------------------------------------------------------------------------------------------

class Runner:
    def __init__(self, timeout: float, warm_timeout: float, log: Path):
        self.timeout, self.warm_timeout, self.log = timeout, warm_timeout, log
        self.proc = None
        self.buffer = b""

    def start(self):
        env = {**os.environ, "THEORYLAB_PROGRESS": "0"}
        env.pop("THEORYLAB_CLAIMS_FILE", None)
        env.pop("TRITON_INTERPRET", None)
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(self.log, "ab"), cwd=ROOT, env=env)
        self.buffer = b""

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def _line(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return dict(phase="died")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, index: int, case: Case) -> dict:
        if self.proc is None:
            self.start()
        self.proc.stdin.write(f"{index}\n".encode())
        self.proc.stdin.flush()
        ready = self._line(self.warm_timeout)
        base = dict(id=case.id, spec=SPECS[case.spec].id if case.spec >= 0 else "example", arg=case.arg,
                    label=case.label, klass=case.klass, validity=case.validity)
        if ready is None or ready.get("phase") == "died":
            self.stop()
            if ready is None:
                return {**base, "outcome": "hang", "detail": "the valid call ran past the warm-up budget"}
            return {**base, "outcome": "obscure", "detail": "the worker process died (crash)"}
        record = self._line(self.timeout)
        if record is None:
            self.stop()
            return {**base, "outcome": "hang", "detail": f"ran past {self.timeout:g} s"}
        if record.get("phase") == "died":
            self.stop()
            return {**base, "outcome": "obscure", "detail": "the worker process died (crash)"}
        return record


def run_setting(label: str, env: dict, code: str, expect: str, timeout: float) -> dict:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("THEORYLAB_", "TRITON_"))}
    full_env.update(env)
    full_env["PYTHONWARNINGS"] = "always"
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return dict(id=f"setting:{label}", spec="setting", label=label, klass="setting", outcome="hang",
                    detail=f"ran past {timeout:g} s")
    out, err = proc.stdout.strip(), proc.stderr.strip()
    last = err.splitlines()[-1] if err else ""
    kind, _, rest = expect.partition(":")
    if kind == "error":
        etype, _, text = rest.partition(":")
        ok = proc.returncode != 0 and last.split(":")[0].endswith(etype) and text in last
    elif kind == "warns":
        ok = proc.returncode == 0 and rest in err
    else:
        ok = proc.returncode == 0 and out.splitlines()[-1:] == [rest] if out else False
    if ok:
        outcome = "clear" if kind != "ok" else "accepted"
    elif proc.returncode != 0:
        outcome = "obscure"
    else:
        outcome = "silent"
    detail = (last or out)[:300]
    return dict(id=f"setting:{label}", spec="setting", label=label, klass="setting (environment)",
                validity=INVALID if kind != "ok" else VALID, input=label, outcome=outcome,
                detail=f"expected {expect}; got rc={proc.returncode}: {detail}")


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------

def table(records: list[dict]) -> str:
    counts = Counter(r["outcome"] for r in records)
    bad = [r for r in records if r["validity"] != VALID]
    good = [r for r in records if r["validity"] == VALID]
    lines = [f"{len(records)} calls: {len(bad)} with a bad (or doubtful) input, {len(good)} with a valid one "
             "(the valid calls themselves, numpy scalars, documented edge cases).", "",
             "| result | count |", "|---|---|"]
    names = dict(clear="clear error from theorylab's own checks", obscure="obscure error (elsewhere, other "
                 "type, or not naming the argument)", silent="silent wrong answer", nan="NaN in, NaN out, "
                 "silently", hang="hang", accepted="valid input accepted, right answer",
                 refused="valid input refused")
    for outcome in OUTCOMES:
        lines.append(f"| {names[outcome]} | {counts.get(outcome, 0)} |")
    if counts.get("tool-error"):
        lines.append(f"| (tool error) | {counts['tool-error']} |")
    lines += ["", "By input class:", "", "| input class | " + " | ".join(OUTCOMES) + " |",
              "|---|" + "---|" * len(OUTCOMES)]
    by_class: dict[str, Counter] = {}
    for r in records:
        by_class.setdefault(r.get("klass", "?"), Counter())[r["outcome"]] += 1
    for klass, c in sorted(by_class.items()):
        lines.append(f"| {klass} | " + " | ".join(str(c.get(o, 0) or "") for o in OUTCOMES) + " |")
    return "\n".join(lines)


def details(records: list[dict]) -> str:
    lines = ["| case | input | outcome | what happened |", "|---|---|---|---|"]
    for r in records:
        if r["outcome"] in ("clear", "accepted"):
            continue
        detail = str(r.get("detail", "")).replace("|", "\\|").replace("\n", " ")
        given = str(r.get("input", "")).replace("|", "/")
        lines.append(f"| `{r['id']}` | {given} | {r['outcome']} | {detail} |")
    return "\n".join(lines)


def digest(only: str = "") -> int:
    """Print ``spec id, SHA-256`` of the bytes of every valid call's result (its arrays, in order)."""
    import hashlib
    warnings.simplefilter("ignore")
    os.environ["THEORYLAB_PROGRESS"] = "0"
    for spec in SPECS:
        if only not in spec.id:
            continue
        try:
            result = _call(spec, spec.make())
        except Exception as error:  # noqa: BLE001
            print(spec.id, f"error {type(error).__name__}: {error}"[:200])
            continue
        h = hashlib.sha256()
        for leaf in _flatten(result):
            h.update(np.ascontiguousarray(leaf).tobytes() if leaf.dtype != object else repr(leaf).encode())
        print(spec.id, h.hexdigest())
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/bad_inputs")
    parser.add_argument("--only", default="", help="run the cases whose id contains this text")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a call counts as a hang")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--no-settings", action="store_true", help="skip the environment settings")
    parser.add_argument("--digest", action="store_true",
                        help="print a SHA-256 of every valid call's result (to compare two versions bitwise)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    if args.digest:
        return digest(args.only)
    all_cases = cases()
    chosen = [(i, c) for i, c in enumerate(all_cases) if args.only in c.id]
    if args.list:
        for _, c in chosen:
            print(c.id, c.validity)
        print(f"{len(chosen)} cases")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(args.timeout, max(120.0, args.timeout), out / "worker.log")
    records = []
    start = time.monotonic()
    try:
        for n, (i, case) in enumerate(chosen):
            records.append(runner.run(i, case))
            if (n + 1) % 100 == 0:
                print(f"  {n + 1}/{len(chosen)} cases, {time.monotonic() - start:.0f} s", file=sys.stderr)
    finally:
        runner.stop()
    if not args.no_settings and not args.only:
        for label, env, code, expect in SETTINGS:
            records.append(run_setting(label, env, code, expect, max(60.0, args.timeout)))
    with open(out / "results.jsonl", "w") as fh:
        for r in records:
            fh.write(json.dumps(r, default=str) + "\n")
    text = table(records)
    rest = details(records)
    (out / "table.md").write_text(f"{text}\n\nEvery case that is not clear or accepted:\n\n{rest}\n")
    print(text)
    print(f"\n{time.monotonic() - start:.0f} s; details in {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
