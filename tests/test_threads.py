"""theorylab.utils.threads.single_threaded: one thread inside, restored after; a decorator too."""

import pytest
import torch
from threadpoolctl import threadpool_info

from theorylab.utils.threads import single_threaded


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _blas_threads():
    return [pool["num_threads"] for pool in threadpool_info()]


def test_context_manager_limits_torch_and_blas_and_restores():
    torch.set_num_threads(2)
    with single_threaded():     # the first use loads SciPy's BLAS, one more pool to count
        pass
    blas_before = _blas_threads()
    with single_threaded():
        assert torch.get_num_threads() == 1
        assert all(n == 1 for n in _blas_threads())
        with single_threaded("cpu"):                   # nested
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2 and _blas_threads() == blas_before


def test_decorator_and_restore_after_an_error():
    torch.set_num_threads(2)

    @single_threaded()
    def inside():
        return torch.get_num_threads()

    assert inside() == 1 and inside() == 1            # usable more than once
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), single_threaded():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_other_devices_are_left_alone():
    torch.set_num_threads(2)
    with single_threaded(torch.device("meta")):
        assert torch.get_num_threads() == 2
