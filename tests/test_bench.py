"""The benchmark's bookkeeping, run on tiny CPU shapes under Triton's interpreter.

``triton.testing.do_bench`` needs a GPU and ``torch.compile`` is slow to warm up on a CPU, so both
are replaced by stand-ins; what is tested is that every implementation runs and agrees.
"""

import time

import pytest
import torch
import triton.testing

from theorylab.kernels import bench


@pytest.fixture
def cpu_timing(monkeypatch):
    def do_bench(fn):
        start = time.perf_counter()
        fn()
        return 1e3 * (time.perf_counter() - start)

    monkeypatch.setattr(triton.testing, "do_bench", do_bench)
    monkeypatch.setattr(torch, "compile", lambda fn: fn)


def test_bench_lsa_moments_on_cpu(cpu_timing):
    result = bench.bench_lsa_moments(5, 7, 3, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-4 and result["bytes"] > 0


def test_bench_ordered_lowrank_on_cpu(cpu_timing):
    result = bench.bench_ordered_lowrank(9, 20, 6, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-4 and result["flops"] > 0


def test_bench_relu_gauss_newton_on_cpu(cpu_timing):
    result = bench.bench_relu_gauss_newton(37, 5, 45, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert all(len(t) == 2 and min(t) > 0 for t in result["times_ms"].values())
    assert result["max_rel_diff"] < 1e-4 and min(result["flops"]) > 0


def test_bench_classifier_stats_on_cpu(cpu_timing):
    result = bench.bench_classifier_stats(50, 12, 9, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-5 and result["flops"] == 2 * 50 * 12 * 9
    assert result["count_mismatch"] == 0
    assert bench._lookup(bench.PEAK_FP32_TFLOPS, "NVIDIA H100 80GB HBM3") == 66.9


def test_bench_prefix_class_stats_on_cpu(cpu_timing):
    result = bench.bench_prefix_class_stats(3, 50, 9, classes=4, sizes=5, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-4 and result["bytes"] > 0


def test_bench_feature_dynamics_on_cpu(cpu_timing):
    result = bench.bench_feature_dynamics(200, 3, 50, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-3 and result["sfu_ops"] == bench.SFU_OPS_PER_STEP * 200 * 50


def test_peak_tables():
    assert bench.peak_bandwidth("NVIDIA H100 80GB HBM3") == 3350.0
    assert bench.peak_bandwidth("NVIDIA H100 PCIe") == 2000.0
    assert bench.peak_bandwidth("unknown card") is None


def test_main_without_gpu_exits_zero(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert bench.main() == 0
    assert "no CUDA GPU" in capsys.readouterr().out


def test_bench_batch_sgd_grid_on_cpu(cpu_timing):
    result = bench.bench_batch_sgd_grid(2, 3, 4, 2, 5, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-4 and result["flops"] == 4 * 2 * 5 * 2 * 3 * 4


def test_bench_collapse_directions_on_cpu(cpu_timing):
    result = bench.bench_collapse_directions(37, 2, 20, device="cpu")
    assert set(result["times_ms"]) == {"triton", "torch eager", "torch.compile"}
    assert result["max_rel_diff"] < 1e-4 and result["flops"] == (2 + 20) * 37 * 20
