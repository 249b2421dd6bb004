"""``make gpu-check``: without a GPU it says so and exits 0; with one (faked here) it runs the kernel
tests on CUDA, the benchmark and every chapter at full scale, within its budget, into one report."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from theorylab import chapters, gpu_check

N_CHAPTERS = len(chapters.find_chapters(Path(__file__).resolve().parents[1] / "book"))


def test_without_a_gpu_it_says_so_and_exits_zero(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    assert "no CUDA GPU" in (tmp_path / "gpu-check-report.md").read_text()


@pytest.fixture
def fake_gpu(monkeypatch):
    calls = []

    def run(command, *, env, timeout, log):
        calls.append((command, env, timeout))
        log.write_text("fake output")
        return 0, 1.0, "fake output"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(
        name="NVIDIA H200", total_memory=141 * 2**30, major=9, minor=0))
    monkeypatch.setattr(gpu_check, "_run", run)
    return calls


def test_with_a_gpu_every_stage_runs_compiled_not_interpreted(tmp_path, fake_gpu, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    commands = [" ".join(c[0][1:]) for c in fake_gpu]
    assert commands[0] == "-m pytest -q -n 4 --dist loadfile -m kernel tests"
    assert fake_gpu[0][1]["THEORYLAB_KERNEL_DEVICE"] == "cuda"
    assert commands[1] == "-m theorylab.kernels.bench"
    chapter_runs = [c for c in fake_gpu if "theorylab.reproduce" in c[0]]
    assert len(chapter_runs) == N_CHAPTERS and all(c[1]["THEORYLAB_SCALE"] == "full" for c in chapter_runs)
    assert all("TRITON_INTERPRET" not in c[1] for c in fake_gpu)
    assert all(0 < c[2] <= 480 for c in fake_gpu)
    report = (tmp_path / "gpu-check-report.md").read_text()
    assert "NVIDIA H200" in report and report.count("| passed |") == N_CHAPTERS


def test_a_failed_stage_fails_the_run_but_not_the_next_stage(tmp_path, fake_gpu, monkeypatch):
    original = gpu_check._run

    def failing_bench(command, **kwargs):
        code, seconds, output = original(command, **kwargs)
        return (3 if "theorylab.kernels.bench" in command else code), seconds, output

    monkeypatch.setattr(gpu_check, "_run", failing_bench)
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    assert sum("theorylab.reproduce" in c[0] for c in fake_gpu) == N_CHAPTERS
    assert "FAILED (exit 3)" in (tmp_path / "gpu-check-report.md").read_text()


def test_bad_budget_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path), "--budget", "0"])
