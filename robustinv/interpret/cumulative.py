"""Cumulative averaged maps (Explain-CNN-with-GANs): Grad-CAM summed from the deepest layer down.

With per-layer maps m_0 (shallowest) … m_{L-1} (deepest), the cumulative map at depth j is the
mean of m_j … m_{L-1}, min–max normalized per image: c_{L-1} = m_{L-1} is the deepest layer's
coarse attention, c_0 sums every layer and is the final map. The paper keeps K of them at
evenly spaced depths.
"""

from __future__ import annotations

import torch

MAX_DEPTHS = 8  # cumulative maps kept per input, as in the paper


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min–max normalize each map (the last two dimensions) to [0, 1]; a constant map becomes 0."""
    flat = maps.flatten(-2)
    low = flat.min(-1, keepdim=True).values
    span = flat.max(-1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny), torch.zeros_like(flat))
    return scaled.view_as(maps)


def cumulative_maps(layer_maps: torch.Tensor) -> torch.Tensor:
    """(L, N, H, W) per-layer maps, shallowest first → (L, N, H, W) cumulative maps c_0 … c_{L-1}."""
    reverse_sums = layer_maps.flip(0).cumsum(0).flip(0)  # index j sums layers j … L-1
    return normalize_maps(reverse_sums)


def depth_indices(layers: int, k: int = MAX_DEPTHS) -> list[int]:
    """min(k, layers) layer indices at evenly spaced depths, 0 (shallowest) to layers − 1 (deepest)."""
    count = min(k, layers)
    if count <= 1:
        return [0] * count
    return sorted({round(i * (layers - 1) / (count - 1)) for i in range(count)})
