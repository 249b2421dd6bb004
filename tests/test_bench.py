"""The benchmark's bookkeeping, run on tiny CPU shapes under Triton's interpreter.

``triton.testing.do_bench`` needs a GPU and ``torch.compile`` is slow to warm up on a CPU, so both
are replaced by stand-ins; what is tested is that every implementation runs and agrees.
"""

import time

import pytest
import torch
import triton.testing

from theorylab.kernels import bench

IMPLS = {"triton", "torch eager", "torch.compile"}


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
    assert set(result.times_ms) == IMPLS
    assert result.max_rel_diff < 1e-4 and result.work[0] > 0 and result.rate == "GB/s"


def test_bench_ordered_lowrank_on_cpu(cpu_timing):
    result = bench.bench_ordered_lowrank(9, 20, 6, device="cpu")
    assert set(result.times_ms) == IMPLS and result.calls == ("forward", "forward+backward")
    assert result.max_rel_diff < 1e-4 and result.work[1] == 3 * result.work[0] > 0


def test_bench_relu_gauss_newton_on_cpu(cpu_timing):
    result = bench.bench_relu_gauss_newton(37, 5, 45, device="cpu")
    assert set(result.times_ms) == IMPLS
    assert all(len(t) == 2 and min(t) > 0 for t in result.times_ms.values())
    assert result.max_rel_diff < 1e-4 and result.work == (2 * 37 * 5 * 45, 6 * 37 * 5 * 45)


def test_bench_classifier_stats_on_cpu(cpu_timing):
    result = bench.bench_classifier_stats(50, 12, 9, device="cpu")
    assert set(result.times_ms) == IMPLS
    assert result.max_rel_diff < 1e-5 and result.work == (2 * 50 * 12 * 9,)
    assert "up to 0 " in result.note
    assert bench._lookup(bench.PEAK_FP32_TFLOPS, "NVIDIA H100 80GB HBM3") == 66.9


def test_bench_prefix_class_stats_on_cpu(cpu_timing):
    result = bench.bench_prefix_class_stats(3, 50, 9, classes=4, sizes=5, device="cpu")
    assert set(result.times_ms) == IMPLS
    assert result.max_rel_diff < 1e-4 and result.work[0] > 0


def test_bench_feature_dynamics_on_cpu(cpu_timing):
    result = bench.bench_feature_dynamics(200, 3, 50, device="cpu")
    assert set(result.times_ms) == IMPLS
    assert result.max_rel_diff < 1e-3 and result.work == (bench.SFU_OPS_PER_STEP * 200 * 50,)


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
    assert set(result.times_ms) == IMPLS
    assert result.max_rel_diff < 1e-4 and result.work == (4 * 2 * 5 * 2 * 3 * 4,)


def test_bench_collapse_directions_on_cpu(cpu_timing):
    result = bench.bench_collapse_directions(37, 2, 20, device="cpu")
    assert set(result.times_ms) == IMPLS
    assert result.max_rel_diff < 1e-4 and result.work == ((2 + 20) * 37 * 20,)


def test_result_rates_and_table():
    result = bench.BenchResult("n=4", "GB/s", ("call",), (2e9,), {"triton": (1.0,), "torch eager": (4.0,)},
                               1e-7, note="a note")
    assert result.rates("triton") == (2000.0,) and result.rates("torch eager") == (500.0,)
    table = bench.format_table("title", [result], peak=4000.0).splitlines()
    assert table[0] == "title" and "GB/s" in table[1] and "of peak" in table[1]
    assert "50.0%" in table[2] and "12.5%" in table[3] and "1.0e-07; a note" in table[4]
    assert "n/a" in bench.format_table("title", [result], peak=None)
    with pytest.raises(ValueError, match="one value per call"):
        bench.BenchResult("n=4", "GB/s", ("a", "b"), (1.0,), {})
    with pytest.raises(ValueError, match="rate"):
        bench.BenchResult("n=4", "bytes", ("call",), (1.0,), {})


def test_every_kernel_is_benchmarked():
    """Each launcher module in kernels/ has a benchmark in BENCHMARKS (the README says "each")."""
    from pathlib import Path

    modules = {p.stem for p in Path(bench.__file__).parent.glob("*.py")} - {
        "__init__", "bench", "dispatch", "compile_check"}
    assert modules == {fn.__name__.removeprefix("bench_") for fn, *_ in bench.BENCHMARKS}


def test_main_runs_every_table_on_cpu(cpu_timing, monkeypatch, capsys):
    """The whole report, with each benchmark's first shape shrunk to CPU size."""
    tiny = {"bench_lsa_moments": (5, 7, 3), "bench_ordered_lowrank": (9, 20, 6),
            "bench_classifier_stats": (50, 12, 9), "bench_relu_gauss_newton": (37, 5, 45),
            "bench_prefix_class_stats": (3, 50, 9), "bench_feature_dynamics": (200, 3, 50),
            "bench_collapse_directions": (37, 2, 20), "bench_batch_sgd_grid": (2, 3, 4, 2, 5)}
    monkeypatch.setattr(bench, "BENCHMARKS", [(fn, [tiny[fn.__name__]], kind, title)
                                              for fn, _, kind, title in bench.BENCHMARKS])
    assert bench.main(device="cpu") == 0
    out = capsys.readouterr().out
    for *_, title in bench.BENCHMARKS:
        assert title in out
    assert out.count("max relative difference") == len(bench.BENCHMARKS)
