"""One training loop with a progress bar, for every chapter that trains."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from . import config


def train(params: Iterable[torch.nn.Parameter], loss_fn: Callable[[int], torch.Tensor], *,
          steps: int, lr: float, optimizer: str = "adam", schedule: str = "cosine",
          final_lr_fraction: float = 0.01, desc: str = "training",
          progress: bool = True) -> np.ndarray:
    """Minimise ``loss_fn(step)`` over ``params`` for ``steps`` steps; returns the loss per step.

    Parameters
    ----------
    params : iterable of parameters
        What the optimiser updates.
    loss_fn : callable
        ``loss_fn(step) -> scalar tensor``; it draws its own batch, so training can be online.
    steps : int
        Number of optimiser steps (at least 1).
    lr : float
        Initial learning rate (positive).
    optimizer : {"adam", "sgd"}
    schedule : {"cosine", "constant"}
        Cosine decay from ``lr`` to ``final_lr_fraction * lr``, or a constant rate.
    desc : str
        Label of the progress bar.
    progress : bool
        Show a tqdm progress bar (unless ``THEORYLAB_PROGRESS=0``, see :mod:`theorylab.config`).
    """
    params = list(params)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(lr, int | float) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not 0 < final_lr_fraction <= 1:
        raise ValueError(f"final_lr_fraction must lie in (0, 1], got {final_lr_fraction!r}")
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if schedule == "cosine":
        def factor(step):
            cos = 0.5 * (1 + math.cos(math.pi * step / steps))
            return final_lr_fraction + (1 - final_lr_fraction) * cos
    elif schedule == "constant":
        def factor(step):
            return 1.0
    else:
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    losses = np.empty(steps)
    shown = progress and config.show_progress()
    bar = tqdm(range(steps), desc=desc, disable=not shown, mininterval=0.5, leave=False)
    for step in bar:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}")
        loss.backward()
        opt.step()
        sched.step()
        losses[step] = loss.item()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{losses[step]:.4g}", refresh=False)
    return losses
