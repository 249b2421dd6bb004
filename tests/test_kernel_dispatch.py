"""The dispatch between a Triton kernel and its torch reference (``theorylab.kernels.dispatch``):
the interpreter is on for the kernel tests, ``backend`` picks as documented, and ``interpreter_on``
agrees with how Triton built the kernels."""

import os

import pytest
import torch
from kernel_helpers import interpreter_only, lsa_inputs

from theorylab.kernels import interpreter_on, lsa_moments, lsa_moments_reference, use_triton

pytestmark = pytest.mark.kernel


@interpreter_only
def test_interpreter_is_on_for_the_kernel_tests():
    assert interpreter_on(), "conftest.py must set TRITON_INTERPRET=1 before the kernels are imported"


@interpreter_only
def test_auto_backend_picks_triton_under_the_interpreter_and_torch_when_asked():
    X = torch.zeros(1, 1, 1)
    assert use_triton(X, "auto") and not use_triton(X, "torch")
    inputs = lsa_inputs(4, 5, 3, seed=3)
    torch.testing.assert_close(lsa_moments(*inputs, backend="torch"),
                               lsa_moments_reference(*inputs))
    with pytest.raises(ValueError, match="backend"):
        use_triton(X, "cuda")


@interpreter_only
def test_interpreter_detection_agrees_with_triton(tmp_path):
    """``interpreter_on`` asks Triton how the kernels were built, so any spelling Triton reads as true
    or false gives the same answer in both (it used to re-parse TRITON_INTERPRET its own way)."""
    import subprocess
    import sys
    # One fresh process re-imports, per spelling, the detection and a kernel module of its own, and
    # asks Triton how that kernel was built.
    code = ("import importlib, os\n"
            "from triton.runtime.interpreter import InterpretedFunction\n"
            "from theorylab.kernels import dispatch, feature_dynamics\n"
            "for value in ('1', 'true', 'on', '0', 'no', 'off', 'FALSE', '2'):\n"
            "    os.environ['TRITON_INTERPRET'] = value\n"
            "    importlib.reload(dispatch)\n"
            "    importlib.reload(feature_dynamics)\n"
            "    built = isinstance(feature_dynamics._rate, InterpretedFunction)\n"
            "    print(value, dispatch.interpreter_on(), built)\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.splitlines()
    assert len(out) == 8, out
    for line in out:
        value, ours, triton_says = line.split()
        assert ours == triton_says, line
    assert {line.split()[0]: line.split()[2] for line in out}["on"] == "True"    # both answers occur
    assert {line.split()[0]: line.split()[2] for line in out}["off"] == "False"

