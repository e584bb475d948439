"""How a suite names a model: a zoo architecture or an importable callable, trained or loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robustinv.errors import UnknownNameError
from robustinv.models.zoo import MODELS
from robustinv.paths import resolve_path
from robustinv.training.recipe import TrainRecipe


class ModelSpec(BaseModel):
    """One `[[models]]` entry.

    Exactly one source: `arch` (+ `weights`, or trained with `[models.train]`) or `torchscript`.
    `arch` is a registered name or `package.module:callable` (called with `arch_kwargs`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    arch: str | None = None
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: Path | None = None
    torchscript: Path | None = None
    train: TrainRecipe | None = None

    _resolve = field_validator("weights", "torchscript")(resolve_path)

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str | None) -> str | None:
        if arch is not None and ":" not in arch and arch not in MODELS:
            raise ValueError(str(UnknownNameError("model", arch, MODELS.names())))
        return arch

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if self.torchscript is not None:
            if self.arch is not None or self.weights is not None or self.train is not None:
                raise ValueError("'torchscript' stands alone: drop 'arch', 'weights' and 'train'")
            return self
        if self.arch is None:
            if self.name not in MODELS:
                raise ValueError(
                    f"no 'arch' given and the name {self.name!r} is not a registered model "
                    f"({', '.join(MODELS.names())}); set 'arch'"
                )
            object.__setattr__(self, "arch", self.name)
        if self.weights is not None and self.train is not None:
            raise ValueError("give either 'weights' or a [models.train] recipe, not both")
        if self.weights is None and self.train is None:
            object.__setattr__(self, "train", TrainRecipe())
        return self
