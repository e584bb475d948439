"""Attacks that run through the Adversarial Robustness Toolbox's PyTorch estimator."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from robustinv.attacks.base import Attack, Candidates, Norm, RestartConfig
from robustinv.runtime import model_device, seed_everything

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

ART_NORMS: dict[Norm, float] = {Norm.linf: np.inf, Norm.l2: 2.0}


def art_classifier(model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> PyTorchClassifier:
    """Wrap a [0, 1]-input model for ART; normalization, if any, lives inside the model.

    ART is imported here, on first use: it pulls SciPy and scikit-learn, 1.4 s of every process
    start (each CLI call, each worker) that runs no ART attack.
    """
    from art.estimators.classification import PyTorchClassifier

    device = model_device(model)
    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=input_shape,
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )


class ArtAttack(Attack):
    """Runs an ART evasion attack once per restart, each restart with its own seed."""

    config: RestartConfig

    def generate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int) -> Candidates:
        num_classes = int(model(x[:1].to(model_device(model))).shape[1])
        estimator = art_classifier(model, tuple(x.shape[1:]), num_classes)
        attack = self.art_attack(estimator, eps)
        x_np, y_np = x.numpy().astype(np.float32), y.numpy()
        samples = []
        for restart in range(self.config.restarts):
            seed_everything(seed + restart)
            samples.append(torch.from_numpy(attack.generate(x=x_np, y=y_np)))
        return Candidates(torch.stack(samples))

    @abstractmethod
    def art_attack(self, estimator: PyTorchClassifier, eps: float) -> Any:
        """The configured ART attack at this ε (untargeted; one random start when enabled)."""
