"""`trades`: CE(f(x), y) + β·KL(f(x) ‖ f(x*)), x* maximizing the KL (Zhang et al. 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.training.defenses.base import DEFENSES, Defense, Terms
from robustinv.gradient import frozen
from robustinv.training.inner import gaussian_start, linf_pgd
from robustinv.training.losses import trades_kl
from robustinv.training.recipe import AdversarialRecipe, TrainRecipe


@DEFENSES.register("trades")
class Trades(Defense):
    """TRADES: clean cross-entropy plus β·KL between clean and adversarial outputs."""

    hyperparameters = ("trades_beta",)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, recipe: TrainRecipe
    ) -> tuple[torch.Tensor, Terms]:
        assert isinstance(recipe, AdversarialRecipe)
        with torch.no_grad(), frozen(model):
            target = model(x)
        x_adv = linf_pgd(
            model, x, lambda logits: trades_kl(target, logits), eps=eps, steps=recipe.inner_steps,
            step_size=recipe.inner_step_size(eps), start=gaussian_start(x),
        )
        logits = model(torch.cat([x, x_adv]))
        clean_logits, adv_logits = logits.chunk(2)
        ce, kl = F.cross_entropy(clean_logits, y), trades_kl(clean_logits, adv_logits)
        return ce + recipe.trades_beta * kl, {"ce": ce.detach(), "kl": kl.detach()}
