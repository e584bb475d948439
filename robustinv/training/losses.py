"""Defense loss terms as pure functions on tensors (DESIGN §4.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def consistency_term(clean_features: torch.Tensor, adv_features: torch.Tensor) -> torch.Tensor:
    """‖φ(x) − φ(x*)‖², summed over features and averaged over the batch; 0 when they match."""
    return (clean_features.flatten(1) - adv_features.flatten(1)).pow(2).sum(1).mean()


def trades_kl(clean_logits: torch.Tensor, adv_logits: torch.Tensor) -> torch.Tensor:
    """KL(f(x) ‖ f(x*)) between the softmax outputs, averaged over the batch (TRADES' robust term)."""
    return F.kl_div(F.log_softmax(adv_logits, dim=1), F.softmax(clean_logits, dim=1), reduction="batchmean")

