"""The training recipe a suite gives for a model: optimizer, epochs, batch size, learning rate."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Optimizer(str, Enum):
    adam = "adam"
    sgd = "sgd"


class TrainRecipe(BaseModel):
    """Standard (non-adversarial) training; every field is part of the model's cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Optimizer = Optimizer.adam
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
