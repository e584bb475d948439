"""Penultimate features φ(x): what the diversity and consistency measures compare."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustinv.errors import ModelError

FeatureFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def logits_and_features(model: nn.Module, name: str = "model") -> FeatureFn:
    """A function x ↦ (f(x), φ(x)) in one forward pass; φ is the input of the final linear layer.

    Zoo models expose `features`; for other models the input of the last `nn.Linear` is caught
    with a forward hook. Models with neither (e.g. TorchScript without a Linear) are refused.
    """
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if callable(features) and isinstance(head, nn.Module) and not isinstance(features, nn.Module):

        def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            phi = features(x)
            return head(phi), phi.flatten(1)

        return split
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(
            f"model {name!r} exposes no penultimate features: give it a `features(x)` method "
            "or end it with an nn.Linear layer"
        )
    last = linears[-1]

    def hooked(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        caught: list[torch.Tensor] = []
        handle = last.register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0]))
        try:
            logits = model(x)
        finally:
            handle.remove()
        return logits, caught[-1].flatten(1)

    return hooked
