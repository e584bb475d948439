"""`consistency_at`: CE(f(x), y) + CE(f(x*), y) + λ·‖φ(x) − φ(x*)‖² (Dong et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.models.features import logits_and_features
from robustinv.training.defenses.base import DEFENSES, Defense, Terms, ce_adversarial
from robustinv.training.losses import consistency_term
from robustinv.training.recipe import AdversarialRecipe, TrainRecipe


@DEFENSES.register("consistency_at")
class ConsistencyAt(Defense):
    """Adversarial training with a consistency loss tying clean and adversarial penultimate features."""

    hyperparameters = ("consistency_weight",)

    def prepare(self, model: nn.Module, name: str) -> None:
        logits_and_features(model, name)  # raises ModelError when there is no penultimate layer

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        assert isinstance(recipe, AdversarialRecipe)
        x_adv = ce_adversarial(model, x, y, eps, recipe)
        logits, features = logits_and_features(model)(torch.cat([x, x_adv]))
        clean_logits, adv_logits = logits.chunk(2)
        clean_features, adv_features = features.chunk(2)
        ce, ce_adv = F.cross_entropy(clean_logits, y), F.cross_entropy(adv_logits, y)
        consistency = consistency_term(clean_features, adv_features)
        total = ce + ce_adv + recipe.consistency_weight * consistency
        return total, {"ce": ce.detach(), "ce_adv": ce_adv.detach(), "consistency": consistency.detach()}
