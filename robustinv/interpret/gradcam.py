"""Grad-CAM at every convolutional layer, on captum's `LayerGradCam` (Selvaraju et al. 2017).

A layer's map weights each channel of its output by the spatial mean of the class score's
gradient, sums the channels and keeps the positive part (ReLU); it is upsampled bilinearly
to the input size and min–max normalized per image. Maps stay float tensors throughout.
"""

from __future__ import annotations

import torch
from torch import nn

from robustinv.interpret.cumulative import normalize_maps
from robustinv.runtime import model_device


def layer_gradcams(model: nn.Module, x: torch.Tensor, target: torch.Tensor, layers: list[nn.Conv2d], *,
                   batch_size: int = 256) -> torch.Tensor:
    """(L, N, H, W) Grad-CAM maps of class `target` (N,) at each layer, on the CPU, each in [0, 1].

    The model is evaluated in eval mode and left in the mode it was in.
    """
    from captum.attr import LayerAttribution, LayerGradCam  # on use: captum costs a third of a second to import

    device = model_device(model)
    height, width = x.shape[-2:]
    was_training = model.training
    model.eval()
    try:
        maps = []
        for layer in layers:
            cam = LayerGradCam(model, layer)
            parts = []
            for xb, tb in zip(x.split(batch_size), target.split(batch_size)):
                attribution = cam.attribute(xb.to(device), target=tb.to(device), relu_attributions=True)
                upsampled = LayerAttribution.interpolate(attribution.detach(), (height, width), "bilinear")
                parts.append(upsampled[:, 0].float().cpu())
            maps.append(torch.cat(parts))
    finally:
        model.train(was_training)
    return normalize_maps(torch.stack(maps))


@torch.no_grad()
def channel_activations(model: nn.Module, x: torch.Tensor, layer: nn.Conv2d, *, batch_size: int = 256) -> torch.Tensor:
    """(N, channels) mean positive activation of each channel of `layer`'s output: what a neuron responds to."""
    device = model_device(model)
    caught: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: caught.append(out.relu().mean((-2, -1)).float().cpu()))
    was_training = model.training
    model.eval()
    try:
        for xb in x.split(batch_size):
            model(xb.to(device))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(caught)
