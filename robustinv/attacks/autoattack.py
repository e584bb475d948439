"""AutoAttack (Croce & Hein 2020): the standard ensemble APGD-CE, APGD-T, FAB-T and Square, Linf or L2.

The number papers and RobustBench report. Runs the reference code (`pyautoattack`) unchanged:
each member attacks only the inputs still standing, and the row is AutoAttack's own robust
accuracy. `plus` adds APGD-DLR, FAB and more restarts; `rand` is APGD with expectation over
transformation, for randomized defenses.
"""

from __future__ import annotations

from typing import Literal

from pyautoattack import AutoAttack as ReferenceAutoAttack
from torch import nn

from robustinv.attacks.aa_runner import ReferenceAttack, ReferenceConfig, reference_adversary, target_classes
from robustinv.attacks.registry import register_attack


class AutoAttackConfig(ReferenceConfig):
    name: Literal["autoattack"] = "autoattack"
    version: Literal["standard", "plus", "rand"] = "standard"


@register_attack("autoattack")
class AutoAttack(ReferenceAttack):
    """AutoAttack (reference code): APGD-CE, APGD-T, FAB-T and Square; the number papers report."""

    config_type = AutoAttackConfig
    config: AutoAttackConfig
    step_size_free = True

    def classes_needed(self) -> int:
        return 3 if self.config.version == "rand" else 4  # APGD-T's targeted DLR loss ranks 4 logits

    def adversary(self, model: nn.Module, eps: float, *, seed: int, num_classes: int) -> ReferenceAutoAttack:
        adversary = reference_adversary(model, eps=eps, norm=self.config.norm, seed=seed, version=self.config.version)
        # The standard version targets 9 classes; a model with fewer has fewer to target.
        adversary.apgd_targeted.n_target_classes = target_classes(adversary.apgd_targeted.n_target_classes,
                                                                  num_classes)
        adversary.fab.n_target_classes = target_classes(adversary.fab.n_target_classes, num_classes)
        return adversary
