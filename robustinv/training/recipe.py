"""The training recipe a suite gives for a model: optimizer, epochs, batch size, learning rate."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from robustinv.config import Config


class Optimizer(str, Enum):
    adam = "adam"
    sgd = "sgd"


class TrainRecipe(Config):
    """Standard (non-adversarial) training; every field is part of the model's cache key."""

    epochs: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Optimizer = Optimizer.adam
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class InnerAttack(str, Enum):
    """How training inputs are perturbed: PGD-k from a random start, or one FGSM step from one."""

    pgd = "pgd"
    fgsm_rs = "fgsm_rs"


class Schedule(str, Enum):
    constant = "constant"
    onecycle = "onecycle"


class AdversarialRecipe(TrainRecipe):
    """Training of the defended references (`[models.adversarial]`); shared by every defended recipe.

    ε is on the [0, 1] input scale (Linf) and ramps up linearly over the first `warmup` fraction
    of the steps. `step_size` defaults to 2.5·ε/steps for PGD and 1.25·ε for FGSM with random
    start. `consistency_weight` is λ of `consistency_at`; `trades_beta` is β of `trades`.
    """

    epochs: int = Field(8, ge=1, le=1000)
    lr: float = Field(2e-3, gt=0)
    schedule: Schedule = Schedule.onecycle
    eps: float = Field(0.3, gt=0, le=1)
    inner: InnerAttack = InnerAttack.pgd
    steps: int = Field(5, ge=1, le=1000)
    step_size: float | None = Field(None, gt=0, le=1)
    warmup: float = Field(0.3, ge=0, lt=1)
    consistency_weight: float = Field(0.1, ge=0)
    trades_beta: float = Field(6.0, ge=0)

    @property
    def inner_steps(self) -> int:
        return 1 if self.inner is InnerAttack.fgsm_rs else self.steps

    def inner_step_size(self, eps: float) -> float:
        """The inner attack's step at the current (possibly warming-up) ε."""
        if self.step_size is not None:
            return self.step_size
        return 1.25 * eps if self.inner is InnerAttack.fgsm_rs else 2.5 * eps / self.steps
