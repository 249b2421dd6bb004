"""The table behind chapter 5's Explore panel: computed by :func:`explore_table`, shipped as a data file."""

from __future__ import annotations

import json
import math

import torch

from ..utils.threads import single_threaded
from ..utils.validation import check_int, check_integers, check_real, check_tensor
from ._checks import DTYPE, _warn_unconverged
from .curves import (
    nb_prefix_fits,
    random_orders,
    test_errors,
)
from .estimators import (
    _fit_logistic,
)
from .mixture import mixture

EXPLORE_GRID = dict(ns=(8, 16, 32, 64), n_classes=(2, 3, 4), correlations=(0.0, 0.1, 0.2, 0.3),
                    sizes=(6, 12, 24, 48, 96, 192, 384), streams=8, n_test=2000)


@single_threaded()
def explore_table(ns=EXPLORE_GRID["ns"], n_classes=EXPLORE_GRID["n_classes"],
                  correlations=EXPLORE_GRID["correlations"], *, sizes=EXPLORE_GRID["sizes"],
                  streams: int = EXPLORE_GRID["streams"], n_test: int = EXPLORE_GRID["n_test"],
                  seed: int | None = None) -> dict:
    """Learning curves of NB and LR (``C = 1``) on ``mixture(n, n_classes=K, correlation=ρ)`` for every
    ``(n, K, ρ)``: the table behind the chapter's Explore panel.

    For each ``(n, K, ρ)``: a pool of ``streams`` disjoint sample streams plus ``n_test`` test samples; the
    sizes ``m`` in ``sizes`` with ``2K ≤ m ≤ 12 n``. The samples come from the named stream
    ``generative-explore-sample[n=…,K=…,rho=…]`` and the orders from ``generative-explore-orders[…]`` of
    ``THEORYLAB_SEED`` (or, when ``seed`` is given, from ``seed`` and ``seed + 1`` for every setting).
    NB comes from :func:`nb_prefix_fits`; for each ``(n, K)`` the logistic regressions of all correlations ×
    streams × sizes are **one** batched L-BFGS problem, the training sets padded to the largest with zero
    sample weights. Returns ``{(n, K, ρ): {"m": [G], "nb": [G], "lr": [G], "nb_se": [G], "lr_se": [G],
    "nb_limit": float, "bayes": float}}``: mean test errors over the streams and their standard errors
    over the streams (training-set variation; the test set is shared by the streams and its own noise,
    about ``√(ε(1 − ε)/n_test)``, is common to them), Python floats. The chapter ships the result at
    ``THEORYLAB_SEED = 0`` (:func:`stored_explore_table`); the full table takes a minute or two on one core.
    """
    from ..seeding import seed as named_stream
    streams = check_int("streams", streams, low=2)
    n_test = check_int("n_test", n_test, low=1)
    # every grid as a list of Python numbers (they name the table's keys and streams)
    ns = check_integers("ns", ns, ndim=1, low=1).tolist()
    n_classes = check_integers("n_classes", n_classes, ndim=1, low=2).tolist()
    sizes = check_integers("sizes", sizes, ndim=1, low=1).tolist()
    correlations = [check_real("correlations", rho, low=0, high=1, high_open=True)
                    for rho in check_tensor("correlations", correlations, ndim=1, dtype=DTYPE).tolist()]
    if seed is not None:
        seed = check_int("seed", seed, low=0)
    for K in n_classes:
        for n in ns:
            if not any(2 * K <= m <= 12 * n for m in sizes):
                raise ValueError(f"sizes must hold a size m with 2K ≤ m ≤ 12n for every (n, K), none for "
                                 f"n = {n}, K = {K}: got {sizes}")
    table = {}
    for K in n_classes:
        for n in ns:
            grid = [m for m in sizes if 2 * K <= m <= 12 * n]
            length = grid[-1]
            cases, problems = [], []
            for rho in correlations:
                mix = mixture(n, n_classes=K, correlation=rho)
                name = f"n={n},K={K},rho={rho}"
                sample_seed = named_stream(f"generative-explore-sample[{name}]") if seed is None else seed
                order_seed = named_stream(f"generative-explore-orders[{name}]") if seed is None else seed + 1
                X, y = mix.sample(streams * length + n_test, seed=sample_seed)
                pool, labels = X[:-n_test], y[:-n_test]
                orders = random_orders(labels, streams, length=length, disjoint=True, seed=order_seed)
                cases.append((rho, mix, X[-n_test:], y[-n_test:], nb_prefix_fits(pool, labels, orders, grid)))
                problems += [(pool[orders[s, :m]], labels[orders[s, :m]])
                             for s in range(streams) for m in grid]
            X_all = torch.zeros(len(problems), length, n, dtype=DTYPE)
            y_all = torch.zeros(len(problems), length, dtype=torch.int64)
            weight = torch.zeros(len(problems), length, dtype=DTYPE)
            for p, (Xp, yp) in enumerate(problems):          # pad every training set to `length` rows
                X_all[p, : len(yp)], y_all[p, : len(yp)], weight[p, : len(yp)] = Xp, yp, 1.0
            W_lr, b_lr, _, converged = _fit_logistic(X_all, y_all, K, C=1.0, sample_weight=weight, init=None,
                                                     max_iter=1000, tol=1e-7)
            _warn_unconverged(converged, f"explore_table (n = {n}, K = {K})", 1000, 1e-7)
            W_lr = W_lr.view(len(correlations), streams, len(grid), K, n)
            b_lr = b_lr.view(len(correlations), streams, len(grid), K)
            for i, (rho, mix, X_test, y_test, (W_nb, b_nb)) in enumerate(cases):
                limits = mix.asymptotic_errors()
                err_nb = test_errors(W_nb, b_nb, X_test, y_test)
                err_lr = test_errors(W_lr[i], b_lr[i], X_test, y_test)
                table[n, K, rho] = dict(
                    m=list(grid), nb=err_nb.mean(0).tolist(), lr=err_lr.mean(0).tolist(),
                    nb_se=(err_nb.std(0) / math.sqrt(streams)).tolist(),
                    lr_se=(err_lr.std(0) / math.sqrt(streams)).tolist(),
                    nb_limit=limits.nb, bayes=limits.bayes)
    return table


EXPLORE_TABLE_FILE = "data/generative_explore_table.json"   # inside the package


def stored_explore_table() -> dict:
    """:func:`explore_table` with its default arguments, as computed once and shipped with the package
    (``theorylab/data/generative_explore_table.json``, read with ``importlib.resources``; a test
    recomputes part of it): ``{(n, K, ρ): row}``."""
    from importlib.resources import files
    rows = json.loads(files("theorylab").joinpath(EXPLORE_TABLE_FILE).read_text())["rows"]
    return {(row["n"], row["K"], row["rho"]): {k: v for k, v in row.items() if k not in ("n", "K", "rho")}
            for row in rows}


def write_explore_table(path=None) -> None:
    """Recompute :func:`explore_table` (at ``THEORYLAB_SEED = 0``, a minute or two) and write the file
    :func:`stored_explore_table` reads (``path`` defaults to it)::

        python -c "from theorylab import generative; generative.write_explore_table()"
    """
    import os
    import pathlib
    if os.environ.get("THEORYLAB_SEED", "0").strip() not in ("", "0"):
        raise RuntimeError("write_explore_table stores the table of THEORYLAB_SEED = 0; unset THEORYLAB_SEED")
    path = pathlib.Path(path or pathlib.Path(__file__).parent.parent / EXPLORE_TABLE_FILE)   # theorylab/data
    rows = [{"n": n, "K": K, "rho": rho,
             **{k: ([round(x, 6) for x in v] if k in ("nb", "lr", "nb_se", "lr_se") else
                    round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}}
            for (n, K, rho), row in explore_table().items()]
    about = ("chapter 5's Explore table: theorylab.generative.explore_table() with its default arguments at "
             "THEORYLAB_SEED = 0, rounded to 6 decimals. Regenerate with "
             "`python -c \"from theorylab import generative; generative.write_explore_table()\"`; "
             "do not edit.")
    path.write_text(json.dumps({"about": about, "rows": rows}, indent=1) + "\n")
