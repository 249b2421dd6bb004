"""Triton kernels for theorylab, installed as ``theorylab.kernels``.

One file per operation, each holding

* ``_<op>_kernel``: the ``@triton.jit`` kernel;
* ``<op>(...)``: the public launcher, which validates its inputs and runs the Triton kernel for CUDA
  tensors (or on the CPU when Triton's interpreter is on, ``TRITON_INTERPRET=1``) and the torch
  reference otherwise;
* ``<op>_reference(...)``: the same quantity in plain torch, written independently of the kernel.

``TRITON_INTERPRET`` must be set before this package is imported: ``@triton.jit`` reads it when the
kernels are defined.
"""

from .batch_sgd_grid import sgd_log_norms, sgd_log_norms_reference
from .classifier_stats import classifier_stats, classifier_stats_reference
from .collapse_directions import collapse_directions, collapse_directions_reference
from .dispatch import interpreter_on, use_triton
from .feature_dynamics import feature_half_times, feature_half_times_reference
from .lsa_moments import lsa_moments, lsa_moments_reference
from .ordered_lowrank import ordered_lowrank, ordered_lowrank_reference
from .prefix_class_stats import prefix_class_stats, prefix_class_stats_reference
from .relu_gauss_newton import (
    relu_gn_matvec,
    relu_gn_matvec_reference,
    relu_gn_sq_norms,
    relu_gn_sq_norms_reference,
)

__all__ = [
    "interpreter_on", "use_triton",
    "sgd_log_norms", "sgd_log_norms_reference",
    "classifier_stats", "classifier_stats_reference",
    "collapse_directions", "collapse_directions_reference",
    "feature_half_times", "feature_half_times_reference",
    "lsa_moments", "lsa_moments_reference",
    "ordered_lowrank", "ordered_lowrank_reference",
    "prefix_class_stats", "prefix_class_stats_reference",
    "relu_gn_sq_norms", "relu_gn_sq_norms_reference", "relu_gn_matvec", "relu_gn_matvec_reference",
]
