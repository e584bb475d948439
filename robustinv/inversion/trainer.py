"""Train inverting generators against a frozen classifier, with held-out evaluation as it goes."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustinv.gradient import frozen
from robustinv.inversion.encoding import rotating_targets, soft_codes, wrong_class_targets
from robustinv.inversion.generator import FreeGenerator, InversionError, PerturbGenerator
from robustinv.inversion.losses import inversion_loss
from robustinv.inversion.recipe import GeneratorRecipe
from robustinv.inversion.teachers import distill_term, distillation_targets, imitation_term, refined_straight_through
from robustinv.models.features import logits_and_features
from robustinv.runtime import model_device, seed_everything

log = logging.getLogger(__name__)

HELD_OUT = 500


@dataclass(frozen=True)
class TrainingLog:
    """What training a generator took and how it went: held-out single-shot success at each evaluation.

    `kept_step` is the step whose weights were kept (the best evaluation when the recipe stops
    early, else the last step).
    """

    seconds: float
    curve: tuple[tuple[int, float], ...] = ()
    kept_step: int = 0

    def progress(self) -> dict[str, Any]:
        """The held-out curve and the kept step: what a result row records (its timing has columns of its own)."""
        return {"curve": [list(point) for point in self.curve], "kept_step": self.kept_step}

    def record(self) -> dict[str, Any]:
        return {"train_seconds": self.seconds, **self.progress()}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainingLog:
        curve = tuple((int(step), float(rate)) for step, rate in record.get("curve", []))
        return cls(float(record.get("train_seconds", 0.0)), curve, int(record.get("kept_step", 0)))


def train_perturb_generator(
    model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, num_classes: int, *,
    eps: float, targeted: bool, recipe: GeneratorRecipe, seed: int, label: str = "generator",
) -> tuple[PerturbGenerator, TrainingLog]:
    """Train G(x, z, c) to move x within ε into the coded wrong class (targeted) or any wrong class.

    With `recipe.patience`, training stops after that many held-out evaluations without a better
    success rate and keeps the best weights seen. With `recipe.distill`, PGD examples of the
    training pool are computed first (their time counts as training time). The held-out images
    are never trained on.
    """
    device = model_device(model)
    forward = logits_and_features(model, label)
    seed_everything(seed)
    rng = torch.Generator().manual_seed(seed)
    generator = PerturbGenerator(tuple(x_train.shape[1:]), num_classes, width=recipe.width, z_dim=recipe.z_dim,  # type: ignore[arg-type]
                                 dropout=recipe.dropout, use_hot_matrix=recipe.hot_matrix,
                                 saturate=recipe.saturate).to(device)
    order = torch.randperm(len(x_train), generator=rng)
    hold = order[: min(HELD_OUT, len(order) // 10)]
    pool = order[len(hold):]
    start = time.perf_counter()
    teacher = None
    if recipe.distill > 0:
        if targeted:
            raise InversionError("distillation learns from untargeted PGD examples; use it with targeted = false")
        pool = pool[: recipe.distill_images]
        teacher, fooled, seconds = distillation_targets(model, x_train[pool], y_train[pool], eps=eps,
                                                        steps=recipe.distill_steps, seed=seed)
        log.info("generator %s: %d PGD-%d distillation targets, %.1f%% fool the model (%.0fs)", label, len(pool),
                 recipe.distill_steps, 100 * fooled, seconds)
    kl, ce, cos = recipe.weights(targeted=targeted)
    pattern = list(generator.pattern.parameters())
    rest = [p for p in generator.parameters() if all(p is not q for q in pattern)]
    groups: list[dict[str, Any]] = [{"params": rest}, {"params": pattern, "lr": recipe.lr * recipe.pattern_lr_scale}]
    optimizer = torch.optim.Adam(groups, lr=recipe.lr, betas=(0.5, 0.999))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.steps) if recipe.schedule == "cosine" else None
    curve: list[tuple[int, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    with frozen(model):
        for step in range(1, recipe.steps + 1):
            generator.train()
            pick = torch.randint(len(pool), (recipe.batch_size,), generator=rng)
            index = pool[pick]
            x = x_train[index].repeat_interleave(recipe.draws, 0).to(device)
            y = y_train[index].repeat_interleave(recipe.draws, 0).to(device)
            targets = _distinct_wrong_targets(y_train[index], num_classes, recipe.draws, rng).to(device)
            codes = soft_codes(targets.cpu(), num_classes, tau=recipe.tau, generator=rng).to(device)
            noise = torch.randn(len(y), recipe.z_dim, generator=rng).to(device)
            step_eps = recipe.eps_at(eps, step)
            x_adv = generator(x, codes, noise, step_eps)
            labels = targets if targeted else y
            judged = x_adv if not recipe.start_steps else refined_straight_through(
                model, x, x_adv, labels, eps=step_eps, steps=recipe.start_steps, targeted=targeted)
            logits, features = forward(judged)
            loss, terms = inversion_loss(
                logits, features, codes, targets, None if targeted else y,
                kl=kl, ce=ce, margin=recipe.margin, kappa=recipe.kappa, cos=cos, orth=recipe.orth,
                groups=recipe.batch_size, topk=recipe.topk,
            )
            if recipe.imitate > 0:
                loss = loss + recipe.imitate * imitation_term(model, x, x_adv, labels, eps=step_eps,
                                                              steps=recipe.imitate_steps, targeted=targeted)
            if teacher is not None:
                pull = distill_term(x_adv, teacher[pick].repeat_interleave(recipe.draws, 0).to(device), eps)
                terms["distill"] = float(pull.detach())
                loss = loss + recipe.distill * pull
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if step % recipe.eval_every == 0 or step == recipe.steps:
                rate = held_out_success(generator, model, x_train[hold], y_train[hold], num_classes,
                                        eps=eps, targeted=targeted, recipe=recipe, seed=seed)
                curve.append((step, rate))
                log.info("generator %s: step %d/%d  ε %.3f  loss %.3f  margin %.3f  cos %.3f  distill %.3f  "
                         "held-out %s success %.1f%%  (%.0fs)",
                         label, step, recipe.steps, step_eps, loss.item(), terms["margin"], terms["cos"],
                         terms.get("distill", 0.0),
                         "targeted" if targeted else "untargeted", 100 * rate, time.perf_counter() - start)
                if recipe.patience is not None:
                    if best is None or rate > best[0]:
                        best = (rate, step, copy.deepcopy(generator.state_dict()))
                    elif len(curve) - 1 - [s for s, _ in curve].index(best[1]) >= recipe.patience:
                        log.info("generator %s: no better held-out success for %d evaluations; keeping step %d",
                                 label, recipe.patience, best[1])
                        break
    kept = curve[-1][0] if curve else recipe.steps
    if best is not None:
        generator.load_state_dict(best[2])
        kept = best[1]
    return generator, TrainingLog(time.perf_counter() - start, tuple(curve), kept)


def _distinct_wrong_targets(y: torch.Tensor, num_classes: int, draws: int, rng: torch.Generator) -> torch.Tensor:
    """For each input, `draws` different wrong classes (cycling when draws ≥ K − 1), flattened input-major.

    Draws of one input coded for different classes is what makes the cosine term's job possible:
    identical features are a stationary point of cosine similarity, so it cannot separate draws
    that start out alike.
    """
    offset = torch.randint(num_classes - 1, (len(y),), generator=rng)
    return torch.stack([rotating_targets(y, num_classes, draw, offset) for draw in range(draws)], 1).flatten()


@torch.no_grad()
def held_out_success(
    generator: PerturbGenerator, model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, *,
    eps: float, targeted: bool, recipe: GeneratorRecipe, seed: int,
) -> float:
    """One draw per input: the fraction landing in the coded class (targeted) or any wrong class."""
    device = model_device(model)
    rng = torch.Generator().manual_seed(seed + 1)
    targets = wrong_class_targets(y, num_classes, generator=rng)
    codes = soft_codes(targets, num_classes, tau=recipe.tau, generator=rng)
    noise = torch.randn(len(y), recipe.z_dim, generator=rng)
    generator.train()  # dropout stays on when sampling
    pred = model(generator(x.to(device), codes.to(device), noise.to(device), eps)).argmax(1).cpu()
    return float((pred == targets).double().mean() if targeted else (pred != y).double().mean())


def train_free_generator(
    model: nn.Module, input_shape: tuple[int, int, int], num_classes: int, *,
    recipe: GeneratorRecipe, seed: int, label: str = "generator",
) -> tuple[FreeGenerator, TrainingLog]:
    """Train G(z, c) to produce inputs the model assigns to the coded class, spread in feature space."""
    device = model_device(model)
    forward = logits_and_features(model, label)
    seed_everything(seed)
    rng = torch.Generator().manual_seed(seed)
    generator = FreeGenerator(input_shape, num_classes, width=recipe.width, z_dim=recipe.z_dim,
                              dropout=recipe.dropout, use_hot_matrix=recipe.hot_matrix).to(device)
    kl, ce, cos = recipe.weights(targeted=True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=recipe.lr, betas=(0.5, 0.999))
    curve: list[tuple[int, float]] = []
    start = time.perf_counter()
    with frozen(model):
        for step in range(1, recipe.steps + 1):
            generator.train()
            targets = torch.randint(num_classes, (recipe.batch_size,), generator=rng)
            codes = soft_codes(targets, num_classes, tau=recipe.tau, generator=rng)
            noise = torch.randn(len(targets), recipe.z_dim, generator=rng)
            logits, features = forward(generator(codes.to(device), noise.to(device)))
            loss, terms = inversion_loss(
                logits, features, codes.to(device), targets.to(device), None, kl=kl, ce=ce,
                margin=recipe.margin, kappa=recipe.kappa, cos=cos, orth=recipe.orth, groups=1,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % recipe.eval_every == 0 or step == recipe.steps:
                hit = float((logits.argmax(1).cpu() == targets).double().mean())
                curve.append((step, hit))
                log.info("free generator %s: step %d/%d  loss %.3f  cos %.3f  batch hit rate %.1f%%  (%.0fs)",
                         label, step, recipe.steps, loss.item(), terms["cos"], 100 * hit, time.perf_counter() - start)
    return generator, TrainingLog(time.perf_counter() - start, tuple(curve), recipe.steps)
