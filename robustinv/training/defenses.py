"""Training objectives, registered by name: the loss of one batch at the current ε.

`standard`        CE(f(x), y)
`pgd_at`          CE(f(x*), y), x* maximizing CE (Madry et al. 2018)
`consistency_at`  CE(f(x), y) + CE(f(x*), y) + λ·‖φ(x) − φ(x*)‖² (Dong et al. 2017)
`trades`          CE(f(x), y) + β·KL(f(x) ‖ f(x*)), x* maximizing the KL (Zhang et al. 2019)
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.models.features import logits_and_features
from robustinv.registry import Registry
from robustinv.training.inner import frozen_parameters, gaussian_start, linf_pgd, uniform_start
from robustinv.training.losses import consistency_term, trades_kl
from robustinv.training.recipe import AdversarialRecipe, TrainRecipe

Terms = dict[str, torch.Tensor]


class Defense(ABC):
    """One training objective; `adversarial` objectives need an `AdversarialRecipe`."""

    adversarial = True

    @abstractmethod
    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        """The batch loss to minimize, and its named terms (detached) for the progress log."""

    def prepare(self, model: nn.Module, name: str) -> None:
        """Check, before the first step, that the model has what this objective needs."""


DEFENSES: Registry[type[Defense]] = Registry("defense")


def _ce_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, recipe: TrainRecipe) -> torch.Tensor:
    assert isinstance(recipe, AdversarialRecipe)
    return linf_pgd(
        model, x, lambda logits: F.cross_entropy(logits, y), eps=eps, steps=recipe.inner_steps,
        step_size=recipe.inner_step_size(eps), start=uniform_start(x, eps),
    )


@DEFENSES.register("standard")
class Standard(Defense):
    """Cross-entropy on clean inputs: the model as a team would ship it."""

    adversarial = False

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        ce = F.cross_entropy(model(x), y)
        return ce, {"ce": ce.detach()}


@DEFENSES.register("pgd_at")
class PgdAt(Defense):
    """Madry adversarial training: cross-entropy on PGD examples only."""

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        ce_adv = F.cross_entropy(model(_ce_adversarial(model, x, y, eps, recipe)), y)
        return ce_adv, {"ce_adv": ce_adv.detach()}


@DEFENSES.register("consistency_at")
class ConsistencyAt(Defense):
    """Adversarial training with a consistency loss tying clean and adversarial penultimate features."""

    def prepare(self, model: nn.Module, name: str) -> None:
        logits_and_features(model, name)  # raises ModelError when there is no penultimate layer

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        assert isinstance(recipe, AdversarialRecipe)
        x_adv = _ce_adversarial(model, x, y, eps, recipe)
        logits, features = logits_and_features(model)(torch.cat([x, x_adv]))
        clean_logits, adv_logits = logits.chunk(2)
        clean_features, adv_features = features.chunk(2)
        ce, ce_adv = F.cross_entropy(clean_logits, y), F.cross_entropy(adv_logits, y)
        consistency = consistency_term(clean_features, adv_features)
        total = ce + ce_adv + recipe.consistency_weight * consistency
        return total, {"ce": ce.detach(), "ce_adv": ce_adv.detach(), "consistency": consistency.detach()}


@DEFENSES.register("trades")
class Trades(Defense):
    """TRADES: clean cross-entropy plus β·KL between clean and adversarial outputs."""

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        assert isinstance(recipe, AdversarialRecipe)
        with torch.no_grad(), frozen_parameters(model):
            target = model(x)
        x_adv = linf_pgd(
            model, x, lambda logits: trades_kl(target, logits), eps=eps, steps=recipe.inner_steps,
            step_size=recipe.inner_step_size(eps), start=gaussian_start(x),
        )
        logits = model(torch.cat([x, x_adv]))
        clean_logits, adv_logits = logits.chunk(2)
        ce, kl = F.cross_entropy(clean_logits, y), trades_kl(clean_logits, adv_logits)
        return ce + recipe.trades_beta * kl, {"ce": ce.detach(), "kl": kl.detach()}

