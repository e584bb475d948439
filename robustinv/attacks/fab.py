"""FAB (Croce & Hein 2020): fast adaptive boundary attack, a minimum-norm attack, Linf or L2.

FAB looks for the smallest perturbation that crosses the decision boundary; an input counts
as broken only when that perturbation fits in ε. Untargeted, or targeted at the `target_classes`
most likely wrong classes (FAB-T, AutoAttack's member; one restart per target, as there). The
reference code, run as AutoAttack's `custom` version.
"""

from __future__ import annotations

from typing import Literal

from pyautoattack import AutoAttack
from pyautoattack.fab_pt import FABAttack_PT
from pydantic import Field
from torch import nn

from robustinv.attacks.aa_runner import AA_NORMS, ReferenceAttack, ReferenceConfig, reference_adversary, target_classes
from robustinv.attacks.registry import register_attack


class FabConfig(ReferenceConfig):
    name: Literal["fab"] = "fab"
    targeted: bool = False
    steps: int = Field(100, ge=1)
    restarts: int = Field(5, ge=1, description="untargeted only; FAB-T runs one per target class")
    target_classes: int = Field(9, ge=1)


@register_attack("fab")
class Fab(ReferenceAttack):
    """FAB (reference code): minimum-norm boundary attack; an input counts as broken within ε."""

    config_type = FabConfig
    config: FabConfig

    def adversary(self, model: nn.Module, eps: float, *, seed: int, num_classes: int) -> AutoAttack:
        c = self.config
        member = "fab-t" if c.targeted else "fab"
        adversary = reference_adversary(model, eps=eps, norm=c.norm, seed=seed, version="custom", attacks=[member])
        adversary.fab = FABAttack_PT(model, norm=AA_NORMS[c.norm], n_restarts=c.restarts, n_iter=c.steps, eps=eps,
                                     seed=seed, verbose=False, device=adversary.device,
                                     n_target_classes=target_classes(c.target_classes, num_classes))
        return adversary
