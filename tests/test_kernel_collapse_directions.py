"""``collapse_directions`` (chapter 8's per-direction momentum descent on the singular values of the
deep unconstrained-features model) against its torch reference, in float64 and float32, at depths 1 and
3 and for direction counts inside and across blocks."""

import pytest
import torch
from kernel_helpers import assert_close_to_reference, collapse_directions_inputs

from theorylab.kernels import collapse_directions, collapse_directions_reference

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("P", [1, 37, 129])
@pytest.mark.parametrize("depth", [1, 3])
def test_collapse_directions_kernel_matches_reference(P, depth):
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-4)):
        args = collapse_directions_inputs(P, dtype)
        a, g = collapse_directions(*args, depth=depth, lr=0.05, n_steps=60, backend="triton")
        a_ref, g_ref = collapse_directions_reference(*[x.double().cpu() for x in args], depth=depth, lr=0.05,
                                                     n_steps=60)
        assert a.dtype == dtype and a.shape == (P,)
        assert_close_to_reference(a.double(), a_ref, rtol=rtol, atol=rtol,
                                  what=f"collapse_directions ({dtype}): a")
        assert_close_to_reference(g.double(), g_ref, rtol=rtol, atol=rtol,
                                  what=f"collapse_directions ({dtype}): g")
