"""Run-time settings shared by every chapter: the scale and the device.

The scale is read from the environment variable ``THEORYLAB_SCALE``:

* ``small`` (default): every chapter runs in under a minute on two CPU cores;
* ``full``: the paper-scale cells, meant for a GPU.

``THEORYLAB_PROGRESS=0`` turns the training progress bars off: the book's build and ``make reproduce``
set it, because a progress bar is a live widget that means nothing in a rendered page.

``THEORYLAB_DEVICE`` (``cpu``, ``cuda`` or ``cuda:N``) overrides the device; asking for CUDA on a
machine without it is a clear error, not a crash deep inside torch.
"""

from __future__ import annotations

import os
import warnings

import torch

SCALES = ("small", "full")

_warned_full_on_cpu = False


def scale() -> str:
    """The current scale, ``"small"`` or ``"full"`` (from ``THEORYLAB_SCALE``).

    ``full`` on a machine without a GPU is allowed (the paper-scale cells then run on the CPU, slowly)
    but warns once.
    """
    global _warned_full_on_cpu
    value = os.environ.get("THEORYLAB_SCALE", "small").strip().lower() or "small"
    if value not in SCALES:
        raise ValueError(f"THEORYLAB_SCALE must be one of {SCALES}, got {value!r}")
    if value == "full" and not _warned_full_on_cpu and device().type == "cpu":
        _warned_full_on_cpu = True
        warnings.warn("THEORYLAB_SCALE=full without a GPU: the paper-scale cells run on the CPU and may take "
                      "hours", RuntimeWarning, stacklevel=2)
    return value


def is_full() -> bool:
    """True when the paper-scale cells should run."""
    return scale() == "full"


def at_scale(small, full):
    """Pick ``small`` or ``full`` by the current scale: ``n_max = at_scale(80, 1000)``."""
    return full if is_full() else small


def device() -> torch.device:
    """The device from ``THEORYLAB_DEVICE`` if set, else CUDA when a GPU is present, else the CPU."""
    wanted = os.environ.get("THEORYLAB_DEVICE", "").strip().lower()
    if not wanted:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(wanted)
    except RuntimeError:
        raise ValueError(f"THEORYLAB_DEVICE must be 'cpu', 'cuda' or 'cuda:N', got {wanted!r}") from None
    if chosen.type not in ("cpu", "cuda"):
        raise ValueError(f"THEORYLAB_DEVICE must be 'cpu', 'cuda' or 'cuda:N', got {wanted!r}")
    if chosen.type == "cuda":
        check_cuda(chosen)
    return chosen


def check_cuda(where, *, name: str = "where") -> None:
    """Raise a clear ``RuntimeError`` when ``where`` (a ``torch.device`` or its name) is a CUDA device this
    machine does not have; a CPU device passes. A name that is no device is a ``ValueError`` that calls the
    argument ``name``."""
    if not isinstance(where, torch.device):
        try:
            where = torch.device(where)
        except (TypeError, RuntimeError):
            raise ValueError(f"{name} must be a device ('cpu', 'cuda' or 'cuda:N'), got {where!r}") from None
    if where.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {str(where)!r} was asked for, but this machine has no CUDA GPU (or torch "
                           "was built without CUDA); use 'cpu'")
    if where.index is not None and where.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {str(where)!r} was asked for, but only {torch.cuda.device_count()} "
                           "CUDA device(s) exist")


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def show_progress() -> bool:
    """Whether training progress bars are shown: ``THEORYLAB_PROGRESS`` is ``1``/``true``/``yes``/``on``
    (the default) or ``0``/``false``/``no``/``off``; anything else is an error."""
    value = os.environ.get("THEORYLAB_PROGRESS", "1").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"THEORYLAB_PROGRESS must be one of {_TRUE + _FALSE}, got {value!r}")
