"""FGSM (Goodfellow et al. 2015): one signed-gradient (Linf) or normalized-gradient (L2) step of size ε."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from robustinv.attacks.art import ART_NORMS, ArtAttack
from robustinv.attacks.base import RestartConfig
from robustinv.attacks.registry import register_attack

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier


class FgsmConfig(RestartConfig):
    name: Literal["fgsm"] = "fgsm"


@register_attack("fgsm")
class Fgsm(ArtAttack):
    """FGSM (ART): one signed-gradient step of size ε; fast, weak, a masking tell when it beats PGD."""

    config_type = FgsmConfig
    single_step = True

    def grad_evals(self) -> float:
        return float(self.config.restarts)

    def art_attack(self, estimator: PyTorchClassifier, eps: float) -> Any:
        from art.attacks.evasion import FastGradientMethod  # on first use (see robustinv.attacks.art)

        return FastGradientMethod(
            estimator,
            norm=ART_NORMS[self.config.norm],
            eps=eps,
            eps_step=eps,
            num_random_init=int(self.config.random_start),
            batch_size=self.config.batch_size,
        )
