"""PGD (Madry et al. 2018): iterated gradient steps projected onto the ε-ball, ART's PyTorch implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from robustinv.attacks.art import ART_NORMS, ArtAttack
from robustinv.attacks.base import RestartConfig
from robustinv.attacks.registry import register_attack

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier


class PgdConfig(RestartConfig):
    name: Literal["pgd"] = "pgd"
    steps: int = Field(40, ge=1)
    step_size: float = Field(0.01, gt=0)
    random_start: bool = True


@register_attack("pgd")
class Pgd(ArtAttack):
    """PGD (ART): iterated gradient steps projected onto the ε-ball, optional random restarts."""

    config_type = PgdConfig
    config: PgdConfig
    iterated = True

    def grad_evals(self) -> float:
        return float(self.config.steps * self.config.restarts)

    def strengthened(self, *, steps_factor: int, restarts: int, label: str) -> PgdConfig:
        return self.config.model_copy(update={
            "label": label, "steps": self.config.steps * steps_factor, "restarts": restarts, "random_start": True,
            "n": None,
        })

    def art_attack(self, estimator: PyTorchClassifier, eps: float) -> Any:
        from art.attacks.evasion import ProjectedGradientDescentPyTorch  # on first use (see robustinv.attacks.art)

        return ProjectedGradientDescentPyTorch(
            estimator,
            norm=ART_NORMS[self.config.norm],
            eps=eps,
            eps_step=self.config.step_size,
            max_iter=self.config.steps,
            num_random_init=int(self.config.random_start),
            batch_size=self.config.batch_size,
            verbose=False,
        )
