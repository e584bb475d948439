"""`pgd_at`: CE(f(x*), y), x* maximizing CE (Madry et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.training.defenses.base import DEFENSES, Defense, Terms, ce_adversarial
from robustinv.training.recipe import TrainRecipe


@DEFENSES.register("pgd_at")
class PgdAt(Defense):
    """Madry adversarial training: cross-entropy on PGD examples only."""

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        ce_adv = F.cross_entropy(model(ce_adversarial(model, x, y, eps, recipe)), y)
        return ce_adv, {"ce_adv": ce_adv.detach()}
