"""Compile every Triton kernel ahead of time for real GPUs, on a machine without one.

    python -m theorylab.kernels.compile_check [--arch sm_90a,sm_80] [--jobs N]

Triton's CPU interpreter (which the kernel tests use) accepts programs that the GPU compiler rejects or
compiles badly. This check hands every kernel, in every tile configuration its launcher can choose on a
GPU and for the pointer types the launcher passes, to Triton's real compiler for each target
architecture (``triton.compile`` with a ``GPUTarget``; no GPU needed), then asks ``ptxas -v`` (shipped
with Triton) how many registers a thread uses and how many bytes it spills. It prints one row per
(kernel, configuration, architecture) and exits with status 1 on a compile error, a register spill,
or shared memory over the architecture's per-block limit.

Each kernel module lists its cases in ``compile_cases()``, built from the same configuration function
its launcher calls, so that a new tile choice in a launcher is compiled here too.

What this does not show: that the kernel is fast or right on the device (``make gpu-check`` does).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

#: Target name -> (compute capability, largest shared memory one block may use, in bytes).
ARCHS = {
    "sm_90a": (90, 227 * 1024),     # H100 / H200
    "sm_80": (80, 163 * 1024),      # A100
}


#: The modules holding the kernels, each with a ``compile_cases()``.
KERNEL_MODULES = ("lsa_moments", "feature_dynamics", "classifier_stats", "prefix_class_stats",
                  "ordered_lowrank", "relu_gauss_newton", "collapse_directions", "batch_sgd_grid")


@dataclass(frozen=True)
class CompileCase:
    """One kernel in one launch configuration.

    ``signature`` maps every argument to a Triton type (``"*fp32"``, ``"i32"``, ``"fp32"``…) or
    ``"constexpr"``; ``constexprs`` gives the constexpr values; ``label`` says, for the table, which
    inputs choose this configuration.
    """

    kernel: object
    signature: dict
    constexprs: dict
    label: str
    num_warps: int = 4
    num_stages: int = 3

    @property
    def name(self) -> str:
        return self.kernel.__name__ if hasattr(self.kernel, "__name__") else self.kernel.fn.__name__


@dataclass
class Row:
    kernel: str
    label: str
    arch: str
    registers: int | None = None
    spill_bytes: int | None = None
    shared_bytes: int | None = None
    seconds: float = 0.0
    error: str | None = None
    problems: list = field(default_factory=list)


def all_cases() -> list[CompileCase]:
    """Every kernel's cases, from each kernel module's ``compile_cases()``."""
    cases = []
    for name in KERNEL_MODULES:
        # import_module, not ``from . import``: the package exports launchers under the modules' names
        cases.extend(importlib.import_module(f"{__package__}.{name}").compile_cases())
    return cases


_PTXAS_REGISTERS = re.compile(r"Used (\d+) registers")
_PTXAS_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def ptxas_report(ptx: str, arch: str) -> tuple[int, int]:
    """Registers per thread and spilled bytes (stores + loads) that ``ptxas -v`` reports for ``ptx``."""
    from triton.backends.nvidia.compiler import get_ptxas

    capability = ARCHS[arch][0]
    ptxas = get_ptxas(capability).path
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "kernel.ptx")
        with open(source, "w") as fh:
            fh.write(ptx)
        command = [ptxas, "-v", f"--gpu-name={arch}", source, "-o", os.path.join(folder, "kernel.cubin")]
        result = subprocess.run(command, capture_output=True, text=True)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"ptxas failed:\n{log.strip()}")
    registers = _PTXAS_REGISTERS.search(log)
    spills = _PTXAS_SPILLS.search(log)
    if registers is None or spills is None:
        raise RuntimeError(f"could not read ptxas's report:\n{log.strip()}")
    return int(registers.group(1)), int(spills.group(1)) + int(spills.group(2))


def compile_one(case: CompileCase, arch: str) -> Row:
    """Compile ``case`` for ``arch`` and measure it; errors end up in the row, not raised."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    row = Row(case.name, case.label, arch)
    started = time.perf_counter()
    try:
        source = ASTSource(case.kernel, case.signature, constexprs=case.constexprs)
        compiled = triton.compile(source, target=GPUTarget("cuda", ARCHS[arch][0], 32),
                                  options={"num_warps": case.num_warps, "num_stages": case.num_stages})
        row.shared_bytes = int(compiled.metadata.shared)
        row.registers, row.spill_bytes = ptxas_report(compiled.asm["ptx"], arch)
    except Exception as error:  # noqa: BLE001 - every failure becomes a row of the report
        row.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:160]}"
    row.seconds = time.perf_counter() - started
    if row.error:
        row.problems.append("compile error")
    if row.spill_bytes:
        row.problems.append(f"spills {row.spill_bytes} B")
    if row.shared_bytes is not None and row.shared_bytes > ARCHS[arch][1]:
        row.problems.append(f"shared memory {row.shared_bytes} B > {ARCHS[arch][1]} B")
    return row


def _compile_indexed(job):
    index, arch = job
    return compile_one(all_cases()[index], arch)


def format_table(rows: list[Row]) -> str:
    lines = ["| kernel | configuration | arch | registers | spills (B) | shared (B) | s | result |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        def show(value):
            return "–" if value is None else str(value)
        result = "ok" if not r.problems else "FAIL: " + "; ".join(r.problems)
        if r.error:
            result += f" ({r.error})"
        lines.append(f"| {r.kernel} | {r.label} | {r.arch} | {show(r.registers)} | {show(r.spill_bytes)} | "
                     f"{show(r.shared_bytes)} | {r.seconds:.1f} | {result} |")
    return "\n".join(lines)


def run(archs=tuple(ARCHS), jobs: int | None = None) -> list[Row]:
    """Compile every case for every architecture in ``archs``; the rows in a stable order."""
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        raise ValueError(f"archs must be among {sorted(ARCHS)}, got {unknown}")
    cases = all_cases()
    work = [(i, arch) for i in range(len(cases)) for arch in archs]
    jobs = jobs or min(len(work), os.cpu_count() or 1)
    if jobs == 1:
        return [compile_one(cases[i], arch) for i, arch in work]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_compile_indexed, work))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.kernels.compile_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default=",".join(ARCHS),
                        help=f"comma-separated targets among {', '.join(ARCHS)} (default: all)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compilations (default: CPU count)")
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    archs = tuple(a.strip() for a in args.arch.split(",") if a.strip())
    try:
        rows = run(archs, args.jobs)
    except ValueError as error:
        parser.error(str(error))
    table = format_table(rows)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    failed = [r for r in rows if r.problems]
    total = sum(r.seconds for r in rows)
    print(f"\n{len(rows)} compilations ({len({(r.kernel, r.label) for r in rows})} kernel configurations × "
          f"{len(archs)} architectures), {total:.0f} s of compile time; {len(failed)} failed.")
    return 1 if failed else 0


def _without_interpreter() -> None:
    """Re-run this module without ``TRITON_INTERPRET``: the interpreter's kernels cannot be compiled,
    and ``@triton.jit`` reads the variable when the kernels are imported."""
    from .dispatch import interpreter_on

    if interpreter_on():
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        command = [sys.executable, "-m", "theorylab.kernels.compile_check", *sys.argv[1:]]
        os.execve(sys.executable, command, env)


if __name__ == "__main__":
    _without_interpreter()
    sys.exit(main())
