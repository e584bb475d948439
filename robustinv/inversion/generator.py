"""Conditional generators for network inversion: `free` G(z, c) → x and `perturb` G(x, z, c) → x + ε·tanh(h).

Both take the soft label code c and a noise vector z, never a one-hot label. Dropout2d after
the up-convolutions stays active when sampling (`sample` puts the generator in train mode):
every dropout mask is another sample.
"""

from __future__ import annotations

import torch
from torch import nn

from robustinv.errors import RobustinvError
from robustinv.inversion.encoding import hot_matrix

InputShape = tuple[int, int, int]


class InversionError(RobustinvError):
    """A generator that cannot be built or trained as configured."""


def check_shape(input_shape: InputShape) -> None:
    c, h, w = input_shape
    if c not in (1, 3) or h % 4 or w % 4 or h < 4 or w < 4:
        raise InversionError(
            f"inverting generators take 1- or 3-channel images with height and width divisible by 4; "
            f"got shape {input_shape}"
        )


def straight_through_clip(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] going forward, identity going backward.

    A plain clamp has zero gradient outside [0, 1]: a pixel pushed past the range (background
    pixels at 0 pushed negative) would never get a signal to come back. The forward value is
    exactly the clipped one, so the ε bound is unaffected.
    """
    return x + (x.clamp(0.0, 1.0) - x).detach()


def _up(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.Dropout2d(dropout))


class _Conditioned(nn.Module):
    """Shared conditioning: (c, z) → a feature map at a quarter of the input resolution."""

    def __init__(self, input_shape: InputShape, num_classes: int, *, channels: int, z_dim: int, use_hot_matrix: bool):
        super().__init__()
        check_shape(input_shape)
        _, h, w = input_shape
        self.num_classes, self.z_dim, self.use_hot_matrix = num_classes, z_dim, use_hot_matrix
        self.bottom = (h // 4, w // 4)
        self.project = nn.Sequential(nn.Linear(num_classes + z_dim, channels * self.bottom[0] * self.bottom[1]),
                                     nn.LeakyReLU(0.2))
        self.code_channels = channels + int(use_hot_matrix)

    def code_map(self, codes: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        maps = self.project(torch.cat([codes, noise], 1)).view(len(codes), -1, *self.bottom)
        if self.use_hot_matrix:
            maps = torch.cat([maps, hot_matrix(codes.argmax(1), self.num_classes, self.bottom)], 1)
        return maps


def straight_through_sign(h: torch.Tensor) -> torch.Tensor:
    """sign(h) going forward, tanh's gradient going backward."""
    soft = torch.tanh(h)
    return soft + (torch.sign(h) - soft).detach()


class PerturbGenerator(_Conditioned):
    """G(x, z, c): an encoder–decoder that returns x' = clip(x + ε·tanh(h)), so ‖x' − x‖∞ ≤ ε.

    With `saturate`, x' = clip(x + ε·sign(h)): every pixel moves by the full ε, to a corner of the
    ε-box, where PGD's examples lie. On adversarially trained models a perturbation's strength
    depends on its magnitude far more than on its detail, and a generator unsure of a pixel's
    sign would otherwise leave it near 0 (docs/results.md, "Generator recipes on the defended references").
    """

    def __init__(
        self, input_shape: InputShape, num_classes: int, *, width: int = 16, z_dim: int = 16,
        dropout: float = 0.3, use_hot_matrix: bool = False, saturate: bool = False,
    ) -> None:
        super().__init__(input_shape, num_classes, channels=2 * width, z_dim=z_dim, use_hot_matrix=use_hot_matrix)
        self.saturate = saturate
        c = input_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.down = nn.Sequential(
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        )
        self.mix = nn.Sequential(nn.Conv2d(4 * width + self.code_channels, 4 * width, 3, padding=1), nn.LeakyReLU(0.2))
        self.up = nn.Sequential(_up(4 * width, 2 * width, dropout), _up(2 * width, width, dropout))
        self.out = nn.Conv2d(2 * width, c, 3, padding=1)  # sees the decoder and the stem (skip connection)
        # The code also enters at full resolution: a code-conditioned pattern learns the
        # class-level (universal) part of the perturbation in a few hundred steps; the
        # encoder–decoder adds the image-specific part.
        # A small MLP rather than a linear map: a soft code's argmax is not linear in the code.
        out = nn.Linear(8 * width, c * input_shape[1] * input_shape[2])
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.pattern = nn.Sequential(nn.Linear(num_classes + z_dim, 8 * width), nn.LeakyReLU(0.2), out)

    def forward(self, x: torch.Tensor, codes: torch.Tensor, noise: torch.Tensor, eps: float) -> torch.Tensor:
        skip = self.stem(x)
        hidden = self.mix(torch.cat([self.down(skip), self.code_map(codes, noise)], 1))
        h = self.out(torch.cat([self.up(hidden), skip], 1)) + self.pattern(torch.cat([codes, noise], 1)).view_as(x)
        return straight_through_clip(x + eps * (straight_through_sign(h) if self.saturate else torch.tanh(h)))


class FreeGenerator(_Conditioned):
    """G(z, c) → x ∈ [0, 1]: what the model believes the coded class looks like."""

    def __init__(
        self, input_shape: InputShape, num_classes: int, *, width: int = 16, z_dim: int = 16,
        dropout: float = 0.3, use_hot_matrix: bool = False,
    ) -> None:
        super().__init__(input_shape, num_classes, channels=4 * width, z_dim=z_dim, use_hot_matrix=use_hot_matrix)
        self.up = nn.Sequential(_up(self.code_channels, 2 * width, dropout), _up(2 * width, width, dropout))
        self.out = nn.Conv2d(width, input_shape[0], 3, padding=1)

    def forward(self, codes: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.up(self.code_map(codes, noise))))
