"""Standard supervised training on in-memory tensors, seeded and logged per epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from robustinv.runtime import model_device, seed_everything
from robustinv.training.recipe import Optimizer, TrainRecipe

log = logging.getLogger(__name__)

OPTIMIZERS: dict[Optimizer, Callable[[Iterator[nn.Parameter], TrainRecipe], torch.optim.Optimizer]] = {
    Optimizer.adam: lambda params, r: torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay),
    Optimizer.sgd: lambda params, r: torch.optim.SGD(
        params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay
    ),
}


def train_standard(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: TrainRecipe, *, seed: int, label: str = "model"
) -> float:
    """Train `model` in place with cross-entropy; returns the seconds spent."""
    seed_everything(seed)
    device = model_device(model)
    order = torch.Generator().manual_seed(seed)
    optimizer = OPTIMIZERS[recipe.optimizer](model.parameters(), recipe)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        total_loss, correct = 0.0, 0
        for index in torch.randperm(len(x), generator=order).split(recipe.batch_size):
            xb, yb = x[index].to(device), y[index].to(device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == yb).sum())
        log.info(
            "train %s: epoch %d/%d  loss %.4f  train acc %.2f%%  (%.0fs)",
            label, epoch, recipe.epochs, total_loss / len(x), 100 * correct / len(x), time.perf_counter() - start,
        )
    model.eval()
    return time.perf_counter() - start
