"""Spatial feature transform (Wang et al., SFT-GAN, CVPR 2018): features modulated by a condition map.

An SFT layer scales and shifts every feature at every position by amounts computed from a
condition c, x·(γ(c) + 1) + β(c). The explainer GAN feeds it the classifier's Grad-CAM maps,
so the generator can read, position by position, where each layer of the classifier looked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _head(cond_channels: int, channels: int) -> nn.Sequential:
    """1×1 conv → LeakyReLU → 1×1 conv: a per-position map from condition features to one modulation."""
    return nn.Sequential(nn.Conv2d(cond_channels, channels, 1), nn.LeakyReLU(0.1), nn.Conv2d(channels, channels, 1))


def match_size(condition: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`condition` resized (bilinear) to the spatial size of `like`, untouched when they already agree."""
    if condition.shape[-2:] == like.shape[-2:]:
        return condition
    return F.interpolate(condition, size=like.shape[-2:], mode="bilinear", align_corners=False)


class SFTLayer(nn.Module):
    """x·(γ(c) + 1) + β(c), with γ and β small per-position networks of the condition c.

    The `+ 1` makes γ = β = 0 the identity, so a layer whose heads output zero passes its
    features through unchanged. A condition at another resolution is resized to x's.
    """

    def __init__(self, channels: int, cond_channels: int) -> None:
        super().__init__()
        self.gamma = _head(cond_channels, channels)
        self.beta = _head(cond_channels, channels)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        condition = match_size(condition, x)
        return x * (self.gamma(condition) + 1) + self.beta(condition)


class SFTResBlock(nn.Module):
    """conv → SFT → ReLU → conv → SFT, plus the skip; both SFT layers read the same condition."""

    def __init__(self, channels: int, cond_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.sft1 = SFTLayer(channels, cond_channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.sft2 = SFTLayer(channels, cond_channels)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        # Resized once here rather than in each SFT layer: both read the same condition.
        condition = match_size(condition, x)
        h = torch.relu(self.sft1(self.conv1(x), condition))
        return x + self.sft2(self.conv2(h), condition)
