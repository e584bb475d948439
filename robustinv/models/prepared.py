"""A model ready to attack, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from robustinv.records import model_label




@dataclass(frozen=True)
class PreparedModel:
    """A model ready to attack (behind `CheckedModel`), with where it came from and how long training took."""

    name: str
    module: nn.Module
    fingerprint: str
    source: str  # "trained", "cache", "weights" or "torchscript"
    train_seconds: float
    defense: str = "standard"
    randomized: bool = False  # identical forward passes in eval mode differ (see `robustinv.models.checked`)

    @property
    def label(self) -> str:
        return model_label(self.name, self.defense)
