"""``prefix_class_stats`` beyond the kernel's largest class count (the rest of its kernel-vs-reference
tests are in tests/test_generative.py, beside the learning curves that use it)."""

import pytest
import torch

pytestmark = pytest.mark.kernel


def test_prefix_class_stats_beyond_the_largest_class_count_runs_the_reference():
    from theorylab.kernels import prefix_class_stats, prefix_class_stats_reference
    from theorylab.kernels.prefix_class_stats import MAX_TRITON_CLASSES

    classes = MAX_TRITON_CLASSES + 1
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2 * classes, 3, generator=gen)
    y = torch.arange(2 * classes) % classes
    order = torch.randperm(2 * classes, generator=gen)[None]
    ends = torch.tensor([classes, 2 * classes])
    got = prefix_class_stats(X, y, order, ends, classes, backend="auto")
    for a, b in zip(got, prefix_class_stats_reference(X, y, order, ends, classes), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=f"n_classes ≤ {MAX_TRITON_CLASSES}"):
        prefix_class_stats(X, y, order, ends, classes, backend="triton")
