"""Benchmark the Triton kernels against torch eager and ``torch.compile`` of their references.

    python -m theorylab.kernels.bench

Times each kernel at paper-scale shapes on a GPU and prints the achieved memory bandwidth as a
fraction of the device's peak. Without a GPU it says so and exits 0.
"""

from __future__ import annotations

import sys

import torch

from .lsa_moments import lsa_moments, lsa_moments_reference
from .ordered_lowrank import ordered_lowrank, ordered_lowrank_reference

#: Dense TF32 tensor-core peak in TFLOP/s by device-name fragment (vendor data sheets; Triton's fp32
#: ``tl.dot`` uses TF32 on these GPUs).
PEAK_TF32_TFLOPS = {"H200": 494.7, "H100 PCIe": 378.0, "H100": 494.7, "A100": 156.0, "L40S": 183.0,
                    "L4": 60.0, "A10": 62.5}

#: Peak HBM bandwidth in GB/s by device-name fragment (vendor data sheets).
PEAK_BANDWIDTH_GBS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100-SXM4-80GB": 2039.0,
                      "A100": 1555.0, "L40S": 864.0, "L4": 300.0, "A10": 600.0, "T4": 320.0}


def _lookup(table: dict, name: str) -> float | None:
    for key, value in table.items():
        if key in name:
            return value
    return None


def peak_bandwidth(name: str) -> float | None:
    return _lookup(PEAK_BANDWIDTH_GBS, name)


def bench_ordered_lowrank(batch: int, d: int, rank: int, device: str = "cuda") -> dict:
    """Time the per-sample-rank product (forward, and forward + backward) for a d×d layer with
    ``rank`` components and ranks uniform on 1..rank; FLOPs count only the kept components."""
    import triton.testing

    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, d, device=device, generator=gen)
    U = (torch.randn(d, rank, device=device, generator=gen) / d**0.5).requires_grad_()
    V = (torch.randn(d, rank, device=device, generator=gen) / d**0.5).requires_grad_()
    ranks = torch.randint(1, rank + 1, (batch,), device=device, generator=gen)
    grad = torch.randn(batch, d, device=device, generator=gen)
    compiled = torch.compile(ordered_lowrank_reference)
    impls = {"triton": lambda *a: ordered_lowrank(*a, backend="triton"),
             "torch eager": ordered_lowrank_reference, "torch.compile": compiled}
    ref = ordered_lowrank_reference(x, U, V, ranks)
    out = impls["triton"](x, U, V, ranks)
    rel = ((out - ref).norm() / ref.norm()).item()
    useful = 2 * ranks.sum().item() * (d + d)               # forward FLOPs of the kept components
    times = {}
    for name, fn in impls.items():
        times[name] = (triton.testing.do_bench(lambda fn=fn: fn(x, U, V, ranks)),
                       triton.testing.do_bench(lambda fn=fn: fn(x, U, V, ranks).backward(grad)))
    return {"shape": f"batch={batch} d={d} r={rank}", "flops": useful, "times_ms": times,
            "max_rel_diff": rel}


def bench_lsa_moments(batch: int, n: int, d: int, device: str = "cuda") -> dict:
    """Time ``lsa_moments`` on ``batch`` prompts of length ``n`` in dimension ``d`` (float32)."""
    import triton.testing

    gen = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(batch, n, d, device=device, generator=gen)
    y = torch.randn(batch, n, device=device, generator=gen)
    x_q = torch.randn(batch, d, device=device, generator=gen)
    y_q = torch.randn(batch, device=device, generator=gen)
    p = torch.randn(d + 1, device=device, generator=gen)
    K = torch.randn(d + 1, d, device=device, generator=gen)
    args = (X, y, x_q, y_q, p, K)
    compiled = torch.compile(lsa_moments_reference)
    ref = lsa_moments_reference(*args)
    out = lsa_moments(*args, backend="triton")
    rel = ((out - ref).abs() / ref.abs().clamp_min(1e-6)).max().item()
    bytes_moved = sum(t.numel() * t.element_size() for t in args)
    times = {
        "triton": triton.testing.do_bench(lambda: lsa_moments(*args, backend="triton")),
        "torch eager": triton.testing.do_bench(lambda: lsa_moments_reference(*args)),
        "torch.compile": triton.testing.do_bench(lambda: compiled(*args)),
    }
    return {"shape": f"batch={batch} n={n} d={d}", "bytes": bytes_moved, "times_ms": times,
            "max_rel_diff": rel}


def main() -> int:
    if not torch.cuda.is_available():
        print("theorylab.kernels.bench: no CUDA GPU on this machine; nothing to time (the kernels are "
              "tested on the CPU through Triton's interpreter by `make test`).")
        return 0
    name = torch.cuda.get_device_name()
    peak = peak_bandwidth(name)
    print(f"device: {name}; peak memory bandwidth: {peak or 'unknown'} GB/s")
    print(f"{'kernel':<12} {'shape':<26} {'impl':<14} {'ms':>8} {'GB/s':>8} {'of peak':>8}")
    for batch, n, d in [(8192, 1000, 64), (65536, 100, 64), (65536, 40, 8)]:
        result = bench_lsa_moments(batch, n, d)
        for impl, ms in result["times_ms"].items():
            gbs = result["bytes"] / ms / 1e6
            frac = f"{gbs / peak:7.1%}" if peak else "    n/a"
            print(f"{'lsa_moments':<12} {result['shape']:<26} {impl:<14} {ms:8.3f} {gbs:8.0f} {frac:>8}")
        print(f"{'':<12} {'':<26} max relative difference triton vs reference: {result['max_rel_diff']:.1e}")
    peak_flops = _lookup(PEAK_TF32_TFLOPS, name)
    print(f"\nordered_lowrank: useful TFLOP/s (kept components only; backward = 2x forward) "
          f"vs TF32 peak {peak_flops or 'unknown'}")
    print(f"{'shape':<28} {'impl':<14} {'fwd ms':>8} {'TFLOP/s':>8} {'fwd+bwd ms':>11} {'TFLOP/s':>8}")
    for batch, d, rank in [(16384, 1024, 256), (8192, 4096, 1024)]:
        result = bench_ordered_lowrank(batch, d, rank)
        for impl, (fwd, both) in result["times_ms"].items():
            tf_fwd = result["flops"] / fwd / 1e9
            tf_both = 3 * result["flops"] / both / 1e9
            print(f"{result['shape']:<28} {impl:<14} {fwd:8.3f} {tf_fwd:8.1f} {both:11.3f} {tf_both:8.1f}")
        print(f"{'':<28} relative difference triton vs reference (TF32): {result['max_rel_diff']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
