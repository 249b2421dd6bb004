"""Chapter 5's calibration of LR's finite-size factor: the stored study is what the recipe computes, on seeds
the claims never use, and the factor is the pooled ratio it says it is."""

import math

import pytest
import torch

from theorylab.generative import lr_factor_study
from theorylab.generative.lr_factor_study import FactorStudy, stored_study, stream_errors


def test_stored_study_covers_the_calibration_seeds_only():
    study = stored_study()
    seeds, streams, sizes = study.errors.shape
    assert (seeds, streams, sizes) == (len(lr_factor_study.SEEDS), lr_factor_study.STREAMS,
                                       len(lr_factor_study.SIZES))
    assert min(lr_factor_study.SEEDS) >= 10                  # disjoint from the test seeds 0-9
    assert bool(torch.isfinite(study.errors).all())
    assert bool((study.errors > study.bayes).all())           # no classifier beats the Bayes error


def test_the_recipe_reproduces_the_stored_errors():
    """Calibration seed 10, recomputed, gives the stored exact errors (rounded to 1e-9 in the file)."""
    fresh = stream_errors(base=10)
    torch.testing.assert_close(fresh, stored_study().errors[0], rtol=0, atol=1e-7)


def test_factor_is_the_pooled_excess_ratio_and_its_standard_error():
    errors = torch.tensor([[[0.30, 0.20, 0.15, 0.12], [0.34, 0.22, 0.15, 0.12]]], dtype=torch.float64)
    study = FactorStudy(errors=errors, bayes=0.1, gamma=20.0)
    ratio = (torch.tensor([0.20, 0.22], dtype=torch.float64) - 0.1) * 256 / 20.0
    f, se = study.factor(256)
    assert math.isclose(f, ratio.mean().item(), rel_tol=1e-12)
    assert math.isclose(se, (ratio.std() / math.sqrt(2)).item(), rel_tol=1e-6)
    torch.testing.assert_close(study.factor_per_seed(256), ratio.mean().reshape(1))


def test_factor_rejects_sizes_off_the_study():
    with pytest.raises(ValueError, match="m must be one of SIZES"):
        stored_study().factor(300)
