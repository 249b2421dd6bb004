"""One CPU thread for small-tensor work: torch's intra-op pool and the BLAS/OpenMP pools alike.

The library's CPU computations are mostly on tiny arrays. On a busy two-core machine each
multi-threaded operation on them was seen to cost milliseconds of thread-pool synchronisation
(torch 2.13: ~10 ms per small op against ~50 µs single-threaded; a 50 × 200 SVD through NumPy's BLAS
100× slower with two threads than with one). :func:`single_threaded` limits both for the duration of
a block or a call, and restores them afterwards::

    with single_threaded(X.device):
        ...

    @single_threaded()
    def fit(...): ...

On a CUDA device it does nothing (the GPU's work is not limited by CPU threads).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded"]

_CONTROLLER: list[ThreadpoolController] = []


def _thread_pools() -> ThreadpoolController:
    """The BLAS/OpenMP thread pools of this process, found once: finding them (``threadpool_limits``
    does it on every call) takes milliseconds, and the library enters :func:`single_threaded`
    thousands of times a chapter."""
    if not _CONTROLLER:
        import scipy.linalg  # noqa: F401  (SciPy's own BLAS, loaded now so that the controller sees it)
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextmanager
def single_threaded(device=None):
    """Limit torch and the BLAS/OpenMP pools to one thread inside the block (or the decorated call);
    a no-op when ``device`` (a ``torch.device`` or a string) is not the CPU. Nested use is fine."""
    if device is not None and torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _thread_pools().limit(limits=1):
            yield
    finally:
        torch.set_num_threads(before)
