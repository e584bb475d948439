"""`standard`: CE(f(x), y), the model as a team would ship it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.training.defenses.base import DEFENSES, Defense, Terms
from robustinv.training.recipe import TrainRecipe


@DEFENSES.register("standard")
class Standard(Defense):
    """Cross-entropy on clean inputs: the model as a team would ship it."""

    adversarial = False

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        ce = F.cross_entropy(model(x), y)
        return ce, {"ce": ce.detach()}
