"""Free inversion: what the model believes each class looks like, and how often it agrees."""

from __future__ import annotations

import torch
from torch import nn

from robustinv.inversion.encoding import soft_codes
from robustinv.inversion.generator import FreeGenerator
from robustinv.runtime import model_device, predict_logits


@torch.no_grad()
def invert_classes(
    generator: FreeGenerator, model: nn.Module, *, per_class: int, tau: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images for every class, (K, per_class, C, H, W), and the model's predictions, (K, per_class)."""
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    generator.train()  # dropout stays on when sampling
    device = model_device(model)
    k = generator.num_classes
    targets = torch.arange(k).repeat_interleave(per_class)
    codes = soft_codes(targets, k, tau=tau, generator=rng)
    noise = torch.randn(len(targets), generator.z_dim, generator=rng)
    images = generator(codes.to(device), noise.to(device)).cpu()
    pred = predict_logits(model, images).argmax(1)
    return images.view(k, per_class, *images.shape[1:]), pred.view(k, per_class)
