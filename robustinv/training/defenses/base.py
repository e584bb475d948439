"""The defense contract: a training objective, the loss of one batch at the current ε, registered by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.registry import Registry
from robustinv.training.inner import linf_pgd, uniform_start
from robustinv.training.recipe import AdversarialRecipe, TrainRecipe

Terms = dict[str, torch.Tensor]


class Defense(ABC):
    """One training objective; `adversarial` objectives need an `AdversarialRecipe`.

    `hyperparameters` names the recipe fields only this objective reads (TRADES' β); the other
    defenses' own fields stay out of its cache key, so changing β retrains `trades` alone.
    """

    adversarial: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        """The batch loss to minimize, and its named terms (detached) for the progress log."""

    def prepare(self, model: nn.Module, name: str) -> None:
        """Check, before the first step, that the model has what this objective needs."""


DEFENSES: Registry[type[Defense]] = Registry("defense")


def recipe_key(defense: str, recipe: TrainRecipe) -> dict[str, Any]:
    """The recipe fields that determine `defense`'s weights: the shared ones and its own hyper-parameters."""
    others = {name for other in DEFENSES.names() if other != defense for name in DEFENSES.get(other).hyperparameters}
    own = set(DEFENSES.get(defense).hyperparameters)
    return {key: value for key, value in recipe.model_dump(mode="json").items() if key not in others - own}


def ce_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, recipe: TrainRecipe) -> torch.Tensor:
    """PGD examples maximizing cross-entropy from a uniform random start (Madry et al.'s inner maximization)."""
    assert isinstance(recipe, AdversarialRecipe)
    return linf_pgd(
        model, x, lambda logits: F.cross_entropy(logits, y), eps=eps, steps=recipe.inner_steps,
        step_size=recipe.inner_step_size(eps), start=uniform_start(x, eps),
    )
