"""Run-time settings shared by every chapter: the scale, the device and the dtype for theory checks.

The scale is read from the environment variable ``THEORYLAB_SCALE``:

* ``small`` (default): every chapter runs in under a minute on two CPU cores;
* ``full``: the paper-scale cells, meant for a GPU.

``THEORYLAB_PROGRESS=0`` turns the training progress bars off: the book's build and ``make reproduce``
set it, because a progress bar is a live widget that means nothing in a rendered page.
"""

from __future__ import annotations

import os

import torch

SCALES = ("small", "full")

#: dtype for every computation whose result is compared with a formula.
THEORY_DTYPE = torch.float64


def scale() -> str:
    """The current scale, ``"small"`` or ``"full"`` (from ``THEORYLAB_SCALE``)."""
    value = os.environ.get("THEORYLAB_SCALE", "small").strip().lower() or "small"
    if value not in SCALES:
        raise ValueError(f"THEORYLAB_SCALE must be one of {SCALES}, got {value!r}")
    return value


def is_full() -> bool:
    """True when the paper-scale cells should run."""
    return scale() == "full"


def at_scale(small, full):
    """Pick ``small`` or ``full`` by the current scale: ``n_max = at_scale(80, 1000)``."""
    return full if is_full() else small


def device() -> torch.device:
    """CUDA when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def show_progress() -> bool:
    """False when ``THEORYLAB_PROGRESS`` is ``0``/``false``/``no``/``off``: progress bars stay hidden."""
    return os.environ.get("THEORYLAB_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")
