"""Benchmark the Triton kernels against torch eager and ``torch.compile`` of their references.

    python -m theorylab.kernels.bench

Times each kernel at paper-scale shapes on a GPU and prints the achieved memory bandwidth as a
fraction of the device's peak. Without a GPU it says so and exits 0.
"""

from __future__ import annotations

import sys

import torch

from .lsa_moments import lsa_moments, lsa_moments_reference

#: Peak HBM bandwidth in GB/s by device-name fragment (vendor data sheets).
PEAK_BANDWIDTH_GBS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100-SXM4-80GB": 2039.0,
                      "A100": 1555.0, "L40S": 864.0, "L4": 300.0, "A10": 600.0, "T4": 320.0}


def peak_bandwidth(name: str) -> float | None:
    for key, value in PEAK_BANDWIDTH_GBS.items():
        if key in name:
            return value
    return None


def bench_lsa_moments(batch: int, n: int, d: int) -> dict:
    """Time ``lsa_moments`` on ``batch`` prompts of length ``n`` in dimension ``d`` (float32)."""
    import triton.testing

    gen = torch.Generator(device="cuda").manual_seed(0)
    X = torch.randn(batch, n, d, device="cuda", generator=gen)
    y = torch.randn(batch, n, device="cuda", generator=gen)
    x_q = torch.randn(batch, d, device="cuda", generator=gen)
    y_q = torch.randn(batch, device="cuda", generator=gen)
    p = torch.randn(d + 1, device="cuda", generator=gen)
    K = torch.randn(d + 1, d, device="cuda", generator=gen)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
