"""How a suite names a model: a zoo architecture or an importable callable, trained or loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from robustinv.config import Config
from robustinv.models.zoo import MODELS
from robustinv.paths import resolve_path
from robustinv.training.defenses import DEFENSES
from robustinv.training.recipe import AdversarialRecipe, TrainRecipe


class ModelSpec(Config):
    """One `[[models]]` entry.

    Exactly one source: `arch` (+ `weights`, or trained with `[models.train]`) or `torchscript`.
    `arch` is a registered name or `package.module:callable` (called with `arch_kwargs`).
    `defenses` lists the versions evaluated: `standard` is the model as given or trained with
    `[models.train]`; every other defense is trained from `arch` with `[models.adversarial]`.
    """

    name: str = Field(min_length=1)
    arch: str | None = None
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: Path | None = None
    torchscript: Path | None = None
    train: TrainRecipe | None = None
    defenses: list[str] = Field(default_factory=lambda: ["standard"], min_length=1)
    adversarial: AdversarialRecipe = Field(default_factory=AdversarialRecipe)

    _resolve = field_validator("weights", "torchscript")(resolve_path)

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str | None) -> str | None:
        return arch if arch is None or ":" in arch else MODELS.checked_name(arch)

    @field_validator("defenses")
    @classmethod
    def _known_defenses(cls, defenses: list[str]) -> list[str]:
        for name in defenses:
            DEFENSES.checked_name(name)
        if len(set(defenses)) != len(defenses):
            raise ValueError(f"defenses repeat: {defenses}")
        return defenses

    @property
    def defended(self) -> list[str]:
        """The defenses trained here from the architecture (every one but `standard`)."""
        return [name for name in self.defenses if name != "standard"]

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if self.torchscript is not None:
            if self.arch is not None or self.weights is not None or self.train is not None or self.arch_kwargs:
                raise ValueError("'torchscript' stands alone: drop 'arch', 'arch_kwargs', 'weights' and 'train'")
            if self.defended:
                raise ValueError("defended references are trained from an architecture: a TorchScript "
                                 "model has none, so it takes only defenses = [\"standard\"]")
            return self
        if self.arch is None:
            if self.name not in MODELS:
                raise ValueError(
                    f"no 'arch' given and the name {self.name!r} is not a registered model "
                    f"({', '.join(MODELS.names())}); set 'arch'"
                )
            object.__setattr__(self, "arch", self.name)
        if self.arch_kwargs and ":" not in str(self.arch):
            raise ValueError(f"arch_kwargs: {self.arch!r} is a registered architecture, built from the data's shape "
                             "and classes alone; arch_kwargs go to a 'module:callable' arch")
        if self.weights is not None and self.train is not None:
            raise ValueError("give either 'weights' or a [models.train] recipe, not both")
        if self.weights is None and self.train is None:
            object.__setattr__(self, "train", TrainRecipe())
        return self
