"""Chapter 1's κ₊ calibration: the pooling, the recipe guard, and the same layers as the chapter."""

import pytest
import torch
from scipy import stats

from theorylab import icl, icl_calibration
from theorylab.icl_calibration import ScaleRun, check_recipe, pooled_kappa, scale_run
from theorylab.seeding import seed


def test_pooled_kappa_units_and_bound():
    # d = 2, r̂ = 0.2 in every run: the evenly-spread unit is (0.2/2)² = 0.01, so t = ±0.1 gives κ̂ = 1
    runs = [ScaleRun(10, 2, 1.0, s, (0.1, -0.1), 0.2) for s in range(5)]
    kappa, kappa_up, count = pooled_kappa(runs)
    assert count == 10
    assert kappa == pytest.approx(1.0)
    assert kappa_up == pytest.approx(10 / stats.chi2.ppf(0.05, 10))
    # each setting is normalised by its own scatter: a second setting with 3× the scatter and 3× the t
    other = [ScaleRun(20, 4, 1.0, s, (0.15, 0.15), 0.2) for s in range(5)]   # unit (0.2/4)² → t²/unit = 9
    assert pooled_kappa(runs + other)[0] == pytest.approx((10 * 1 + 10 * 9) / 20)


def test_pooled_kappa_recovers_a_known_kappa():
    gen = torch.Generator().manual_seed(0)
    d, r, kappa = 5, 0.01, 2.5
    t = torch.randn(4000, 2, generator=gen, dtype=torch.float64) * (kappa**0.5 * r / d)
    runs = [ScaleRun(20, d, 1.5, s, tuple(row.tolist()), r) for s, row in enumerate(t)]
    measured, upper, count = pooled_kappa(runs)
    se = kappa * (2 / count) ** 0.5            # s.e. of a mean of χ²₁-scaled squares
    assert abs(measured - kappa) < 4 * se and measured < upper


def test_pooled_kappa_rejects_bad_input():
    with pytest.raises(ValueError, match="runs must hold"):
        pooled_kappa([])
    with pytest.raises(ValueError, match="level"):
        pooled_kappa([ScaleRun(10, 2, 1.0, 0, (0.1, 0.1), 0.2)], level=1.0)


def test_check_recipe_guards_the_calibrated_recipe():
    check_recipe([list(s) for s in icl_calibration.SETTINGS], dict(icl_calibration.TRAIN))
    with pytest.raises(ValueError, match="measure it again"):
        check_recipe(icl_calibration.SETTINGS, {**icl_calibration.TRAIN, "steps": 600})
    with pytest.raises(ValueError, match="measure it again"):
        check_recipe(icl_calibration.SETTINGS[:2], icl_calibration.TRAIN)


def test_calibration_seeds_are_disjoint_from_the_test_seeds():
    assert min(icl_calibration.SEEDS) >= 10


def test_scale_run_trains_the_chapters_layers(monkeypatch):
    """At base seed s, scale_run draws the streams the chapter draws when THEORYLAB_SEED = s."""
    n, d, sigma, train = 6, 2, 0.5, dict(steps=3, batch=8)
    run = scale_run(n, d, sigma, base_seed=3, train=train)
    monkeypatch.setenv("THEORYLAB_SEED", "3")
    tag = f"[n={n},d={d},sigma={sigma:g}]"
    layers = [icl.train_lsa(n, d, sigma, **train, seed=seed(f"{name}{tag}"), progress=False)
              for name in ("icl-train", "icl-train-replica")]
    eta = icl.optimal_step_size(n, d, sigma)
    G = [layer.preconditioner().double() for layer in layers]
    assert run.t == tuple(torch.trace(g).item() / (d * eta) - 1 for g in G)
    assert run.r == pytest.approx((G[0] - G[1]).norm().item() / (2**0.5 * eta * d**0.5), rel=1e-12)
    with pytest.raises(ValueError, match="base_seed"):
        scale_run(n, d, sigma, base_seed=-1, train=train)


def test_stall_study_flags_a_stalled_start_and_not_a_good_one():
    """Two of the study's starts at one learning rate: 1000 stalls, 1002 does not (the full study,
    `python -m theorylab.icl_calibration --stalls --check`, runs them all)."""
    assert icl_calibration.stalled_starts(0.02, seeds=(1000, 1002)) == (1000,)
    assert 1000 in icl_calibration.STALLED and 1002 not in icl_calibration.STALLED


def test_check_recipe_guards_the_trainers_defaults(monkeypatch):
    changed = {**icl_calibration.TRAINER_DEFAULTS, "training.train": {
        **icl_calibration.TRAINER_DEFAULTS["training.train"], "schedule": "constant"}}
    monkeypatch.setattr(icl_calibration, "TRAINER_DEFAULTS", changed)
    with pytest.raises(ValueError, match="trainer's defaults"):
        check_recipe(icl_calibration.SETTINGS, icl_calibration.TRAIN)


def test_the_chapter_trains_with_the_calibrated_stream_names():
    """scale_run draws the streams `icl-train{tag}` and `icl-train-replica{tag}`: so must the chapter."""
    from pathlib import Path

    chapter = (Path(__file__).resolve().parents[1] / "book" / "01-icl-one-step-gd.md").read_text()
    for call in ('seed=seed(f"icl-train{tag}")', 'seed=seed(f"icl-train-replica{tag}")',
                 "icl_calibration.check_recipe(SETTINGS, TRAIN)"):
        assert call in chapter, call
