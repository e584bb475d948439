"""Which layers an interpretation looks at: a model's convolutional layers in the order it runs them."""

from __future__ import annotations

import torch
from torch import nn

from robustinv.runtime import model_device


@torch.no_grad()
def conv_layers(model: nn.Module, input_shape: tuple[int, int, int]) -> list[nn.Conv2d]:
    """The model's `nn.Conv2d` layers, shallowest first, as one forward pass calls them.

    Registration order need not be execution order in a user's model, so a probe input runs
    through the model with a hook on every conv layer. Each layer appears once (at its first
    call); models without conv layers, or whose modules take no hooks (TorchScript), give [].
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return []
    called: list[nn.Conv2d] = []
    handles = [c.register_forward_hook(lambda m, _i, _o: called.append(m)) for c in convs]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, *input_shape, device=model_device(model)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    seen: dict[int, nn.Conv2d] = {}
    for layer in called:
        seen.setdefault(id(layer), layer)
    return list(seen.values())
