"""The calibration of chapter 3's path-dips claim: how often θ dips along a path, measured on seeds the
claims are not tested at.

The angle θ between the SVM and the nearest-centroid classifier need not grow monotonically as the
regularisation weakens. Chapter 3 states this as a frequency: over ``K`` further splits of the digits,
θ decreases between two neighbouring levels of the 2 vs 5 path by more than ``4r`` (``r`` the solver's
resolution, :func:`theorylab.tilting.angle_dips`) in at least one. The threshold "at least one of K" needs
the rate of such dips per split; this module measures it the way the chapter draws its splits, at
seeds the claims are never re-run at (10–19; the claims use 0–9), and gives a low value of the rate,
three standard errors below the measured one::

    python -m theorylab.tilting_calibration            # ~4 min on 2 cores: the counts per seed and the rate
    python -m theorylab.tilting_calibration --check    # … and exit 1 if the counts differ from DIPPED

The chapter draws its splits through :func:`dip_path` (same stream names, levels and pair as here), so a
changed recipe is a changed calibration; it asserts ``(1 − RATE_LOW)^K < 0.01/N_claims``.
"""

from __future__ import annotations

import argparse
import math
import sys

from . import tilting as tl
from .seeding import seed
from .utils.validation import check_int

__all__ = ["PAIR", "OTHER_PAIR", "LEVELS", "SPLITS", "SEEDS", "DIPPED", "DIPPED_OTHER", "TOTAL", "RATE",
           "RATE_SE", "RATE_LOW", "dip_path", "dipped_splits", "rate_floor", "main"]

PAIR = (2, 5)              # the pair the claim is about
OTHER_PAIR = (3, 7)        # measured for comparison (it dips less often)
LEVELS = 80                # levels of C from C₀ to 10⁵C₀ on each path
SPLITS = 20                # splits per calibration seed (the chapter's first 20 streams)
SEEDS = range(10, 20)      # calibration seeds, disjoint from the test seeds 0–9
DIPPED = 83                # `python -m theorylab.tilting_calibration`: 2 vs 5 splits with a dip, of TOTAL
DIPPED_OTHER = 38          # … and 3 vs 7 splits with a dip
TOTAL = SPLITS * len(SEEDS)


def rate_floor(dipped: int, total: int, *, sigmas: float = 3.0) -> tuple[float, float, float]:
    """``(rate, se, low)``: the measured rate ``dipped/total``, its binomial standard error and the low
    value ``rate − sigmas·se`` rounded down to 0.01."""
    total = check_int("total", total, low=1)
    dipped = check_int("dipped", dipped, low=0, high=total)
    rate = dipped / total
    se = math.sqrt(rate * (1 - rate) / total)
    return rate, se, math.floor((rate - sigmas * se) * 100) / 100


RATE, RATE_SE, RATE_LOW = rate_floor(DIPPED, TOTAL)


def dip_path(k: int, pair=PAIR, *, base: int | None = None) -> tl.AngleDips:
    """:func:`theorylab.tilting.angle_dips` of ``pair`` on split ``k`` (stream ``tilting-dip-split[k]``) of
    the chapter run at ``THEORYLAB_SEED = base`` (``None``: the current one), on :data:`LEVELS` levels."""
    k = check_int("k", k, low=0)
    X, classes, _, _ = tl.digits_split(seed=seed(f"tilting-dip-split[{k}]", base=base))
    return tl.angle_dips(*tl.digit_pair(X, classes, *pair), levels=LEVELS)


def dipped_splits(base: int, pair=PAIR, *, splits: int | None = None) -> list[bool]:
    """Per split ``k < splits`` (default :data:`SPLITS`) of seed ``base``: whether θ decreased by more than
    ``4r`` on ``pair``."""
    base = check_int("base", base, low=0)
    splits = check_int("splits", SPLITS if splits is None else splits, low=1)
    return [dip_path(k, pair, base=base).dip_ratio > 1 for k in range(splits)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.tilting_calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the counts differ from DIPPED and DIPPED_OTHER")
    args = parser.parse_args(argv)
    counts = {PAIR: 0, OTHER_PAIR: 0}
    for base in SEEDS:
        row = {pair: sum(dipped_splits(base, pair)) for pair in counts}
        for pair, n in row.items():
            counts[pair] += n
        said = (f"{a} vs {b} dipped in {n} of {SPLITS}" for (a, b), n in row.items())
        print(f"seed {base}: " + ", ".join(said), flush=True)
    rate, se, low = rate_floor(counts[PAIR], TOTAL)
    print(f"{PAIR[0]} vs {PAIR[1]}: {counts[PAIR]} of {TOTAL} (rate {rate:.3f}, s.e. {se:.3f}, "
          f"low {low:.2f}); "
          f"{OTHER_PAIR[0]} vs {OTHER_PAIR[1]}: {counts[OTHER_PAIR]} (DIPPED = {DIPPED}, "
          f"DIPPED_OTHER = {DIPPED_OTHER})")
    if args.check and (counts[PAIR], counts[OTHER_PAIR]) != (DIPPED, DIPPED_OTHER):
        print(f"the counts changed: set DIPPED = {counts[PAIR]}, DIPPED_OTHER = {counts[OTHER_PAIR]} in "
              "theorylab/tilting_calibration.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
