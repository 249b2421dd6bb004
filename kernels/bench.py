"""Benchmark the Triton kernels against torch eager and ``torch.compile`` of their references.

    python -m theorylab.kernels.bench

Times each kernel at paper-scale shapes on a GPU and prints the achieved memory bandwidth as a
fraction of the device's peak. Without a GPU it says so and exits 0.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

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


#: Work units per millisecond → the printed rate: bytes → GB/s, FLOPs → TFLOP/s, operations → Gop/s.
RATE_SCALE = {"GB/s": 1e6, "TFLOP/s": 1e9, "Gop/s": 1e6}


@dataclass(frozen=True)
class BenchResult:
    """One kernel timed at one shape against its references.

    ``calls`` names the timed calls (e.g. ``("forward", "forward+backward")``); ``work`` gives, per call,
    the bytes moved or the useful FLOPs or operations in the unit ``rate`` is measured in (``"GB/s"``,
    ``"TFLOP/s"`` or ``"Gop/s"``); ``times_ms`` maps each implementation (``"triton"``,
    ``"torch eager"``, ``"torch.compile"``) to one time per call, in milliseconds. ``max_rel_diff`` is
    the Triton kernel's largest relative difference from its reference; ``note`` says anything else
    the accuracy check found.
    """

    shape: str
    rate: str
    calls: tuple[str, ...]
    work: tuple[float, ...]
    times_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)
    max_rel_diff: float = float("nan")
    note: str = ""

    def __post_init__(self):
        if self.rate not in RATE_SCALE:
            raise ValueError(f"rate must be one of {tuple(RATE_SCALE)}, got {self.rate!r}")
        per_call = [len(self.work), *(len(t) for t in self.times_ms.values())]
        if any(count != len(self.calls) for count in per_call):
            raise ValueError(f"work and every entry of times_ms need one value per call {self.calls}, got "
                             f"work {self.work} and times {self.times_ms}")

    def rates(self, impl: str) -> tuple[float, ...]:
        """The achieved rate of implementation ``impl`` per call, in the unit :attr:`rate`."""
        scale = RATE_SCALE[self.rate]
        return tuple(w / ms / scale for w, ms in zip(self.work, self.times_ms[impl], strict=True))


def _timed(calls: dict) -> dict[str, tuple[float, ...]]:
    """Time ``calls`` (implementation → tuple of zero-argument functions, one per timed call) with
    ``triton.testing.do_bench``; milliseconds, in the same shape."""
    import triton.testing

    return {impl: tuple(triton.testing.do_bench(fn) for fn in fns) for impl, fns in calls.items()}


def format_table(title: str, results: list[BenchResult], peak: float | None) -> str:
    """One table for one kernel: a row per shape and implementation, for each call its time, rate and
    the fraction of ``peak`` (in the results' rate unit; ``None`` when the device is not in the tables),
    then a line with the accuracy check."""
    first = results[0]
    width = max(28, *(len(r.shape) + 2 for r in results))
    head = f"{'shape':<{width}} {'impl':<14}"
    for call in first.calls:
        label = "ms" if len(first.calls) == 1 else f"{call} ms"
        head += f" {label:>{max(9, len(label))}} {first.rate:>8} {'of peak':>8}"
    lines = [title, head]
    for result in results:
        for impl in result.times_ms:
            row = f"{result.shape:<{width}} {impl:<14}"
            for call, ms, rate in zip(result.calls, result.times_ms[impl], result.rates(impl), strict=True):
                label = "ms" if len(result.calls) == 1 else f"{call} ms"
                frac = f"{rate / peak:7.1%}" if peak else "    n/a"
                row += f" {ms:{max(9, len(label))}.3f} {rate:8.2f} {frac:>8}"
            lines.append(row)
        check = f"max relative difference triton vs reference: {result.max_rel_diff:.1e}"
        lines.append(f"{'':<{width}} {check}" + (f"; {result.note}" if result.note else ""))
    return "\n".join(lines)


def _lookup(table: dict, name: str) -> float | None:
    for key, value in table.items():
        if key in name:
            return value
    return None


def peak_bandwidth(name: str) -> float | None:
    return _lookup(PEAK_BANDWIDTH_GBS, name)


def bench_ordered_lowrank(batch: int, d: int, rank: int, device: str = "cuda") -> BenchResult:
    """Time the per-sample-rank product (forward, and forward + backward) for a d×d layer with
    ``rank`` components and ranks uniform on 1..rank; FLOPs count only the kept components."""
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
    times = _timed({name: (lambda fn=fn: fn(x, U, V, ranks), lambda fn=fn: fn(x, U, V, ranks).backward(grad))
                    for name, fn in impls.items()})
    return BenchResult(f"batch={batch} d={d} r={rank}", "TFLOP/s", ("forward", "forward+backward"),
                       (useful, 3 * useful), times, rel)     # backward = 2 × forward


def bench_lsa_moments(batch: int, n: int, d: int, device: str = "cuda") -> BenchResult:
    """Time ``lsa_moments`` on ``batch`` prompts of length ``n`` in dimension ``d`` (float32); bytes: the
    inputs, read once."""
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
    times = _timed({"triton": (lambda: lsa_moments(*args, backend="triton"),),
                    "torch eager": (lambda: lsa_moments_reference(*args),),
                    "torch.compile": (lambda: compiled(*args),)})
    return BenchResult(f"batch={batch} n={n} d={d}", "GB/s", ("call",), (bytes_moved,), times, rel)


#: FP32 (non-tensor-core) peak in TFLOP/s by device-name fragment (vendor data sheets): the
#: ``classifier_stats`` kernel asks for exact float32 products (``input_precision="ieee"``), not TF32.
PEAK_FP32_TFLOPS = {"H200": 66.9, "H100 PCIe": 51.2, "H100": 66.9, "A100": 19.5, "L40S": 91.6, "L4": 30.3,
                    "A10": 31.2}


def bench_classifier_stats(n: int, d: int, m: int, classes: int = 10, device: str = "cuda") -> BenchResult:
    """Time ``classifier_stats`` for ``m`` classifiers (random pairs of ``classes`` classes) on ``n``
    points in dimension ``d``; FLOPs count the GEMM only (``2 n d m``)."""
    from .classifier_stats import classifier_stats, classifier_stats_reference

    gen = torch.Generator(device=device).manual_seed(0)
    X = torch.rand(n, d, device=device, generator=gen)
    labels = torch.randint(0, classes, (n,), device=device, generator=gen)
    W = torch.randn(m, d, device=device, generator=gen) / d**0.5
    b = torch.randn(m, device=device, generator=gen)
    positive = torch.randint(0, classes, (m,), device=device, generator=gen)
    negative = (positive + torch.randint(1, classes, (m,), device=device, generator=gen)) % classes
    args = (X, labels, W, b, positive, negative)
    compiled = torch.compile(classifier_stats_reference)
    ref = classifier_stats_reference(X.double(), labels, W.double(), b.double(), positive, negative)
    out = classifier_stats(*args, backend="triton")
    sums = [2, 3, 6]                                     # score sums and error depth
    rel = ((out[:, sums] - ref[:, sums]).abs().max() / ref[:, sums].abs().max()).item()
    counts = [0, 1, 4, 5]
    times = _timed({"triton": (lambda: classifier_stats(*args, backend="triton"),),
                    "torch eager": (lambda: classifier_stats_reference(*args),),
                    "torch.compile": (lambda: compiled(*args),)})
    mismatch = int((out[:, counts] - ref[:, counts]).abs().max().item())
    return BenchResult(f"n={n} d={d} m={m}", "TFLOP/s", ("call",), (2 * n * d * m,), times, rel,
                       note=f"counts differ by up to {mismatch} (points within rounding of a boundary)")


def bench_relu_gauss_newton(n: int, d: int, width: int, device: str = "cuda") -> BenchResult:
    """Time the two-layer ReLU Gauss–Newton kernels on ``n`` samples in dimension ``d`` with ``width``
    neurons: per-sample squared gradient norms (one ``X Wᵀ`` GEMM, ``2 n d m`` FLOPs) and the
    Gauss–Newton matrix–vector product (``X Wᵀ``, ``X dWᵀ`` and ``gateᵀ X``: ``6 n d m`` useful FLOPs; the
    kernel recomputes ``X Wᵀ`` in its second launch rather than storing it)."""
    from .relu_gauss_newton import (
        relu_gn_matvec,
        relu_gn_matvec_reference,
        relu_gn_sq_norms,
        relu_gn_sq_norms_reference,
    )

    gen = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(n, d, device=device, generator=gen)
    W = torch.randn(width, d, device=device, generator=gen) / d**0.5
    v = torch.randn(width, device=device, generator=gen) / width**0.5
    dW = torch.randn(width, d, device=device, generator=gen)
    dv = torch.randn(width, device=device, generator=gen)
    norms_ref = relu_gn_sq_norms_reference(X.double(), W.double(), v.double())
    hw_ref, hv_ref = relu_gn_matvec_reference(X.double(), W.double(), v.double(), dW.double(), dv.double())
    norms = relu_gn_sq_norms(X, W, v, backend="triton")
    hw, hv = relu_gn_matvec(X, W, v, dW, dv, backend="triton")
    rel = max(((norms - norms_ref).abs().max() / norms_ref.abs().max()).item(),
              ((hw - hw_ref).norm() / hw_ref.norm()).item(), ((hv - hv_ref).norm() / hv_ref.norm()).item())
    compiled_norms = torch.compile(relu_gn_sq_norms_reference)
    compiled_matvec = torch.compile(relu_gn_matvec_reference)
    times = _timed({
        "triton": (lambda: relu_gn_sq_norms(X, W, v, backend="triton"),
                   lambda: relu_gn_matvec(X, W, v, dW, dv, backend="triton")),
        "torch eager": (lambda: relu_gn_sq_norms_reference(X, W, v),
                        lambda: relu_gn_matvec_reference(X, W, v, dW, dv)),
        "torch.compile": (lambda: compiled_norms(X, W, v), lambda: compiled_matvec(X, W, v, dW, dv)),
    })
    return BenchResult(f"n={n} d={d} m={width}", "TFLOP/s", ("norms", "matvec"),
                       (2 * n * d * width, 6 * n * d * width), times, rel)


#: Special-function (MUFU: log, exp, reciprocal) operations per feature per RK4 step of the JEPA ODE:
#: four rates of (log, exp, reciprocal of ρ) plus (log, exp, reciprocal) for w and the crossing time.
SFU_OPS_PER_STEP = 15


def bench_feature_dynamics(n: int, depth: int, n_steps: int, device: str = "cuda") -> BenchResult:
    """Time the per-feature RK4 integration of JEPA's ODE for ``n`` features and ``n_steps`` steps. The
    kernel keeps each feature in registers and is bound by the special-function units (log/exp), so
    the figure of merit is SFU operations per second against the SFU peak (FP32 peak / 16 on Ampere and
    Hopper: 16 SFU lanes per 128 FP32 lanes per SM, an FMA counted as two FLOPs)."""
    from .feature_dynamics import feature_half_times, feature_half_times_reference

    gen = torch.Generator(device=device).manual_seed(0)
    lam = 0.5 + torch.rand(n, device=device, generator=gen)
    rho = 0.3 + 0.7 * torch.rand(n, device=device, generator=gen)
    t_max = torch.full((n,), 0.25 * n_steps, device=device)     # step 0.25: RK4 well inside stability
    kwargs = dict(depth=depth, eps=0.05, objective="jepa", n_steps=n_steps)
    got, _ = feature_half_times(lam, rho, t_max, backend="triton", **kwargs)
    want, _ = feature_half_times_reference(lam.double(), rho.double(), t_max.double(), **kwargs)
    finite = torch.isfinite(want) & (want > 0)
    rel = ((got.double()[finite] - want[finite]).abs() / want[finite].abs()).max().item()
    compiled = torch.compile(feature_half_times_reference)
    times = _timed({"triton": (lambda: feature_half_times(lam, rho, t_max, backend="triton", **kwargs),),
                    "torch eager": (lambda: feature_half_times_reference(lam, rho, t_max, **kwargs),),
                    "torch.compile": (lambda: compiled(lam, rho, t_max, **kwargs),)})
    return BenchResult(f"n={n} L={depth} steps={n_steps}", "Gop/s", ("call",),
                       (SFU_OPS_PER_STEP * n * n_steps,), times, rel)


def bench_collapse_directions(n: int, depth: int, n_steps: int, device: str = "cuda") -> BenchResult:
    """Time momentum gradient descent on ``n`` independent class directions of a deep linear UFM for
    ``n_steps`` steps (the λ × start × size sweeps of chapter 8), float32. Each direction lives in
    registers for the whole run, so the figure of merit is FLOP/s against the FP32 peak: about
    ``depth + 20`` FLOPs per direction per step (powers, residual, two gradients, momentum, updates)."""
    from .collapse_directions import collapse_directions, collapse_directions_reference

    gen = torch.Generator(device=device).manual_seed(0)
    size = torch.randint(2, 60, (n,), device=device, generator=gen).float()
    total = torch.full((n,), 100.0, device=device)
    lam = 0.005 + 0.03 * torch.rand(n, device=device, generator=gen)
    s0 = 0.2 + torch.rand(n, device=device, generator=gen)
    args = (size, total, lam, lam, s0, s0)
    kwargs = dict(depth=depth, lr=0.05, n_steps=n_steps)
    got, _ = collapse_directions(*args, backend="triton", **kwargs)
    want, _ = collapse_directions_reference(*(x.double() for x in args), **kwargs)
    rel = ((got.double() - want).abs() / (want.abs() + 1e-3)).max().item()
    compiled = torch.compile(collapse_directions_reference)
    times = _timed({"triton": (lambda: collapse_directions(*args, backend="triton", **kwargs),),
                    "torch eager": (lambda: collapse_directions_reference(*args, **kwargs),),
                    "torch.compile": (lambda: compiled(*args, **kwargs),)})
    return BenchResult(f"n={n} M={depth} steps={n_steps}", "TFLOP/s", ("call",),
                       ((depth + 20) * n * n_steps,), times, rel)


def bench_batch_sgd_grid(lrs: int, runs: int, steps: int, batch: int, d: int,
                         device: str = "cuda") -> BenchResult:
    """Time ``sgd_log_norms`` on a grid of ``lrs`` learning rates × ``runs`` runs of linearised SGD
    (``steps`` steps, batch ``batch``, dimension ``d``; chapter 7's typical-threshold grids). The kernel
    draws the batches in registers (Philox), so the figure of merit is FLOP/s against the FP32 peak:
    ``4 B d`` FLOPs per trajectory per step (two dot products), not counting the random numbers. The
    accuracy is checked in the mode that reads the batches from memory, on the first two runs."""
    from .batch_sgd_grid import sgd_log_norms, sgd_log_norms_reference

    gen = torch.Generator(device=device).manual_seed(0)
    lam = torch.ones(d, device=device)
    lam[0] = 10.0
    etas = torch.linspace(0.15, 0.26, lrs, device=device)
    e0 = torch.randn(runs, d, device=device, generator=gen)
    X = torch.randn(2, min(steps, 50), batch, d, device=device, generator=gen)
    kw = dict(steps=X.shape[1], batch=batch)
    got, _ = sgd_log_norms(lam, etas, e0[:2], X=X, backend="triton", **kw)
    want, _ = sgd_log_norms_reference(lam.double(), etas.double(), e0[:2].double(), X=X.double(), **kw)
    rel = ((got.double() - want).abs() / (want.abs() + 1e-3)).max().item()
    compiled = torch.compile(sgd_log_norms_reference)
    kw = dict(steps=steps, batch=batch, seed=1)
    times = _timed({"triton": (lambda: sgd_log_norms(lam, etas, e0, backend="triton", **kw),),
                    "torch eager": (lambda: sgd_log_norms_reference(lam, etas, e0, **kw),),
                    "torch.compile": (lambda: compiled(lam, etas, e0, **kw),)})
    return BenchResult(f"L={lrs} runs={runs} T={steps} B={batch} d={d}", "TFLOP/s", ("call",),
                       (4 * batch * d * lrs * runs * steps,), times, rel,
                       note="accuracy checked with the batches read from memory")


def bench_prefix_class_stats(orders: int, length: int, n: int, classes: int = 10, sizes: int = 20,
                             device: str = "cuda") -> BenchResult:
    """Time ``prefix_class_stats`` for ``orders`` orders of ``length`` samples in dimension ``n`` with
    ``sizes`` prefix lengths (a learning curve per order). Bytes: every order reads its rows once
    (``orders · length · n`` float32) and writes ``2 · orders · sizes · classes · n`` statistics."""
    from .prefix_class_stats import prefix_class_stats, prefix_class_stats_reference

    gen = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(length, n, device=device, generator=gen) + 3.0
    y = torch.randint(0, classes, (length,), device=device, generator=gen)
    order = torch.stack([torch.randperm(length, device=device, generator=gen) for _ in range(orders)])
    ends = torch.unique(torch.logspace(1, float(torch.log10(torch.tensor(float(length)))), sizes).long())
    ends = ends.to(device)
    args = (X, y, order, ends, classes)
    compiled = torch.compile(prefix_class_stats_reference)
    _, means_ref, var_ref = prefix_class_stats_reference(X.double(), y, order, ends, classes)
    _, means, var = prefix_class_stats(*args, backend="triton")
    rel = max(((means - means_ref).abs().max() / means_ref.abs().max()).item(),
              ((var - var_ref).abs().max() / var_ref.abs().max()).item())
    bytes_moved = 4 * (orders * length * n + 2 * orders * ends.numel() * classes * n)
    times = _timed({"triton": (lambda: prefix_class_stats(*args, backend="triton"),),
                    "torch eager": (lambda: prefix_class_stats_reference(*args),),
                    "torch.compile": (lambda: compiled(*args),)})
    return BenchResult(f"S={orders} L={length} n={n} K={classes} G={ends.numel()}", "GB/s", ("call",),
                       (bytes_moved,), times, rel)


#: Paper-scale shapes per kernel: (benchmark, its shapes, the peak it is measured against, a title).
#: The peaks: "bandwidth" (GB/s), "tf32" and "fp32" (TFLOP/s), "sfu" (G special-function ops/s).
BENCHMARKS = [
    (bench_lsa_moments, [(8192, 1000, 64), (65536, 100, 64), (65536, 40, 8)], "bandwidth",
     "lsa_moments: the risk's moments per prompt, memory-bound"),
    (bench_ordered_lowrank, [(16384, 1024, 256), (8192, 4096, 1024)], "tf32",
     "ordered_lowrank: useful FLOPs (kept components only; backward = 2 × forward)"),
    (bench_classifier_stats, [(1797, 64, 1800), (65536, 784, 1024), (16384, 3072, 2048)], "fp32",
     "classifier_stats: GEMM with fused per-classifier reductions (FLOPs of the GEMM)"),
    (bench_relu_gauss_newton, [(10_000, 32, 1024), (100_000, 64, 1024), (65_536, 256, 4096)], "fp32",
     "relu_gauss_newton: squared gradient norms and Gauss–Newton matvec (IEEE float32 products)"),
    (bench_prefix_class_stats, [(64, 4096, 1000), (64, 40_000, 1000), (16, 40_000, 10_000)], "bandwidth",
     "prefix_class_stats: per-class statistics of every prefix (a learning curve) in one pass"),
    (bench_feature_dynamics, [(1 << 20, 3, 200), (1 << 22, 5, 200)], "sfu",
     f"feature_dynamics: RK4 per feature in registers (≈{SFU_OPS_PER_STEP} special-function ops per "
     "feature-step; SFU peak ≈ FP32 peak / 16)"),
    (bench_collapse_directions, [(1 << 20, 2, 500), (1 << 22, 3, 500)], "fp32",
     "collapse_directions: momentum descent per class direction in registers"),
    (bench_batch_sgd_grid, [(8, 256, 2000, 16, 128), (8, 256, 500, 256, 128)], "fp32",
     "batch_sgd_grid: linearised-SGD trajectories in registers, batches drawn in the kernel"),
]


def peaks(name: str) -> dict[str, float | None]:
    """The device's peaks by kind (``None`` where the device is not in the tables)."""
    fp32 = _lookup(PEAK_FP32_TFLOPS, name)
    return {"bandwidth": peak_bandwidth(name), "tf32": _lookup(PEAK_TF32_TFLOPS, name), "fp32": fp32,
            "sfu": fp32 / 16 * 1e3 if fp32 else None}


def main(device: str = "cuda") -> int:
    if device == "cuda" and not torch.cuda.is_available():
        print("theorylab.kernels.bench: no CUDA GPU on this machine; nothing to time (the kernels are "
              "tested on the CPU through Triton's interpreter by `make test`).")
        return 0
    name = torch.cuda.get_device_name() if device == "cuda" else device
    peak = peaks(name)
    known = ", ".join(f"{kind} {value or 'unknown'}" for kind, value in peak.items())
    print(f"device: {name}; peaks (GB/s, TFLOP/s, TFLOP/s, Gop/s): {known}")
    for benchmark, shapes, kind, title in BENCHMARKS:
        results = [benchmark(*shape, device=device) for shape in shapes]
        print()
        print(format_table(title, results, peak[kind]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
