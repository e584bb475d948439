"""Inverting generator (network inversion, Suhail & Sethi 2024; AdvGAN's hinge): Linf, ε by construction.

A conditional generator is trained against the frozen model (DESIGN §4.1, `perturb` mode) to
move inputs within ε into its misclassification regions, then produces k diverse candidates per
input at one forward pass each. With `refine_steps = r`, each draw then starts r projected
gradient steps against the model: the draws carry the diversity, the refinement the strength
(k·r gradient evaluations per input, the unit PGD's steps × restarts share). Training is cached
per (model, data, ε, mode, recipe, seed) and timed separately from generation (`train_seconds`
vs `seconds`).
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
from robustinv.inversion.refine import default_step_size, jitter, refine
from robustinv.inversion.sampling import sample_perturbations
from robustinv.inversion.trainer import TrainingLog
from robustinv.models.features import logits_and_features


class InversionConfig(AttackConfig):
    name: Literal["inversion"] = "inversion"
    targeted: bool = False
    samples_per_input: int = Field(8, ge=1, description="k candidates per input")
    refine_steps: int = Field(0, ge=0, description="r projected gradient steps from each draw (0: the draws as they are)")
    refine_step_size: float | None = Field(None, gt=0, description="Linf step of the refinement; default 2.5·ε/r")
    refine_loss: Literal["margin", "aimed"] = Field(
        "margin", description="untargeted refinement: the C&W margin, or z_y − z_t toward each draw's coded class")
    refine_jitter: float = Field(
        0.0, ge=0, le=1, description="random start around each draw before refining: uniform noise of this share of ε")
    train: GeneratorRecipe = Field(default_factory=GeneratorRecipe)

    def step_size(self, eps: float) -> float:
        return self.refine_step_size or default_step_size(eps, max(self.refine_steps, 1))

    def row_config(self, eps: float, seed: int) -> dict[str, object]:
        """The full config, with the refinement's step size at this ε resolved."""
        resolved = self.step_size(eps) if self.refine_steps else None
        return {**super().row_config(eps, seed), "refine_step_size": resolved}

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
        self._training = TrainingLog(0.0)

    def validate(self, model: nn.Module, input_shape: tuple[int, int, int], *, model_name: str) -> None:
        check_shape(input_shape)
        logits_and_features(model, model_name)  # the diversity term needs penultimate features

    def prepare(self, model: nn.Module, eps: float, *, seed: int, context: AttackContext | None) -> None:
        if context is None:
            raise RobustinvError("the inversion attack needs training data (an AttackContext) to learn from")
        self.validate(model, tuple(context.x_train.shape[1:]), model_name=context.model_name)  # type: ignore[arg-type]
        generator, self._training = cached_generator(
            self.source(context, eps, seed), model, context.x_train, context.y_train, cache_dir=context.cache_dir,
            label=f"{context.model_name}/{self.config.display_name}",
        )
        assert isinstance(generator, PerturbGenerator)
        self._generator = generator

    def source(self, context: AttackContext, eps: float, seed: int) -> GeneratorSource:
        """What determines the generator this attack trains at `eps` from `seed` (its cache key)."""
        return GeneratorSource(
            mode="perturb", model_fingerprint=context.model_fingerprint,
            dataset_fingerprint=context.dataset_fingerprint, input_shape=tuple(context.x_train.shape[1:]),  # type: ignore[arg-type]
            num_classes=context.num_classes, recipe=self.config.train, seed=seed, eps=eps, targeted=self.config.targeted,
        )

    @property
    def trained_seconds(self) -> float:
        return self._training.seconds

    @property
    def training(self) -> TrainingLog:
        """How the generator's training went (its held-out curve), once `prepare` has trained or loaded it."""
        return self._training

    def grad_evals(self) -> float:
        return float(self.config.samples_per_input * self.config.refine_steps)

    @property
    def generator(self) -> PerturbGenerator:
        if self._generator is None:
            raise RobustinvError("inversion attack used before `prepare` trained its generator")
        return self._generator

    def generate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int) -> Candidates:
        c = self.config
        samples, targets = sample_perturbations(
            self.generator, x, y, eps=eps, draws=c.samples_per_input, targeted=c.targeted,
            tau=c.train.tau, seed=seed, batch_size=c.batch_size,
        )
        if c.refine_steps:
            samples = jitter(x, samples, eps=eps, spread=c.refine_jitter, seed=seed)
        samples = refine(model, x, samples, targets if c.targeted else y, eps=eps, steps=c.refine_steps,
                         step_size=c.step_size(eps), targeted=c.targeted,
                         aims=targets if c.refine_loss == "aimed" else None, batch_size=c.batch_size)
        diagnostics = {"generator_training": self._training.progress()}
        return Candidates(samples, targets if c.targeted else None, self._training.seconds, diagnostics)
