"""Generators cached as safetensors + JSON, keyed by everything that determines them."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from robustinv.checkpoints import checkpoint_files, content_key, load_checkpoint, save_checkpoint
from robustinv.inversion.generator import FreeGenerator, PerturbGenerator
from robustinv.inversion.recipe import GeneratorRecipe
from robustinv.inversion.trainer import TrainingLog, train_free_generator, train_perturb_generator
from robustinv.runtime import kernel_profile, model_device

log = logging.getLogger(__name__)

GENERATOR_FORMAT = 1


@dataclass(frozen=True)
class GeneratorSource:
    """Where a generator comes from: the model and data it inverts, its mode, and how it is trained."""

    mode: Literal["perturb", "free"]
    model_fingerprint: str
    dataset_fingerprint: str
    input_shape: tuple[int, int, int]
    num_classes: int
    recipe: GeneratorRecipe
    seed: int
    eps: float = 0.0  # perturb mode only
    targeted: bool = False  # perturb mode only

    @property
    def key(self) -> str:
        return content_key({**asdict(self), "recipe": self.recipe.key_record(), "format": GENERATOR_FORMAT})

    def build(self) -> PerturbGenerator | FreeGenerator:
        r = self.recipe
        if self.mode == "perturb":
            return PerturbGenerator(self.input_shape, self.num_classes, width=r.width, z_dim=r.z_dim,
                                    dropout=r.dropout, use_hot_matrix=r.hot_matrix, saturate=r.saturate)
        return FreeGenerator(self.input_shape, self.num_classes, width=r.width, z_dim=r.z_dim,
                             dropout=r.dropout, use_hot_matrix=r.hot_matrix)


def cached_generator(
    source: GeneratorSource, model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, *,
    cache_dir: Path, label: str,
) -> tuple[PerturbGenerator | FreeGenerator, TrainingLog]:
    """The cached generator for `source`, or a freshly trained one (then cached), on the model's device.

    Returns the generator and how its training went (when it was trained, possibly earlier).
    """
    device = model_device(model)
    # The kernels are part of the key: CPU and CUDA, and CPU thread counts, train different weights.
    stem = cache_dir / "generators" / f"{source.mode}-{source.key}-{kernel_profile(device)}"
    cached = load_checkpoint(stem)
    if cached is not None:
        state, meta = cached
        generator = source.build()
        generator.load_state_dict(state)
        log.info("generator %s: cached %s", label, checkpoint_files(stem)[0].name)
        return generator.to(device), TrainingLog.from_record(meta)
    log.info("generator %s: training %s generator%s (%d steps)", label, source.mode,
             f" at ε={source.eps:g}, {'targeted' if source.targeted else 'untargeted'}" if source.mode == "perturb" else "",
             source.recipe.steps)
    trained: PerturbGenerator | FreeGenerator
    if source.mode == "perturb":
        trained, training = train_perturb_generator(
            model, x_train, y_train, source.num_classes, eps=source.eps, targeted=source.targeted,
            recipe=source.recipe, seed=source.seed, label=label,
        )
    else:
        trained, training = train_free_generator(
            model, source.input_shape, source.num_classes, recipe=source.recipe, seed=source.seed, label=label
        )
    save_checkpoint(stem, trained.state_dict(), {
        **asdict(source), "recipe": source.recipe.model_dump(mode="json"), **training.record(),
    })
    return trained, training
