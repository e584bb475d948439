"""The attack contract: a typed config, one `generate` hook, and the shared work around it.

`Attack.run` owns what every attack needs — eval mode, seeding, timing, the [0, 1] clamp and
picking, per input, the worst case among the attack's samples (restarts or generator draws).
Subclasses implement only `generate`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from robustinv.config import Config
from robustinv.runtime import predict_logits, seed_everything


class Norm(str, Enum):
    """Threat-model norms; ε is measured in this norm on the [0, 1] input scale."""

    linf = "linf"
    l2 = "l2"


class AttackConfig(Config):
    """Keys every `[[attacks]]` entry shares; each attack adds its own in a subclass."""

    name: str
    label: str | None = Field(None, min_length=1, description="row name; defaults to `name`")
    eps: list[float] = Field(min_length=1)
    norm: Norm = Norm.linf
    batch_size: int = Field(256, ge=1)
    n: int | None = Field(None, ge=1, description="attack only the first n inputs of the eval set (all by default)")

    @field_validator("eps", mode="before")
    @classmethod
    def _one_or_many(cls, eps: object) -> object:
        return [eps] if isinstance(eps, (int, float)) and not isinstance(eps, bool) else eps

    @field_validator("eps")
    @classmethod
    def _positive(cls, eps: list[float]) -> list[float]:
        for value in eps:
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"every ε must be > 0, got {value}")
        if len(set(eps)) != len(eps):
            raise ValueError(f"ε values repeat: {eps}")
        return sorted(eps)

    @model_validator(mode="after")
    def _fits_linf_range(self) -> AttackConfig:
        if self.norm is Norm.linf and max(self.eps) > 1:
            raise ValueError(f"ε is on the [0, 1] input scale: an Linf ε above 1 is meaningless, got {max(self.eps)}")
        return self

    @property
    def display_name(self) -> str:
        return self.label or self.name

    def row_config(self, eps: float, seed: int) -> dict[str, object]:
        """The attack's full parameters at one ε, as stored with every result row."""
        config = self.model_dump(mode="json", exclude={"eps", "label"})
        return {**config, "eps": eps, "seed": seed}


class RestartConfig(AttackConfig):
    """Gradient attacks: optional random start inside the ε-ball and restarts from new ones."""

    random_start: bool = False
    restarts: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _restarts_need_random_start(self) -> RestartConfig:
        if self.restarts > 1 and not self.random_start:
            raise ValueError("restarts > 1 needs random_start = true (otherwise every restart is identical)")
        return self


@dataclass(frozen=True)
class AttackContext:
    """What an attack may learn from besides the images under attack (generators train on it)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    num_classes: int
    model_name: str
    model_fingerprint: str
    dataset_fingerprint: str
    cache_dir: Path


@dataclass(frozen=True)
class Candidates:
    """What `generate` returns: k candidates per input, (k, N, C, H, W), and their targets (k, N) if any."""

    samples: torch.Tensor
    targets: torch.Tensor | None = None
    train_seconds: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackOutput:
    """`x_adv` is the worst case per input; `samples` holds all k candidates, (k, N, C, H, W).

    `seconds` is the time to produce the candidates; `train_seconds` what the attack spent
    learning before it could (a generator's training; 0 for gradient attacks). `grad_evals` is
    the attack's budget of model gradients per input (NaN when it sets its own). `diagnostics`
    is what the attack's own code reported (AutoAttack's checks and per-member log), JSON-ready.
    """

    x_adv: torch.Tensor
    samples: torch.Tensor
    seconds: float
    targets: torch.Tensor | None = None
    train_seconds: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)
    grad_evals: float = math.nan


class Attack(ABC):
    """Base of every attack; subclasses set `config_type` and implement `generate`.

    Capabilities, read by the guard and the verdict instead of names:

    * `gradient_free`: only queries the model's outputs (Square), so it still works where
      gradients are masked;
    * `step_size_free`: adapts its own steps and restarts (APGD), so it needs no stronger rerun
      to converge;
    * `single_step`: one gradient step of size ε (FGSM), the masking tell when it beats an
      `iterated` attack, which repeats such steps (PGD) and so must not leave more accuracy;
    * `learns`: trains something against the model before it can attack (a generator), which
      a run schedules as a cell of its own;
    * `strengthened` returns the config of a stronger run of the same attack (more steps,
      random restarts), or None when the attack has no such knob.
    """

    config_type: ClassVar[type[AttackConfig]] = AttackConfig
    gradient_free: ClassVar[bool] = False
    step_size_free: ClassVar[bool] = False
    single_step: ClassVar[bool] = False
    iterated: ClassVar[bool] = False
    learns: ClassVar[bool] = False

    def __init__(self, config: AttackConfig) -> None:
        self.config = config

    def run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int,
        context: AttackContext | None = None, prepare_seed: int | None = None,
    ) -> AttackOutput:
        """Attack `x` (true labels `y`) at `eps`; `x` and the result live on the CPU.

        `prepare_seed` (default `seed`) seeds what the attack learns first: one generator serves
        every range of inputs an attack is split into, each range with its own `seed`.
        """
        model.eval()
        self.prepare(model, eps, seed=seed if prepare_seed is None else prepare_seed, context=context)
        seed_everything(seed)
        start = time.perf_counter()
        candidates = self.generate(model, x, y, eps, seed=seed)
        seconds = time.perf_counter() - start
        samples = candidates.samples.clamp(0.0, 1.0)
        return AttackOutput(self._worst_case(model, y, samples), samples, seconds,
                            candidates.targets, candidates.train_seconds, candidates.diagnostics, self.grad_evals())

    @classmethod
    def capabilities(cls) -> list[str]:
        """The capability flags the attack has, by name; every result row records them for record-only checks."""
        names = ("gradient_free", "step_size_free", "single_step", "iterated", "learns")
        return [name for name in names if getattr(cls, name)]

    @property
    def trained_seconds(self) -> float:
        """What `prepare` spent learning (or once spent, for a cached result); 0 for attacks that learn nothing."""
        return 0.0

    def grad_evals(self) -> float:
        """The most gradients of the model the attack takes per input: its cost in the unit PGD restarts share.

        NaN for attacks that set their own budget as they go (AutoAttack's ensemble); 0 for
        attacks that only query outputs.
        """
        return math.nan

    def strengthened(self, *, steps_factor: int, restarts: int, label: str) -> AttackConfig | None:
        """A stronger run of this attack (for the gradient-masking guard), or None when it cannot be strengthened."""
        return None

    def validate(self, model: nn.Module, input_shape: tuple[int, int, int], *, model_name: str) -> None:
        """Refuse, before anything runs, a model or input shape this attack cannot handle."""

    def prepare(self, model: nn.Module, eps: float, *, seed: int, context: AttackContext | None) -> None:
        """Learn whatever the attack needs before it can generate (untimed); most attacks need nothing."""

    @abstractmethod
    def generate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int) -> Candidates:
        """Return k ≥ 1 adversarial candidates per input, shaped (k, N, C, H, W)."""

    def _worst_case(self, model: nn.Module, y: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """Per input, the first candidate the model misclassifies, else the last one."""
        if len(samples) == 1:
            return samples[0]
        fooled = torch.stack([
            predict_logits(model, s, batch_size=self.config.batch_size).argmax(1) != y for s in samples
        ])
        # argmax over a bool stack picks the first True; rows with none fall back to the last sample.
        choice = torch.where(fooled.any(0), fooled.int().argmax(0), len(samples) - 1)
        return samples[choice, torch.arange(samples.shape[1])]
