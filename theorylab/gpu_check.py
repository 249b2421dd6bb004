"""Everything that needs a GPU, in one run that fits a borrowed machine's time: ``make gpu-check``.

    python -m theorylab.gpu_check [--out _build/gpu-check] [--budget 480]

On a machine with a CUDA GPU, within ``--budget`` seconds (default 8 minutes) and in this order:

1. the kernel-vs-reference tests (those marked ``kernel``: ``tests/test_kernel_<op>.py``, one file per
   public op of ``theorylab.kernels``) compiled on the GPU (``THEORYLAB_KERNEL_DEVICE=cuda``, no
   interpreter);
2. ``python -m theorylab.kernels.bench``: every kernel against torch eager and ``torch.compile`` of its
   reference, with the fraction of the memory-bandwidth or FLOP roofline;
3. every chapter at ``THEORYLAB_SCALE=full`` (``python -m theorylab.reproduce NN``), one at a time,
   with its run time, until the budget is spent.

Each stage's output goes to ``OUT/``; one report, ``OUT/gpu-check-report.md``, gathers the device, the
stage results, the benchmark table and the per-chapter times and claims. A stage that fails does not
stop the next. Without a GPU it says so, writes a report saying so, and exits 0. The exit status is 1
when a stage failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .chapters import find_chapters

REPO = Path(__file__).resolve().parent.parent


def _run(command: list[str], *, env: dict, timeout: float, log: Path) -> tuple[int | None, float, str]:
    """Run ``command``; return (exit status or None on timeout, seconds, its output)."""
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=max(timeout, 1))
        status, output = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as expired:
        status = None
        output = "".join((part or b"").decode(errors="replace") for part in (expired.stdout, expired.stderr))
    log.write_text(output, encoding="utf-8")
    return status, time.perf_counter() - started, output


def _status(code: int | None) -> str:
    return "passed" if code == 0 else ("TIMED OUT" if code is None else f"FAILED (exit {code})")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.gpu_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="_build/gpu-check", help="folder for the logs and the report")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all stages (default 480)")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget must be positive, got {args.budget}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "gpu-check-report.md"

    import torch

    if not torch.cuda.is_available():
        message = ("theorylab.gpu_check: no CUDA GPU on this machine; nothing to check. The kernels are "
                   "compiled for sm_90a and sm_80 by `make test` (theorylab.kernels.compile_check) and run "
                   "in Triton's CPU interpreter by the kernel tests.")
        print(message)
        report_path.write_text(f"# GPU check\n\n{message}\n", encoding="utf-8")
        return 0

    deadline = time.monotonic() + args.budget
    base_env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    props = torch.cuda.get_device_properties(0)
    lines = ["# GPU check", "",
             f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability "
             f"{props.major}.{props.minor}; torch {torch.__version__}, triton "
             f"{__import__('triton').__version__}; budget {args.budget:.0f} s", ""]
    failed = False

    def remaining() -> float:
        return deadline - time.monotonic()

    # 1. kernel tests on the GPU
    env = dict(base_env, THEORYLAB_KERNEL_DEVICE="cuda")
    # 70 tests compile their kernels once per configuration: four workers compile in parallel
    code, seconds, output = _run([sys.executable, "-m", "pytest", "-q", "-n", "4", "--dist", "loadfile", "-m",
                                  "kernel", "tests"], env=env, timeout=min(180, remaining()),
                                 log=out / "kernel-tests.log")
    failed |= code != 0
    lines += ["## 1. Kernel tests on the GPU", "", f"{_status(code)} in {seconds:.0f} s", "", "```",
              _tail(output, 15), "```", ""]
    print(f"kernel tests: {_status(code)} ({seconds:.0f} s)", flush=True)

    # 2. benchmark
    code, seconds, output = _run([sys.executable, "-m", "theorylab.kernels.bench"], env=base_env,
                                 timeout=min(200, remaining()), log=out / "bench.log")
    failed |= code != 0
    lines += ["## 2. Benchmark (`make bench`)", "", f"{_status(code)} in {seconds:.0f} s", "", "```",
              output.strip(), "```", ""]
    print(f"bench: {_status(code)} ({seconds:.0f} s)", flush=True)

    # 3. every chapter at full scale, while time remains
    lines += ["## 3. Chapters at THEORYLAB_SCALE=full", "",
              "| chapter | result | seconds |", "|---|---|---:|"]
    env = dict(base_env, THEORYLAB_SCALE="full")
    for path in find_chapters(REPO / "book"):
        if remaining() < 20:
            lines.append(f"| {path.stem} | not run (budget spent) | – |")
            failed = True
            continue
        code, seconds, output = _run([sys.executable, "-m", "theorylab.reproduce", path.stem[:2],
                                      "--out", str(out / "full" / path.stem)],
                                     env=env, timeout=remaining() - 5, log=out / f"full-{path.stem}.log")
        failed |= code != 0
        lines.append(f"| {path.stem} | {_status(code)} | {seconds:.0f} |")
        print(f"{path.stem} at full scale: {_status(code)} ({seconds:.0f} s)", flush=True)
    lines += ["", "Each chapter's claims: `full/<chapter>/reproduce-report.md`; logs: `full-<chapter>.log`.",
              ""]

    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"report: {report_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
