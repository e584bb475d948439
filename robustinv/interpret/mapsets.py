"""What the explainer GAN learns from: images with their Grad-CAM maps, split the way the paper feeds them.

The conditioned GAN sees the cumulative maps from the deepest layer down to the second-shallowest
(at the paper's evenly spaced depths, deepest first) and must produce the shallowest conv layer's
own Grad-CAM map, which none of them contains: fine, early-layer attention from the image and
the deeper summaries. The amortized GAN sees the image alone and produces the final cumulative map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustinv.interpret.cumulative import cumulative_maps, depth_indices
from robustinv.interpret.gan import ExplainMode
from robustinv.interpret.gradcam import layer_gradcams


@dataclass(frozen=True, eq=False)
class MapSet:
    """N images (N, C, H, W) and their maps: conditions (N, K, H, W), deepest first; targets (N, 1, H, W)."""

    images: torch.Tensor
    conditions: torch.Tensor
    shallowest: torch.Tensor  # Grad-CAM of the shallowest conv layer: the conditioned GAN's target
    final: torch.Tensor  # the final cumulative map: the amortized GAN's target

    def target(self, mode: ExplainMode) -> torch.Tensor:
        return self.shallowest if mode.uses_conditions else self.final

    def inputs(self, mode: ExplainMode) -> torch.Tensor | None:
        return self.conditions if mode.uses_conditions else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: slice | torch.Tensor) -> MapSet:
        return MapSet(self.images[index], self.conditions[index], self.shallowest[index], self.final[index])

    @staticmethod
    def joined(*sets: MapSet) -> MapSet:
        return MapSet(*(torch.cat([getattr(s, name) for s in sets])
                        for name in ("images", "conditions", "shallowest", "final")))


def condition_depths(layers: int) -> list[int]:
    """The conv-layer indices whose cumulative maps condition the GAN: the paper's depths but the shallowest, deepest first."""
    return [d for d in reversed(depth_indices(layers)) if d != 0]


def map_set(model: nn.Module, images: torch.Tensor, classes: torch.Tensor, layers: list[nn.Conv2d], *,
            batch_size: int = 256) -> MapSet:
    """Grad-CAM of `classes` at every layer of `layers` (shallowest first), split into GAN inputs and targets."""
    per_layer = layer_gradcams(model, images, classes, layers, batch_size=batch_size)
    cumulative = cumulative_maps(per_layer)
    conditions = cumulative[condition_depths(len(layers))].transpose(0, 1).contiguous()
    return MapSet(images, conditions, per_layer[0][:, None], cumulative[0][:, None])
