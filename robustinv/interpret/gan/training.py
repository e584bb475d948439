"""Train an explainer generator against a PatchGAN, pix2pix style, and predict maps with it.

Deviations from the reference code (github Akash-guna/Explain-CNN-With-GANS), each a fault there:
the discriminator gives raw logits scored by BCE-with-logits (its softmax over one unit made the
adversarial gradient zero), and the generator's update shows the discriminator (image, fake map),
the pair it was trained on, not (real map, fake map).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.interpret.gan.networks import Discriminator, ExplainerGenerator, ExplainMode, build_generator
from robustinv.interpret.gan.recipe import ExplainerRecipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's losses, each the mean over its samples."""

    epoch: int
    generator_adversarial: float
    l1: float
    discriminator: float


@dataclass(frozen=True)
class TrainedExplainer:
    """The trained generator (in eval mode), its per-epoch losses and the wall-clock training time."""

    generator: ExplainerGenerator
    history: tuple[EpochRecord, ...]
    seconds: float


def _check(images: torch.Tensor, conditions: torch.Tensor | None, targets: torch.Tensor, mode: ExplainMode) -> None:
    n, _, h, w = images.shape
    if targets.shape != (n, 1, h, w):
        raise ValueError(f"targets must be maps of shape {(n, 1, h, w)}, got {tuple(targets.shape)}")
    if mode.uses_conditions and (conditions is None or conditions.shape[0] != n or conditions.shape[2:] != (h, w)):
        got = None if conditions is None else tuple(conditions.shape)
        raise ValueError(f"{mode.value} needs conditions of shape ({n}, K, {h}, {w}), got {got}")


def _step(
    generator: ExplainerGenerator, disc: Discriminator, g_opt: torch.optim.Optimizer, d_opt: torch.optim.Optimizer,
    images: torch.Tensor, conditions: torch.Tensor | None, real: torch.Tensor, *, l1_weight: float,
) -> tuple[float, float, float]:
    """One pix2pix update of D, then of G, on a batch; returns (G adversarial, L1, D) losses."""
    bce = F.binary_cross_entropy_with_logits
    raw = generator(images, conditions)
    fake = raw.clamp(0, 1)  # what the discriminator judges is the map `predict_maps` returns

    real_logits, fake_logits = disc(images, real), disc(images, fake.detach())
    # Halved as in pix2pix: it slows the rate at which D learns relative to G.
    d_loss = 0.5 * (bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits)))
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()

    fooled = disc(images, fake)
    adversarial = bce(fooled, torch.ones_like(fooled))
    l1 = (raw - real).abs().mean()  # on the unclamped output, so every pixel keeps its gradient
    g_opt.zero_grad(set_to_none=True)
    (adversarial + l1_weight * l1).backward()
    g_opt.step()
    return adversarial.item(), l1.item(), d_loss.item()


def train_explainer(
    mode: ExplainMode, images: torch.Tensor, conditions: torch.Tensor | None, targets: torch.Tensor, *,
    recipe: ExplainerRecipe, seed: int, on_epoch: Callable[[int, int], None] | None = None,
) -> TrainedExplainer:
    """Fit G(image, conditions) → target map with loss BCE(D(image, G), real) + l1_weight·L1(G, target).

    Args:
        images: (N, C, H, W) inputs of the classifier.
        conditions: (N, K, H, W) condition maps, deepest layer first; unused (may be None) in `amortized`.
        targets: (N, 1, H, W) maps in [0, 1] the generator learns to produce.
        seed: decides the initial weights and the batch order; the global RNG is left untouched.
        on_epoch: called as on_epoch(epoch, epochs) after each epoch, for progress.
    """
    mode = ExplainMode(mode)
    _check(images, conditions, targets, mode)
    device = images.device
    n_conditions = conditions.shape[1] if conditions is not None else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = build_generator(mode, image_channels=images.shape[1], n_conditions=n_conditions,
                                    width=recipe.width).to(device)
        disc = Discriminator(images.shape[1], width=recipe.disc_width).to(device)
    betas = (recipe.beta1, 0.999)
    g_opt = torch.optim.Adam(generator.parameters(), lr=recipe.lr, betas=betas)
    d_opt = torch.optim.Adam(disc.parameters(), lr=recipe.lr, betas=betas)
    rng = torch.Generator().manual_seed(seed)
    history: list[EpochRecord] = []
    start = time.perf_counter()
    generator.train()
    disc.train()
    for epoch in range(1, recipe.epochs + 1):
        sums = torch.zeros(3, dtype=torch.float64)
        for index in torch.randperm(len(images), generator=rng).split(recipe.batch_size):
            index = index.to(device)
            batch_conditions = None if conditions is None else conditions[index]
            losses = _step(generator, disc, g_opt, d_opt, images[index], batch_conditions, targets[index],
                           l1_weight=recipe.l1_weight)
            sums += len(index) * torch.tensor(losses, dtype=torch.float64)
        adv_mean, l1_mean, d_mean = (sums / len(images)).tolist()
        history.append(EpochRecord(epoch, adv_mean, l1_mean, d_mean))
        log.info("explainer %s: epoch %d/%d  G adv %.3f  L1 %.4f  D %.3f  (%.0fs)", mode.value, epoch,
                 recipe.epochs, adv_mean, l1_mean, d_mean, time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(epoch, recipe.epochs)
    generator.eval()
    return TrainedExplainer(generator, tuple(history), time.perf_counter() - start)


@torch.no_grad()
def predict_maps(
    generator: nn.Module, images: torch.Tensor, conditions: torch.Tensor | None, *, batch_size: int = 256,
) -> torch.Tensor:
    """The generator's maps (N, 1, H, W) in [0, 1] for `images`, batch by batch, in eval mode; its mode is restored."""
    was_training = generator.training
    generator.eval()
    try:
        maps = [generator(images[i : i + batch_size], None if conditions is None else conditions[i : i + batch_size])
                .clamp(0, 1) for i in range(0, len(images), batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(maps)
