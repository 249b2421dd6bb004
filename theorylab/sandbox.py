"""Running a student's notebook at arm's length: a private folder, a short environment, and no process
that outlives the grading.

What this gives (on Linux): the kernel starts in a fresh temporary folder that holds nothing of the
book, with an environment of a few whitelisted variables (no secrets, no paths of the grader's), and
every process it starts — including ones that detach with ``setsid`` or double-fork — is killed when
grading ends: the grading process makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``),
so orphaned descendants are re-parented to it instead of to init, and it kills every descendant that
appeared while grading.

What no in-kernel sandbox gives: code in the kernel runs as the grading user, so it can read what that
user can read; keep the instructor's book outside what students can see and grade with ``--book``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ENV_KEEP", "kernel_environment", "isolated_folder", "reaping"]

#: Variables passed from the grader's environment to the student's kernel; everything else is dropped.
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "THEORYLAB_SCALE",
            "THEORYLAB_SEED", "THEORYLAB_DEVICE", "CUDA_VISIBLE_DEVICES", "VIRTUAL_ENV")


def kernel_environment(home: Path) -> dict[str, str]:
    """The student's kernel's whole environment: :data:`ENV_KEEP` plus a private HOME and TMPDIR."""
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home), MPLCONFIGDIR=str(home / ".matplotlib"),
               IPYTHONDIR=str(home / ".ipython"), THEORYLAB_PROGRESS="0", PYTHONDONTWRITEBYTECODE="1")
    return env


@contextmanager
def isolated_folder():
    """A fresh, empty temporary folder (removed afterwards) for the kernel to run in."""
    with tempfile.TemporaryDirectory(prefix="theorylab-grading-") as folder:
        yield Path(folder)


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields after the last ')' are fixed
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int | None = None) -> set[int]:
    """Every live descendant of ``pid`` (default: this process), from ``/proc``."""
    if not os.path.isdir("/proc"):
        return set()
    children, found, stack = _children_map(), set(), [os.getpid() if pid is None else pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _reap(pids) -> None:
    """Collect the exit status of those of ``pids`` that are our children (they became ours as
    orphans); others' children are left to their parents."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


@contextmanager
def reaping():
    """Kill, on exit, every descendant process that appeared inside the ``with`` block.

    Yields a list that receives a note for each round of processes killed.
    """
    _become_subreaper()
    before = descendants()
    notes: list[str] = []
    try:
        yield notes
    finally:
        killed: set[int] = set()
        for _ in range(20):   # a process may fork while we kill: sweep until none is left
            new = descendants() - before - killed
            if not new:
                break
            for pid in new:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            killed |= new
            time.sleep(0.05)
            _reap(killed)
        if killed:
            notes.append(f"killed {len(killed)} process(es) the submission left running")
        _reap(killed)
