"""A model's attention on a set of inputs: Grad-CAM at every conv layer and its last layer's neurons."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustinv.interpret.cumulative import cumulative_maps
from robustinv.interpret.gradcam import channel_activations, layer_gradcams


@dataclass(frozen=True, eq=False)
class Explained:
    """What the model attends to on N inputs, for one class per input.

    `layer_maps` (L, N, H, W): Grad-CAM at each conv layer, shallowest first, each in [0, 1];
    `activations` (N, channels): mean positive activation of each channel of the last conv layer.
    """

    layer_maps: torch.Tensor
    activations: torch.Tensor

    @property
    def cumulative(self) -> torch.Tensor:
        """(L, N, H, W) cumulative averaged maps; index 0 sums every layer."""
        return cumulative_maps(self.layer_maps)

    @property
    def final(self) -> torch.Tensor:
        """(N, H, W) the final cumulative map: every layer's attention, deepest to shallowest."""
        return self.cumulative[0]


@dataclass(frozen=True, eq=False)
class ExplainedPair:
    """The same inputs clean and under attack, explained for their true labels `y`."""

    y: torch.Tensor
    clean: Explained
    adversarial: Explained


def explain(model: nn.Module, x: torch.Tensor, target: torch.Tensor, layers: list[nn.Conv2d], *,
            batch_size: int = 256) -> Explained:
    """Grad-CAM of class `target` at each of `layers` (shallowest first) and the last layer's activations."""
    return Explained(layer_gradcams(model, x, target, layers, batch_size=batch_size),
                     channel_activations(model, x, layers[-1], batch_size=batch_size))
