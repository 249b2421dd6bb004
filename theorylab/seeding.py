"""Randomness: one seed knob, named streams, and generators; same seed, same numbers.

Every random draw of the book derives from one integer, ``THEORYLAB_SEED`` (default 0). A chapter
never writes a literal seed: it asks for a *named stream*::

    X, y = sample_views(1000, lam, rho, seed=seed("jepa-views"))

:func:`seed` hashes the base seed and the name into a 31-bit integer, so streams with different names
are independent, the same name gives the same numbers, and changing ``THEORYLAB_SEED`` changes every
stream at once. Library functions take ``seed`` (an int or a ``torch.Generator``); ``None`` means the
stream named after the function, derived from ``THEORYLAB_SEED`` like any other.
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch

from . import config
from .utils.validation import check_int

__all__ = ["base_seed", "seed", "make_generator", "resolve_seed", "seed_everything"]

_MAX_SEED = 2**31 - 1


def base_seed() -> int:
    """The value of ``THEORYLAB_SEED`` (a non-negative integer, default 0)."""
    text = os.environ.get("THEORYLAB_SEED", "0").strip() or "0"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"THEORYLAB_SEED must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise ValueError(f"THEORYLAB_SEED must be a non-negative integer, got {text!r}")
    return value


def seed(name: str, *, base: int | None = None) -> int:
    """The seed of the stream called ``name``, derived from ``THEORYLAB_SEED`` (an int in [0, 2³¹)).

    Names are free text (``"icl-trained"``, ``"stability-sgd[B=4]"``); two names give independent
    streams, and one name gives the same seed until ``THEORYLAB_SEED`` changes. ``base`` (an int ≥ 0)
    stands in for ``THEORYLAB_SEED``: the stream a chapter run at that seed would draw (a calibration
    over many seeds uses it).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string naming the random stream, got {name!r}")
    base = base_seed() if base is None else check_int("base", base, low=0)
    digest = hashlib.sha256(f"{base}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % _MAX_SEED


def resolve_seed(value: int | None, name: str) -> int:
    """``value`` checked as a seed (an int ≥ 0, numpy integers too), or :func:`seed` of ``name`` when
    ``value`` is ``None``."""
    if value is None:
        return seed(name)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"seed must be non-negative, got {value}")
    return int(value)


def make_generator(seed: int | torch.Generator | None = None, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (an existing generator is returned as is;
    ``None`` gives the stream ``"default"`` of ``THEORYLAB_SEED``)."""
    if isinstance(seed, torch.Generator):
        return seed
    value = resolve_seed(seed, "default")
    config.check_cuda(device, name="device")     # a clear error for a CUDA device this machine lacks
    gen = torch.Generator(device=device)
    gen.manual_seed(value)
    return gen


def seed_everything(seed: int | None = None) -> None:
    """Seed Python's, NumPy's and torch's global generators (for code that uses them implicitly);
    ``None`` uses the stream ``"global"`` of ``THEORYLAB_SEED``."""
    value = resolve_seed(seed, "global")
    random.seed(value)
    np.random.seed(value)  # noqa: NPY002 -- seeding the legacy global generator is the point
    torch.manual_seed(value)
