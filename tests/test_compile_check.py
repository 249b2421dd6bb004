"""Every Triton kernel compiles for sm_90a (H100/H200) and sm_80 (A100) without spills: the real GPU
compiler, run on this CPU-only machine (``theorylab.kernels.compile_check``)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from theorylab.kernels import compile_check

ENV = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` without Triton's interpreter (kernels must be real ``JITFunction``s to compile)."""
    return subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def report():
    result = subprocess.run([sys.executable, "-m", "theorylab.kernels.compile_check"], env=ENV,
                            capture_output=True, text=True, timeout=900)
    return result


def test_every_kernel_compiles_for_hopper_and_ampere_without_spills(report):
    assert report.returncode == 0, report.stdout[-4000:] + report.stderr[-4000:]
    assert "0 failed" in report.stdout


def test_the_table_covers_every_kernel_of_every_module_on_both_architectures(report):
    rows = [line.split("|")[1:-1] for line in report.stdout.splitlines() if line.startswith("| _")]
    seen = {(cells[0].strip(), cells[2].strip()) for cells in rows}
    kernels = set()
    for name in compile_check.KERNEL_MODULES:
        module = importlib.import_module(f"theorylab.kernels.{name}")
        kernels |= {attr for attr in vars(module) if attr.startswith("_") and attr.endswith("_kernel")}
    assert len(kernels) >= len(compile_check.KERNEL_MODULES)      # every module has at least one kernel
    assert seen == {(kernel, arch) for kernel in kernels for arch in compile_check.ARCHS}
    for cells in rows:
        assert int(cells[3]) <= 255 and int(cells[4]) == 0, cells


def test_a_compile_error_and_too_much_shared_memory_are_reported():
    result = run_python(
        "import dataclasses\n"
        "from theorylab.kernels import compile_check as cc\n"
        "import importlib\n"
        "fd = importlib.import_module('theorylab.kernels.feature_dynamics').compile_cases()[0]\n"
        "bad = dataclasses.replace(fd, constexprs={**fd.constexprs, 'BLOCK': 100})  # not a power of 2\n"
        "row = cc.compile_one(bad, 'sm_80')\n"
        "assert row.problems == ['compile error'] and row.error, row\n"
        "lr = importlib.import_module('theorylab.kernels.ordered_lowrank').compile_cases()[0]\n"
        "cc.ARCHS['sm_80'] = (80, 1024)  # a pretend architecture with 1 KB of shared memory\n"
        "row = cc.compile_one(lr, 'sm_80')\n"
        "assert len(row.problems) == 1 and row.problems[0].startswith('shared memory'), row\n"
        "print('ok')\n")
    assert result.stdout.strip() == "ok", result.stdout + result.stderr


def test_bad_arguments_are_refused():
    result = subprocess.run([sys.executable, "-m", "theorylab.kernels.compile_check", "--arch", "sm_75"],
                            env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "sm_75" in result.stderr
