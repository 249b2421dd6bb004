"""Randomness: every sampling function takes a seed or a ``torch.Generator``; same seed, same numbers."""

from __future__ import annotations

import random

import numpy as np
import torch


def make_generator(seed: int | torch.Generator | None = 0, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (an existing generator is returned as is)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        seed = 0
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and torch's global generators (for code that uses them implicitly)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- seeding the legacy global generator is the point
    torch.manual_seed(seed)
