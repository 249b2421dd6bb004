"""Pretrained features for scikit-learn's digits (a small network trained with a hand-written Adam)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..seeding import make_generator, resolve_seed
from ..utils.threads import single_threaded
from ..utils.validation import check_int, check_real


@dataclass(frozen=True)
class DigitFeatures:
    """Frozen features of a pretrained network on held-out digits (:func:`pretrained_digit_features`).

    Attributes
    ----------
    features : Tensor [M, hidden], float64: the hidden activations of the held-out half (M = 899 images),
        standardised with the pretraining half's mean and standard deviation.
    labels : Tensor [M], int64: their classes 0 … 9.
    pretrain_accuracy : the network's own accuracy (a fraction) on its pretraining half.
    transfer_accuracy : its accuracy on the held-out half.
    """

    features: torch.Tensor
    labels: torch.Tensor
    pretrain_accuracy: float
    transfer_accuracy: float


@single_threaded()
def pretrained_digit_features(*, hidden: int = 32, steps: int = 300, lr: float = 0.01,
                              seed: int | None = None) -> DigitFeatures:
    """Features of a small network pretrained on half of scikit-learn's digits, for the other half.

    The 1797 images (64 pixels scaled to [0, 1], 10 classes) are split at random into two halves. A
    one-hidden-layer ReLU network (64 → ``hidden`` → 10) is trained on the first half (full-batch Adam,
    ``steps`` steps, cross-entropy), then frozen. Its hidden activations on the second half, standardised
    with the first half's mean and standard deviation (part of the frozen feature map), are the
    "pretrained features".

    Returns a :class:`DigitFeatures`: ``features`` [M, hidden], ``labels`` [M] and the network's own
    accuracies on the first half (``pretrain_accuracy``) and on the second (``transfer_accuracy``).
    """
    seed = resolve_seed(seed, "generative.pretrained_digit_features")
    from sklearn.datasets import load_digits

    hidden, steps = check_int("hidden", hidden, low=1), check_int("steps", steps, low=1)
    lr = check_real("lr", lr, low=0, low_open=True)
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    gen = make_generator(seed)
    perm = torch.randperm(len(y), generator=gen)
    first_half, second_half = perm[: len(y) // 2], perm[len(y) // 2:]
    net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / math.sqrt(p.shape[-1])))
    # Full-batch Adam written out: constructing a torch.optim optimiser imports torch._dynamo, which
    # takes about two seconds, longer than this training.
    params = list(net.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    for step in range(1, steps + 1):
        loss = torch.nn.functional.cross_entropy(net(X[first_half]), y[first_half])
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, m1, m2 in zip(params, grads, first, second, strict=True):
                m1.mul_(0.9).add_(g, alpha=0.1)
                m2.mul_(0.999).addcmul_(g, g, value=0.001)
                p.sub_(lr * (m1 / (1 - 0.9**step)) / ((m2 / (1 - 0.999**step)).sqrt() + 1e-8))
    with torch.no_grad():
        body = net[:2]
        h_first, h_second = body(X[first_half]).double(), body(X[second_half]).double()
        mu, sd = h_first.mean(0), h_first.std(0)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        acc_first = (net(X[first_half]).argmax(1) == y[first_half]).double().mean().item()
        acc_second = (net(X[second_half]).argmax(1) == y[second_half]).double().mean().item()
    return DigitFeatures(features=(h_second - mu) / sd, labels=y[second_half], pretrain_accuracy=acc_first,
                         transfer_accuracy=acc_second)
