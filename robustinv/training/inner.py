"""The inner maximization of adversarial training: Linf PGD on any loss of the logits.

Kept separate from the evaluation attacks (ART) on purpose: it runs once per training batch,
so it freezes the parameters (no weight gradients), runs in the model's current device and
accepts a custom objective (cross-entropy for Madry, KL to the clean output for TRADES).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

LogitLoss = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """No parameter gradients inside the block (input gradients only); eval mode for the attack."""
    flags = [p.requires_grad for p in model.parameters()]
    training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(training)


def linf_pgd(
    model: nn.Module, x: torch.Tensor, loss_of_logits: LogitLoss, *, eps: float, steps: int, step_size: float,
    start: torch.Tensor,
) -> torch.Tensor:
    """Maximize `loss_of_logits(model(x + δ))` over ‖δ‖∞ ≤ ε with x + δ in [0, 1], from `x + start`."""
    delta = ((x + start).clamp(0, 1) - x).clamp(-eps, eps)
    with frozen_parameters(model):
        for _ in range(steps):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_of_logits(model(x + delta)), delta)
            delta = (delta.detach() + step_size * grad.sign()).clamp(-eps, eps)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def uniform_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    return (torch.rand_like(x) * 2 - 1) * eps


def gaussian_start(x: torch.Tensor, scale: float = 1e-3) -> torch.Tensor:
    """TRADES' start: a tiny Gaussian step, since its KL objective has zero gradient at x* = x."""
    return torch.randn_like(x) * scale
