"""The explainer GAN's networks: a generator per way of feeding the condition maps, and a PatchGAN.

Every generator shares one U-Net-like trunk: a stem at full resolution, two stride-2
downsamplings (to half, then quarter resolution, doubling the channels), residual blocks at
quarter resolution where most of the work is done and whose field of view covers the image
(deep Grad-CAM maps are coarse and depend on the whole digit), then two upsamplings, each to its
skip's exact size and added to a conv of it, so any H×W ≥ 8 works (8×8 digits, 28×28 MNIST).
The output is an unbounded map: L1 trains on it unsquashed (a sigmoid saturates on the many
zero pixels of a Grad-CAM map and stalls training) and `predict_maps` clamps it to [0, 1].
The modes differ only in what the residual blocks read:

- `gsft` (global SFT): one condition network over all the stacked maps; every block reads its
  shared features.
- `lsft` (local, progressive SFT): one block per map, in the order given (deepest layer first),
  block i conditioned on map i alone.
- `amortized`: plain residual blocks and no maps at all; the image alone predicts its map.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.interpret.gan.sft import SFTResBlock, match_size

TRUNK_BLOCKS = 4
"""Residual blocks of the `gsft` and `amortized` trunks (`lsft` has one per condition map)."""


class ExplainMode(str, Enum):
    """How the generator is fed the condition maps (see the module docstring)."""

    gsft = "gsft"
    lsft = "lsft"
    amortized = "amortized"

    @property
    def uses_conditions(self) -> bool:
        """Whether the generator reads the condition maps (`amortized` sees the image only)."""
        return self is not ExplainMode.amortized


class ResBlock(nn.Module):
    """conv → ReLU → conv, plus the skip: the amortized trunk's block, an SFT block without the SFT."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ExplainerGenerator(nn.Module, ABC):
    """(images (N,C,H,W), conditions (N,K,H,W) or None) → unbounded maps (N,1,H,W); clamp them to [0, 1].

    Owns the trunk; a mode implements only `transform`, what happens at quarter resolution on
    `2 * width` channels.
    """

    def __init__(self, image_channels: int, *, width: int) -> None:
        super().__init__()
        self.width = width
        self.stem = nn.Sequential(nn.Conv2d(image_channels, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.down1 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.down2 = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        # Each decoder step is a conv of the coarser features, upsampled, plus a conv of the skip:
        # a conv over their concatenation, but without building wide tensors at the finer size,
        # whose memory traffic (not the multiply-adds) would dominate the time of a map.
        self.up1_coarse = nn.Conv2d(2 * width, width, 1)
        self.up1_skip = nn.Conv2d(2 * width, width, 3, padding=1)
        self.out_coarse = nn.Conv2d(width, 1, 3, padding=1)
        self.out_skip = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, images: torch.Tensor, conditions: torch.Tensor | None = None) -> torch.Tensor:
        full = self.stem(images)
        half = self.down1(full)
        h = self.transform(self.down2(half), conditions)
        h = F.leaky_relu(match_size(self.up1_coarse(h), half) + self.up1_skip(half), 0.2)
        return match_size(self.out_coarse(h), full) + self.out_skip(full)

    @abstractmethod
    def transform(self, features: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        """The quarter-resolution features after the mode's residual blocks."""


class _Conditioned(ExplainerGenerator):
    """A generator that needs its K condition maps."""

    def __init__(self, image_channels: int, *, n_conditions: int, width: int) -> None:
        if n_conditions < 1:
            raise ValueError(f"an SFT generator needs at least one condition map, got n_conditions={n_conditions}")
        super().__init__(image_channels, width=width)
        self.n_conditions = n_conditions

    def checked(self, conditions: torch.Tensor | None) -> torch.Tensor:
        if conditions is None or conditions.ndim != 4 or conditions.shape[1] != self.n_conditions:
            got = None if conditions is None else tuple(conditions.shape)
            raise ValueError(f"expected conditions of shape (N, {self.n_conditions}, H, W), got {got}")
        return conditions


class GlobalSFTGenerator(_Conditioned):
    """GSFT: all maps → one condition network → shared features read by every SFT block."""

    def __init__(self, image_channels: int, *, n_conditions: int, width: int) -> None:
        super().__init__(image_channels, n_conditions=n_conditions, width=width)
        # The trunk's stride-2 geometry twice, so the features already have its quarter size.
        self.condition = nn.Sequential(
            nn.Conv2d(n_conditions, width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(width, width, 1),
        )
        self.blocks = nn.ModuleList(SFTResBlock(2 * width, width) for _ in range(TRUNK_BLOCKS))

    def transform(self, features: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        shared = match_size(self.condition(self.checked(conditions)), features)
        for block in self.blocks:
            features = block(features, shared)
        return features


class LocalSFTGenerator(_Conditioned):
    """LSFT: block i is conditioned on map i alone, in the order the maps arrive."""

    def __init__(self, image_channels: int, *, n_conditions: int, width: int) -> None:
        super().__init__(image_channels, n_conditions=n_conditions, width=width)
        self.blocks = nn.ModuleList(SFTResBlock(2 * width, 1) for _ in range(n_conditions))

    def transform(self, features: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        maps = match_size(self.checked(conditions), features)
        for i, block in enumerate(self.blocks):
            features = block(features, maps[:, i : i + 1])
        return features


class AmortizedGenerator(ExplainerGenerator):
    """The image alone → its map; conditions are ignored, so maps come without any classifier pass."""

    def __init__(self, image_channels: int, *, width: int) -> None:
        super().__init__(image_channels, width=width)
        self.blocks = nn.Sequential(*(ResBlock(2 * width) for _ in range(TRUNK_BLOCKS)))

    def transform(self, features: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        return self.blocks(features)


def build_generator(mode: ExplainMode, *, image_channels: int, n_conditions: int, width: int) -> ExplainerGenerator:
    """The generator of `mode`; `n_conditions` is ignored by `amortized`.

    Multiply-adds per 28×28 image at width 16 (its Conv2d layers): amortized 7.1 M, gsft 8.6 M, lsft (7 maps) 11.3 M.
    """
    mode = ExplainMode(mode)
    if not mode.uses_conditions:
        return AmortizedGenerator(image_channels, width=width)
    return _CONDITIONED[mode](image_channels, n_conditions=n_conditions, width=width)


_CONDITIONED: dict[ExplainMode, type[_Conditioned]] = {
    ExplainMode.gsft: GlobalSFTGenerator, ExplainMode.lsft: LocalSFTGenerator,
}


class Discriminator(nn.Module):
    """Image-conditioned PatchGAN (pix2pix): (image, map) → one raw logit per patch, (N,1,h,w).

    The logits stay raw for `BCEWithLogitsLoss`: a squashing at the end (the reference code's
    softmax over a single unit) saturates or, for one unit, is constant and passes no gradient.
    """

    def __init__(self, image_channels: int, *, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(image_channels + 1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1),
        )

    def forward(self, images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([images, maps], 1))
