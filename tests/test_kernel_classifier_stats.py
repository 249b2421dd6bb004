"""``classifier_stats`` (chapter 3's eight sums per linear classifier over the data, many classifiers
in one pass) against its torch reference: odd shapes with the GPU's and the interpreter's tiles, rows
past the end of a view, ties on the boundary, two classes and absent classes."""

import pytest
import torch
from kernel_helpers import DEVICE, assert_close_to_reference, classifier_stats_inputs

from theorylab.kernels import classifier_stats, classifier_stats_reference
from theorylab.kernels.classifier_stats import _GPU_BLOCKS, _INTERPRETER_BLOCKS

pytestmark = pytest.mark.kernel

# (n, d, m): not multiples of the tiles of either configuration (BLOCK_N, BLOCK_M, BLOCK_D) = (64, 64, 32)
# on a GPU and (64, 32, 64) in the interpreter: n = 65, 130 and m = 65, 70 straddle 64 (and 32), d = 33 and
# 65 straddle 32 and 64, so every configuration has a partial last tile along every axis somewhere.
SHAPES = [(1, 1, 1), (37, 13, 5), (65, 33, 65), (130, 65, 70), (65, 65, 33), (200, 100, 3)]
BLOCKS = {"gpu-tiles": _GPU_BLOCKS, "interpreter-tiles": _INTERPRETER_BLOCKS}


@pytest.mark.parametrize("blocks", list(BLOCKS.values()), ids=list(BLOCKS))
@pytest.mark.parametrize("shape", SHAPES)
def test_classifier_stats_kernel_matches_reference(shape, blocks):
    X, labels, W, b, pos, neg = classifier_stats_inputs(*shape)
    got = classifier_stats(X, labels, W, b, pos, neg, backend="triton", _blocks=blocks)
    want = classifier_stats_reference(X.double(), labels, W.double(), b.double(), pos, neg)
    assert got.shape == (shape[2], 8) and got.dtype == torch.float64
    scores = (X.double() @ W.double().T + b.double()).abs()
    assert scores.min() > 1e-4, "a score within rounding of zero would make the error counts ambiguous"
    counts = [0, 1, 4, 5]
    assert_close_to_reference(got[:, counts], want[:, counts], rtol=0, atol=0,
                              what="classifier_stats: the counts")
    scale = scores.max().item() * shape[0]
    assert_close_to_reference(got[:, [2, 3, 6]], want[:, [2, 3, 6]], rtol=0, atol=1e-6 * scale,
                              what="classifier_stats: the score sums and the error depth")
    assert_close_to_reference(got[:, 7], want[:, 7], rtol=0, atol=1e-5 * scores.max().item(),
                              what="classifier_stats: the minimum margin")


def test_classifier_stats_masks_rows_past_the_end_and_counts_ties_as_errors():
    # X and labels are views into larger buffers whose tail holds huge points of a real class: a kernel
    # reading past row n would count them. Rows of zeros with b = 0 give scores of exactly 0 (errors).
    n, d, m = 70, 20, 40
    X, labels, W, b, pos, neg = classifier_stats_inputs(n, d, m, seed=5)
    X[:4] = 0.0
    b[:3] = 0.0
    X_buffer = torch.cat([X, torch.full((64, d), 1e3, device=DEVICE)])
    label_buffer = torch.cat([labels, torch.full((64,), int(pos[0]), device=DEVICE)]).to(torch.int32)
    got = classifier_stats(X_buffer[:n], label_buffer[:n], W, b, pos, neg, backend="triton")
    want = classifier_stats_reference(X.double(), labels, W.double(), b.double(), pos, neg)
    assert_close_to_reference(got[:, [0, 1, 4, 5]], want[:, [0, 1, 4, 5]], rtol=0, atol=0,
                              what="classifier_stats: the counts")
    assert_close_to_reference(got, want, rtol=1e-5, atol=1e-3, what="classifier_stats")
    member = (labels[:4, None] == pos[None, :3]) | (labels[:4, None] == neg[None, :3])
    assert member.any() and torch.all(got[:3, 4] + got[:3, 5] >= member.sum(0))


def test_classifier_stats_two_classes_and_absent_classes():
    # labels ±1 with the default positive/negative; a classifier whose classes are absent gets zeros/+inf
    X, _, W, b, _, _ = classifier_stats_inputs(70, 20, 40, seed=3)
    y = torch.where(torch.arange(70, device=DEVICE) % 3 == 0, 1, -1)
    got = classifier_stats(X, y, W, b, backend="triton")
    assert_close_to_reference(got, classifier_stats_reference(X.double(), y, W.double(), b.double()),
                              rtol=1e-5, atol=1e-4, what="classifier_stats (labels ±1)")
    got = classifier_stats(X, y, W, b, positive=5, negative=7, backend="triton")
    assert torch.all(got[:, :7] == 0) and torch.all(torch.isinf(got[:, 7]))
