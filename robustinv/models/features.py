"""Penultimate features φ(x): what the diversity and consistency measures compare."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustinv.errors import ModelError

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def penultimate(model: nn.Module, name: str = "model") -> FeatureFn:
    """A function x ↦ φ(x), the input of the model's final linear layer, flattened per input.

    Zoo models expose `features`; for other models the input of the last `nn.Linear` is caught
    with a forward hook. Models with neither (e.g. TorchScript without a Linear) are refused.
    """
    features = getattr(model, "features", None)
    if callable(features) and not isinstance(features, nn.Module):
        return lambda x: features(x).flatten(1)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(
            f"model {name!r} exposes no penultimate features: give it a `features(x)` method "
            "or end it with an nn.Linear layer"
        )
    last = linears[-1]

    def hooked(x: torch.Tensor) -> torch.Tensor:
        caught: list[torch.Tensor] = []
        handle = last.register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0]))
        try:
            model(x)
        finally:
            handle.remove()
        return caught[-1].flatten(1)

    return hooked
