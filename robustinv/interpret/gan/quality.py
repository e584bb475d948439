"""How close predicted interpretation maps are to the real ones, and which condition maps matter.

Pure functions on tensors of maps (N, C, H, W) with values in [0, 1]. SSIM follows Wang et al.
2004: an 11-tap Gaussian window of σ = 1.5, data range 1, C1 = 0.01², C2 = 0.03², filtered
without padding, so border statistics are not diluted by zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.interpret.gan.training import predict_maps

_WINDOW = 11
_SIGMA = 1.5
_C1 = 0.01**2
_C2 = 0.03**2


def _same_shape(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error over every pixel of every map."""
    _same_shape(pred, target)
    return float((pred.double() - target.double()).abs().mean())


def _window(height: int, width: int) -> torch.Tensor:
    """The normalized 1-D Gaussian, shrunk to the largest odd size ≤ min(H, W) for small maps (8×8 digits)."""
    size = min(_WINDOW, height, width)
    if size % 2 == 0:
        size -= 1
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * _SIGMA**2))
    return taps / taps.sum()


def _blur(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, valid positions only, of (M, 1, H, W) maps."""
    x = F.conv2d(x, taps.view(1, 1, 1, -1))
    return F.conv2d(x, taps.view(1, 1, -1, 1))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each image's maps, (N,) in float64 (channels are averaged)."""
    _same_shape(pred, target)
    n, c, h, w = pred.shape
    taps = _window(h, w).to(pred.device)
    x = pred.double().reshape(n * c, 1, h, w)
    y = target.double().reshape(n * c, 1, h, w)
    mu_x, mu_y = _blur(x, taps), _blur(y, taps)
    var_x = _blur(x * x, taps) - mu_x * mu_x
    var_y = _blur(y * y, taps) - mu_y * mu_y
    cov = _blur(x * y, taps) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + _C1) * (2 * cov + _C2)) / ((mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2))
    return index.reshape(n, -1).mean(1)


def mean_ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """SSIM averaged over the images."""
    return float(ssim(pred, target).mean())


def ablation(generator: nn.Module, images: torch.Tensor, conditions: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """For each condition map i, mean SSIM with every map minus mean SSIM with map i set to zero.

    A large drop means the generator relies on map i; about zero means it ignores it.
    """
    full = mean_ssim(predict_maps(generator, images, conditions), targets)
    drops = []
    for i in range(conditions.shape[1]):
        ablated = conditions.clone()
        ablated[:, i] = 0
        drops.append(full - mean_ssim(predict_maps(generator, images, ablated), targets))
    return drops
