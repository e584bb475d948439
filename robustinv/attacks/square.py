"""Square Attack (Andriushchenko et al. 2020): random square-shaped updates, gradient-free, Linf or L2.

Needs only the model's outputs, so gradient masking does not stop it: when Square finds
adversarial examples the white-box attacks missed, their numbers are not to be trusted. The
reference code (margin loss), run as AutoAttack's `custom` version; its cost is `queries`
forward passes per input still standing.
"""

from __future__ import annotations

from typing import Literal

from pyautoattack import AutoAttack
from pyautoattack.square import SquareAttack
from pydantic import Field
from torch import nn

from robustinv.attacks.aa_runner import AA_NORMS, ReferenceAttack, ReferenceConfig, reference_adversary
from robustinv.attacks.registry import register_attack


class SquareConfig(ReferenceConfig):
    name: Literal["square"] = "square"
    queries: int = Field(5000, ge=1)
    p_init: float = Field(0.8, gt=0, le=1, description="initial fraction of pixels a square covers")
    restarts: int = Field(1, ge=1)


@register_attack("square")
class Square(ReferenceAttack):
    """Square Attack (reference code): gradient-free random search; sees through masked gradients."""

    config_type = SquareConfig
    config: SquareConfig
    gradient_free = True

    def grad_evals(self) -> float:
        return 0.0  # it only queries outputs

    def adversary(self, model: nn.Module, eps: float, *, seed: int, num_classes: int) -> AutoAttack:
        c = self.config
        adversary = reference_adversary(model, eps=eps, norm=c.norm, seed=seed, version="custom", attacks=["square"])
        adversary.square = SquareAttack(model, norm=AA_NORMS[c.norm], n_queries=c.queries, eps=eps, p_init=c.p_init,
                                        n_restarts=c.restarts, seed=seed, verbose=False, device=adversary.device,
                                        resc_schedule=False)
        return adversary
