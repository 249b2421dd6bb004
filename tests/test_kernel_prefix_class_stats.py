"""``prefix_class_stats`` (chapter 5's per-class means and variances of every prefix of random orders of
a sample pool, for the learning curves) against its torch reference: prefixes inside and across tiles,
many and missing classes, float64 input, data far from zero; and beyond the kernel's largest class
count."""

import pytest
import torch
from kernel_helpers import DEVICE, assert_close_to_reference, prefix_class_stats_inputs

from theorylab.kernels import prefix_class_stats, prefix_class_stats_reference

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("M, n, K, S, L, ends, dtype", [
    (53, 37, 3, 2, 45, [1, 2, 7, 16, 17, 33, 45], torch.float32),   # prefixes inside and across tiles of 16
    (40, 1, 2, 1, 40, [40], torch.float32),                          # one feature, one prefix, the whole pool
    (70, 65, 5, 3, 64, [5, 31, 32, 33, 64], torch.float32),          # features spanning three blocks of 32
    (33, 8, 10, 2, 33, [3, 20, 33], torch.float32),                  # classes missing from early prefixes
    (25, 5, 1, 1, 25, [1, 25], torch.float32),                       # one class
    (61, 37, 3, 2, 50, [4, 17, 33], torch.float64),                  # float64 X (the GPU path's input)
    (90, 9, 10, 2, 89, [10, 30, 60], torch.float32),                 # orders longer than the last prefix
    (120, 19, 20, 2, 100, [20, 47, 100], torch.float32),             # 20 classes: BLOCK_K 32, BLOCK_N 16
    (150, 11, 40, 1, 150, [40, 150], torch.float32),                 # 40 classes: BLOCK_K 64, BLOCK_N 8
])
def test_prefix_class_stats_matches_reference(M, n, K, S, L, ends, dtype):
    X, y, order = prefix_class_stats_inputs(M, n, K, S, L, seed=M)
    X = X.to(dtype)
    ends = torch.tensor(ends, device=DEVICE)
    counts, means, variances = prefix_class_stats(X, y, order, ends, K, backend="triton")
    c_ref, m_ref, v_ref = prefix_class_stats_reference(X.double(), y, order, ends, K)
    assert counts.dtype == torch.int64 and torch.equal(counts, c_ref)
    assert means.shape == variances.shape == (S, len(ends), K, n)
    assert_close_to_reference(means.double(), m_ref, rtol=1e-5, atol=1e-5, what="prefix_class_stats: means")
    assert_close_to_reference(variances.double(), v_ref, rtol=1e-5, atol=1e-5,
                              what="prefix_class_stats: variances")


def test_prefix_class_stats_is_accurate_far_from_zero():
    # data with mean 1000 and spread 2: raw sums of squares would lose the variance in float32
    X, y, order = prefix_class_stats_inputs(61, 7, 3, 2, 61, seed=3, offset=1000.0)
    ends = torch.tensor([9, 30, 61], device=DEVICE)
    _, _, variances = prefix_class_stats(X, y, order, ends, 3, backend="triton")
    _, _, v_ref = prefix_class_stats_reference(X.double(), y, order, ends, 3)
    assert_close_to_reference(variances.double(), v_ref, rtol=1e-3, atol=1e-3,
                              what="prefix_class_stats: variances far from zero")


def test_prefix_class_stats_beyond_the_largest_class_count_runs_the_reference():
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
