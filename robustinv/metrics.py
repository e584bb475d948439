"""Robustness metrics as pure functions on tensors (no models, no I/O).

Robust accuracy is unconditional (RobustBench): an input counts as robust only when the model
classifies it correctly both clean and under attack. Success rate is taken over the inputs the
model gets right when clean.
"""

from __future__ import annotations

import torch


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of predictions equal to the labels."""
    return float((pred == y).double().mean()) if len(y) else float("nan")


def robust_accuracy(clean_pred: torch.Tensor, adv_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction correct clean *and* under attack, over all inputs."""
    return float(((clean_pred == y) & (adv_pred == y)).double().mean()) if len(y) else float("nan")


def success_rate(clean_pred: torch.Tensor, adv_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of clean-correct inputs the attack makes misclassified; NaN when none are correct."""
    correct = clean_pred == y
    if not bool(correct.any()):
        return float("nan")
    return float((adv_pred[correct] != y[correct]).double().mean())


def linf_norms(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Per-input Linf norm of the perturbation."""
    return (x_adv - x).flatten(1).abs().amax(1)


def l2_norms(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Per-input L2 norm of the perturbation."""
    return (x_adv - x).flatten(1).norm(p=2, dim=1)
