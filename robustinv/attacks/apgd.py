"""APGD (Croce & Hein 2020): step-size-free PGD with momentum on the CE or DLR loss; AutoAttack's white-box core.

Untargeted on cross-entropy (`apgd-ce`) or on the difference of logits ratio (`apgd-dlr`,
invariant to the logits' scale), or targeted on the top `target_classes` wrong classes with the
targeted DLR loss (`apgd-t`). The reference code, run as AutoAttack's `custom` version.
"""

from __future__ import annotations

from typing import Literal

from pyautoattack import AutoAttack
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
from pydantic import Field, model_validator
from torch import nn

from robustinv.attacks.aa_runner import AA_NORMS, ReferenceAttack, ReferenceConfig, reference_adversary, target_classes
from robustinv.attacks.registry import register_attack


class ApgdConfig(ReferenceConfig):
    name: Literal["apgd"] = "apgd"
    loss: Literal["ce", "dlr"] = "ce"
    targeted: bool = False
    steps: int = Field(100, ge=1)
    restarts: int = Field(1, ge=1)
    target_classes: int = Field(9, ge=1, description="targeted: how many of the most likely wrong classes")
    rho: float = Field(0.75, gt=0, lt=1, description="step-size decrease condition")

    @model_validator(mode="after")
    def _targeted_uses_dlr(self) -> ApgdConfig:
        if self.targeted and self.loss != "dlr":
            raise ValueError('targeted APGD optimizes the targeted DLR loss; set loss = "dlr"')
        return self

    @property
    def member(self) -> str:
        return "apgd-t" if self.targeted else f"apgd-{self.loss}"


@register_attack("apgd")
class Apgd(ReferenceAttack):
    """APGD (reference code): step-size-free PGD on CE or DLR, untargeted or targeted."""

    config_type = ApgdConfig
    config: ApgdConfig
    step_size_free = True

    def grad_evals(self) -> float:
        c = self.config
        return float(c.steps * c.restarts * (c.target_classes if c.targeted else 1))

    def classes_needed(self) -> int:
        return 4 if self.config.targeted else 3 if self.config.loss == "dlr" else 2

    def adversary(self, model: nn.Module, eps: float, *, seed: int, num_classes: int) -> AutoAttack:
        c = self.config
        adversary = reference_adversary(model, eps=eps, norm=c.norm, seed=seed, version="custom", attacks=[c.member])
        common = dict(n_iter=c.steps, norm=AA_NORMS[c.norm], n_restarts=c.restarts, eps=eps, seed=seed, rho=c.rho,
                      device=adversary.device, logger=adversary.logger)
        if c.targeted:
            adversary.apgd_targeted = APGDAttack_targeted(
                model, n_target_classes=target_classes(c.target_classes, num_classes), **common)
        else:
            adversary.apgd = APGDAttack(model, loss=c.loss, **common)
        return adversary
