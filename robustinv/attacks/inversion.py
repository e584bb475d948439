"""Inverting generator (network inversion, Suhail & Sethi 2024; AdvGAN's hinge): Linf, ε by construction.

A conditional generator is trained against the frozen model (DESIGN §4.1, `perturb` mode) to
move inputs within ε into its misclassification regions, then produces k diverse candidates per
input at one forward pass each. Training is cached per (model, data, ε, mode, recipe, seed) and
timed separately from generation (`train_seconds` vs `seconds`).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from robustinv.attacks.base import Attack, AttackConfig, AttackContext, Candidates, Norm
from robustinv.attacks.registry import register_attack
from robustinv.errors import RobustinvError
from robustinv.inversion.cached import GeneratorSource, cached_generator
from robustinv.inversion.generator import PerturbGenerator, check_shape
from robustinv.inversion.recipe import GeneratorRecipe
from robustinv.inversion.sampling import sample_perturbations
from robustinv.models.features import logits_and_features


class InversionConfig(AttackConfig):
    name: Literal["inversion"] = "inversion"
    targeted: bool = False
    samples_per_input: int = Field(8, ge=1, description="k candidates per input")
    train: GeneratorRecipe = Field(default_factory=GeneratorRecipe)

    @model_validator(mode="after")
    def _linf_only(self) -> InversionConfig:
        if self.norm is not Norm.linf:
            raise ValueError("the inverting generator bounds perturbations in Linf (ε·tanh); use norm = \"linf\"")
        return self


@register_attack("inversion")
class Inversion(Attack):
    """Conditional generator trained against the model; k diverse candidates per input, one forward pass each."""

    config_type = InversionConfig
    config: InversionConfig
    learns = True

    def __init__(self, config: AttackConfig) -> None:
        super().__init__(config)
        self._generator: PerturbGenerator | None = None
        self._train_seconds = 0.0

    def validate(self, model: nn.Module, input_shape: tuple[int, int, int], *, model_name: str) -> None:
        check_shape(input_shape)
        logits_and_features(model, model_name)  # the diversity term needs penultimate features

    def prepare(self, model: nn.Module, eps: float, *, seed: int, context: AttackContext | None) -> None:
        if context is None:
            raise RobustinvError("the inversion attack needs training data (an AttackContext) to learn from")
        self.validate(model, tuple(context.x_train.shape[1:]), model_name=context.model_name)  # type: ignore[arg-type]
        source = GeneratorSource(
            mode="perturb", model_fingerprint=context.model_fingerprint,
            dataset_fingerprint=context.dataset_fingerprint, input_shape=tuple(context.x_train.shape[1:]),  # type: ignore[arg-type]
            num_classes=context.num_classes, recipe=self.config.train, seed=seed, eps=eps, targeted=self.config.targeted,
        )
        generator, self._train_seconds = cached_generator(
            source, model, context.x_train, context.y_train, cache_dir=context.cache_dir,
            label=f"{context.model_name}/{self.config.display_name}",
        )
        assert isinstance(generator, PerturbGenerator)
        self._generator = generator

    @property
    def trained_seconds(self) -> float:
        return self._train_seconds

    @property
    def generator(self) -> PerturbGenerator:
        if self._generator is None:
            raise RobustinvError("inversion attack used before `prepare` trained its generator")
        return self._generator

    def generate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int) -> Candidates:
        samples, targets = sample_perturbations(
            self.generator, x, y, eps=eps, draws=self.config.samples_per_input, targeted=self.config.targeted,
            tau=self.config.train.tau, seed=seed, batch_size=self.config.batch_size,
        )
        return Candidates(samples, targets if self.config.targeted else None, self._train_seconds)
