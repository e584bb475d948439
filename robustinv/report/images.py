"""Image files rendered from tensors (PNG grids), written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import save_image

from robustinv.files import atomic_write


def save_grid(images: torch.Tensor, path: Path, *, scale: int = 4) -> None:
    """A near-square PNG grid of (N, C, H, W) images in [0, 1], each enlarged `scale`× for viewing."""
    big = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    atomic_write(path, lambda tmp: save_image(big, str(tmp), nrow=math.ceil(math.sqrt(len(images))), padding=2,
                                              pad_value=0.5, format="png"))
