"""Generative vs discriminative linear classifiers (chapter 5): Gaussian naive Bayes and logistic regression.

Notation and shapes: ``m`` training samples, ``n`` features, ``K`` classes; ``X`` [m, n] features (float64),
``y`` [m] integer labels in ``0 .. K − 1``. Both classifiers are linear-softmax,
``p(y = k | x) = softmax(W x + b)_k`` with ``W`` [K, n] and ``b`` [K]:

* :class:`GaussianNaiveBayes` fits the generative model ``x | y = k ~ N(μ_k, diag(σ²))`` (one variance per
  feature, shared by the classes) by maximum likelihood and reads ``W`` and ``b`` off it;
* :class:`LogisticRegression` fits ``W`` and ``b`` directly: multinomial, L2-penalised, minimising
  ``C Σ_i CE_i + ½‖W‖_F²`` (scikit-learn's objective; the intercept is not penalised).

Data: :func:`gaussian_mixture` samples the Gaussian mixtures of the chapter, :class:`Mixture` holds one and
computes exact errors of linear classifiers under it (Bayes, NB's and LR's asymptotic errors).
Learning curves: :func:`random_orders`, :func:`nb_prefix_fits` (every prefix of an order in one pass
through :func:`theorylab.kernels.prefix_class_stats`), :func:`lr_prefix_fits` (the logistic regressions
of all orders at one size as one batched L-BFGS problem, size after size with warm starts),
:func:`test_errors`; :func:`samples_to_reach` finds the training-set size a learner needs;
:func:`nb_error_prediction` is naive Bayes's learning curve in closed form (valid from
:func:`nb_prediction_start` on) and :func:`nb_error_simulation` a Monte Carlo of it;
:func:`lr_error_coefficient` is LR's asymptotic excess 0–1 error and :func:`logistic_calibration_inverse`
the bound of 0–1 excess by logistic excess; :func:`explore_table` / :func:`stored_explore_table` hold the
chapter's Explore panel. Errors are fractions in [0, 1].

The package's modules, one idea each: :mod:`~theorylab.generative.estimators` (the two classifiers and
the batched logistic fits), :mod:`~theorylab.generative.mixture` (the data and exact errors),
:mod:`~theorylab.generative.theory` (learning curves in closed form), :mod:`~theorylab.generative.curves`
(learning curves measured), :mod:`~theorylab.generative.samples` (samples needed),
:mod:`~theorylab.generative.explore` (the Explore table) and :mod:`~theorylab.generative.digits`
(pretrained digit features). Every public name is importable from ``theorylab.generative`` itself.
"""

from ._checks import DTYPE, EPS
from .curves import (
    LearningCurves,
    learning_curves,
    lr_prefix_fits,
    nb_prefix_fits,
    random_orders,
    test_errors,
)
from .digits import DigitFeatures, pretrained_digit_features
from .estimators import (
    GaussianNaiveBayes,
    LogisticRegression,
    fit_logistic_many,
    gaussian_posterior,
    nb_parameters,
)
from .explore import (
    EXPLORE_GRID,
    EXPLORE_TABLE_FILE,
    explore_table,
    stored_explore_table,
    write_explore_table,
)
from .mixture import AsymptoticErrors, Mixture, gaussian_mixture, mixture
from .samples import samples_to_reach
from .theory import (
    LRErrorCoefficient,
    bootstrap_crossings,
    first_crossing,
    logistic_calibration_inverse,
    lr_error_coefficient,
    nb_error_prediction,
    nb_error_simulation,
    nb_prediction_start,
)

__all__ = [
    "GaussianNaiveBayes", "LogisticRegression", "Mixture", "mixture", "gaussian_mixture",
    "gaussian_posterior", "nb_parameters", "fit_logistic_many", "random_orders", "nb_prefix_fits",
    "lr_prefix_fits", "test_errors", "learning_curves", "samples_to_reach", "nb_error_prediction",
    "nb_error_simulation", "nb_prediction_start", "lr_error_coefficient", "logistic_calibration_inverse",
    "first_crossing", "bootstrap_crossings", "explore_table", "stored_explore_table", "write_explore_table",
    "pretrained_digit_features", "DTYPE", "EPS", "EXPLORE_GRID", "EXPLORE_TABLE_FILE",
    # result types
    "AsymptoticErrors", "LearningCurves", "LRErrorCoefficient", "DigitFeatures",
]
