"""Chapter 5's crossover: LR's finite-size factor near it, calibrated on seeds the claims never use.

The chapter predicts where logistic regression's error, ``ε_Bayes + γ/m`` (``γ = tr(H₀₁ I⁻¹)/2``, see
:func:`lr_error_coefficient`), meets naive Bayes's predicted curve on the misspecified mixture. ``γ/m`` is the
first term of an expansion in ``P/m`` (``P = n + 1`` parameters); at the crossover, ``m ≈ 256..512`` with
``P = 101``, the next term is not small, and it has not been derived. Its size is the *finite-size factor*

    f(m) = (E ε_LR(m) − ε_Bayes) · m / γ ,

a property of the design and of LR's recipe (``C = 1``), not of one run. It is measured here with the
chapter's exact recipe — the sample, the disjoint orders and the warm-started prefix fits of
:func:`lr_prefix_fits` — at the calibration seeds 10–19 (the claims are tested at 0–9), ``STREAMS`` streams
each, and stored in ``theorylab/data/generative_lr_factor.json`` (exact test errors per stream and size),
read with :func:`stored_study`::

    python -m theorylab.generative.lr_factor_study          # ~1 min on 2 cores: the study, into the file
    python -m theorylab.generative.lr_factor_study --check  # … recomputed, compared with the file (exit 1)

The chapter uses the factor only to size the model allowance of its crossover check (how far the next term
moves the factor-1 prediction); its prediction itself stays at factor 1, nothing fitted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

import torch

from ..seeding import seed as named_seed
from .curves import lr_prefix_fits, random_orders
from .mixture import mixture
from .theory import lr_error_coefficient

__all__ = ["FEATURES", "CORRELATION", "MEAN_SCALE", "POOL_STREAMS", "POOL_LENGTH", "STREAMS", "C", "SIZES",
           "SEEDS", "STUDY_FILE", "FactorStudy", "design", "stream_errors", "stored_study", "write_study",
           "main"]

FEATURES, CORRELATION, MEAN_SCALE = 100, 0.05, 0.15   # chapter 5's misspecified mixture
POOL_STREAMS, POOL_LENGTH = 64, 4096                  # the chapter's sample: 64 disjoint orders of 4096
STREAMS = 32                                          # LR is fitted on the first 32 orders
C = 1.0                                               # LR's inverse penalty (scikit-learn's convention)
SIZES = (128, 256, 512, 1024)                         # around the crossover (its bracket is 256..512)
SEEDS = range(10, 20)                                 # calibration seeds, disjoint from the test seeds 0–9
STUDY_FILE = "data/generative_lr_factor.json"         # inside the package


def design():
    """The chapter's misspecified mixture (``n = 100`` equicorrelated features, ``ρ = 0.05``)."""
    return mixture(FEATURES, correlation=CORRELATION, mean_scale=MEAN_SCALE)


def stream_errors(base: int | None = None) -> torch.Tensor:
    """Exact test errors [STREAMS, len(SIZES)] of LR fitted on the first ``m`` samples of each of the first
    ``STREAMS`` orders, drawn as chapter 5 draws them at ``THEORYLAB_SEED = base`` (named streams
    ``generative-misspec-sample`` and ``generative-misspec-orders``). Raises ``RuntimeError`` if a fit did
    not converge."""
    mis = design()
    X, y = mis.sample(POOL_STREAMS * POOL_LENGTH, seed=named_seed("generative-misspec-sample", base=base))
    orders = random_orders(y, POOL_STREAMS, length=POOL_LENGTH, disjoint=True,
                           seed=named_seed("generative-misspec-orders", base=base))
    W, b, converged = lr_prefix_fits(X, y, orders[:STREAMS], list(SIZES), C=C, return_converged=True)
    if not bool(converged.all()):
        raise RuntimeError(f"{int((~converged).sum())} of {converged.numel()} logistic regressions stopped "
                           "before their gradient reached tol")
    return mis.error(W, b)


@dataclass(frozen=True)
class FactorStudy:
    """The stored calibration of LR's finite-size factor.

    ``errors``: [len(SEEDS), STREAMS, len(SIZES)] exact test errors of LR (fractions); ``bayes``: the Bayes
    error; ``gamma``: ``γ = tr(H₀₁ I⁻¹)/2`` of the design.
    """

    errors: torch.Tensor
    bayes: float
    gamma: float

    def factor(self, m: int) -> tuple[float, float]:
        """``f(m) = (mean error − ε_Bayes)·m/γ`` pooled over every stream of every seed, and its standard
        error (streams are independent within and across seeds)."""
        if m not in SIZES:
            raise ValueError(f"m must be one of SIZES = {SIZES}, got {m!r}")
        ratio = (self.errors[:, :, SIZES.index(m)].flatten() - self.bayes) * m / self.gamma
        return ratio.mean().item(), (ratio.std() / math.sqrt(ratio.numel())).item()

    def factor_per_seed(self, m: int) -> torch.Tensor:
        """The factor at ``m`` as one chapter run at each calibration seed would measure it: [len(SEEDS)]."""
        if m not in SIZES:
            raise ValueError(f"m must be one of SIZES = {SIZES}, got {m!r}")
        return (self.errors[:, :, SIZES.index(m)].mean(1) - self.bayes) * m / self.gamma


def _study() -> dict:
    rows = []
    for base in SEEDS:
        errors = stream_errors(base)
        rows.append({"seed": base, "errors": [[round(e, 9) for e in row] for row in errors.tolist()]})
        print(f"seed {base}: mean LR error at m = {SIZES}: {errors.mean(0).numpy().round(4)}", flush=True)
    return {"sizes": list(SIZES), "rows": rows}


def _to_study(data: dict) -> FactorStudy:
    mis = design()
    if tuple(data["sizes"]) != SIZES or [row["seed"] for row in data["rows"]] != list(SEEDS):
        raise ValueError("the stored LR-factor study does not match SIZES/SEEDS: regenerate it with "
                         "`python -m theorylab.generative.lr_factor_study`")
    errors = torch.tensor([row["errors"] for row in data["rows"]], dtype=torch.float64)
    return FactorStudy(errors=errors, bayes=float(mis.asymptotic_errors().bayes),
                       gamma=lr_error_coefficient(mis).coefficient)


def stored_study() -> FactorStudy:
    """The stored calibration study (errors rounded to 1e-9), as a :class:`FactorStudy`."""
    from importlib.resources import files
    return _to_study(json.loads(files("theorylab").joinpath(STUDY_FILE).read_text()))


def write_study(path=None) -> None:
    """Run the study (seeds ``SEEDS``) and write the file :func:`stored_study` reads (``path`` defaults to
    it)."""
    import pathlib
    path = pathlib.Path(path or pathlib.Path(__file__).parent.parent / STUDY_FILE)   # theorylab/data
    about = ("chapter 5's calibration of LR's finite-size factor: lr_factor_study.stream_errors(base=s) for "
             "s in 10..19, exact test errors of LR (C = 1) on the misspecified mixture, first 32 streams, at "
             "m = 128, 256, 512, 1024. Regenerate with `python -m theorylab.generative.lr_factor_study`; "
             "do not edit.")
    path.write_text(json.dumps({"about": about, **_study()}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.generative.lr_factor_study",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="recompute the study and compare it with the stored file instead of writing it")
    args = parser.parse_args(argv)
    if not args.check:
        write_study()
        study = stored_study()
        for m in SIZES:
            f, se = study.factor(m)
            print(f"f({m}) = {f:.4f} ± {se:.4f}; per seed {study.factor_per_seed(m).numpy().round(3)}")
        return 0
    stored = stored_study().errors
    fresh = torch.tensor([row["errors"] for row in _study()["rows"]], dtype=torch.float64)
    worst = (fresh - stored).abs().max().item()
    print(f"largest difference from the stored errors: {worst:.2e}")
    return 0 if worst <= 1e-7 else 1


if __name__ == "__main__":
    sys.exit(main())
