"""The inner maximization of adversarial training: Linf PGD on any loss of the logits.

Kept separate from the evaluation attacks (ART) on purpose: it runs once per training batch,
so it freezes the parameters (no weight gradients), runs in the model's current device and
accepts a custom objective (cross-entropy for Madry, KL to the clean output for TRADES). The
loop is the harness's one projected-gradient template, `robustinv.gradient.signed_steps`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustinv.gradient import signed_steps

LogitLoss = Callable[[torch.Tensor], torch.Tensor]


def linf_pgd(
    model: nn.Module, x: torch.Tensor, loss_of_logits: LogitLoss, *, eps: float, steps: int, step_size: float,
    start: torch.Tensor,
) -> torch.Tensor:
    """Maximize `loss_of_logits(model(x + δ))` over ‖δ‖∞ ≤ ε with x + δ in [0, 1], from `x + start`."""
    return signed_steps(model, x, start, lambda logits, _: -loss_of_logits(logits), eps=eps, steps=steps,
                        step_size=step_size)


def uniform_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    return (torch.rand_like(x) * 2 - 1) * eps


def gaussian_start(x: torch.Tensor, scale: float = 1e-3) -> torch.Tensor:
    """TRADES' start: a tiny Gaussian step, since its KL objective has zero gradient at x* = x."""
    return torch.randn_like(x) * scale
