"""The one training loop of every recipe: seeded batches, ε warm-up, LR schedule, per-epoch log."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import torch
from torch import nn

from robustinv.errors import RobustinvError
from robustinv.runtime import model_device, seed_everything
from robustinv.training.defenses import DEFENSES
from robustinv.training.recipe import AdversarialRecipe, Optimizer, Schedule, TrainRecipe

log = logging.getLogger(__name__)

OPTIMIZERS: dict[Optimizer, Callable[[Iterator[nn.Parameter], TrainRecipe], torch.optim.Optimizer]] = {
    Optimizer.adam: lambda params, r: torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay),
    Optimizer.sgd: lambda params, r: torch.optim.SGD(
        params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay
    ),
}

EpochMonitor = Callable[[int, nn.Module], None]


def train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe, *, defense: str = "standard",
    seed: int, label: str = "model", on_epoch: EpochMonitor | None = None,
) -> float:
    """Train `model` in place with the named defense's objective; returns the seconds spent.

    `on_epoch(epoch, model)` is called after every epoch (outside the timed part), e.g. to
    record a robust-accuracy curve.
    """
    objective = DEFENSES.get(defense)()
    if objective.adversarial and not isinstance(recipe, AdversarialRecipe):
        raise RobustinvError(f"defense {defense!r} needs an adversarial recipe (eps, inner attack)")
    objective.prepare(model, label)
    seed_everything(seed)
    device = model_device(model)
    order = torch.Generator().manual_seed(seed)
    optimizer = OPTIMIZERS[recipe.optimizer](model.parameters(), recipe)
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    total_steps = recipe.epochs * steps_per_epoch
    scheduler = _scheduler(optimizer, recipe, total_steps)
    step, seconds = 0, 0.0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        start = time.perf_counter()
        sums: dict[str, float] = defaultdict(float)
        eps = 0.0
        for index in torch.randperm(len(x), generator=order).split(recipe.batch_size):
            xb, yb = x[index].to(device), y[index].to(device)
            eps = warmed_up_eps(recipe, step, total_steps)
            loss, terms = objective.loss(model, xb, yb, eps=eps, recipe=recipe)
            if not torch.isfinite(loss):
                raise RobustinvError(f"training {label} ({defense}) diverged: loss {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            for name, value in terms.items():
                sums[name] += float(value) * len(index)
        seconds += time.perf_counter() - start
        summary = "  ".join(f"{name} {total / len(x):.4f}" for name, total in sums.items())
        eta = seconds / epoch * (recipe.epochs - epoch)
        log.info("train %s (%s): epoch %d/%d  %s%s  (%.0fs, ~%.0fs left)", label, defense, epoch, recipe.epochs,
                 summary, f"  ε {eps:.3f}" if objective.adversarial else "", seconds, eta)
        if on_epoch is not None:
            on_epoch(epoch, model)
    model.eval()
    return seconds


def warmed_up_eps(recipe: TrainRecipe, step: int, total_steps: int) -> float:
    """ε rises linearly to its full value over the first `warmup` fraction of the steps."""
    if not isinstance(recipe, AdversarialRecipe):
        return 0.0
    ramp = recipe.warmup * total_steps
    return recipe.eps if ramp < 1 else recipe.eps * min(1.0, (step + 1) / ramp)


def _scheduler(
    optimizer: torch.optim.Optimizer, recipe: TrainRecipe, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if getattr(recipe, "schedule", Schedule.constant) is Schedule.onecycle:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total_steps, pct_start=0.3)
    return None
