"""Built-in architectures, registered by name; each adapts to the dataset's input shape."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustinv.errors import ModelError
from robustinv.registry import Registry

InputShape = tuple[int, int, int]
Builder = Callable[[InputShape, int], nn.Module]

MODELS: Registry[Builder] = Registry("model")


class ZooNet(nn.Module):
    """`body` maps an image to its penultimate features; `head` is the final linear layer."""

    def __init__(self, body: nn.Sequential, head: nn.Linear) -> None:
        super().__init__()
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _flat_size(convs: nn.Sequential, input_shape: InputShape) -> int:
    with torch.no_grad():
        return int(convs(torch.zeros(1, *input_shape)).numel())


def _require_min_size(name: str, input_shape: InputShape, minimum: int) -> None:
    _, h, w = input_shape
    if h < minimum or w < minimum:
        raise ModelError(f"model {name!r} needs images of at least {minimum}×{minimum}, got {h}×{w}")


@MODELS.register("smallcnn")
def smallcnn(input_shape: InputShape, num_classes: int) -> nn.Module:
    """Two conv blocks (32, 64 channels, 3×3, each halving the size) and a 128-unit layer."""
    _require_min_size("smallcnn", input_shape, 4)
    channels = input_shape[0]
    convs = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    body = nn.Sequential(*convs, nn.Linear(_flat_size(convs, input_shape), 128), nn.ReLU())
    return ZooNet(body, nn.Linear(128, num_classes))


@MODELS.register("lenet5")
def lenet5(input_shape: InputShape, num_classes: int) -> nn.Module:
    """conv32(5×5)-pool-conv64(5×5)-pool-fc200-fc: the classic MNIST robustness model."""
    _require_min_size("lenet5", input_shape, 4)
    channels = input_shape[0]
    convs = nn.Sequential(
        nn.Conv2d(channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    body = nn.Sequential(*convs, nn.Linear(_flat_size(convs, input_shape), 200), nn.ReLU())
    return ZooNet(body, nn.Linear(200, num_classes))


@MODELS.register("convnet8")
def convnet8(input_shape: InputShape, num_classes: int) -> nn.Module:
    """Eight 3×3 conv layers (16-16, 32-32, 64-64 with a pool after each pair, then 64-64) and a 128-unit layer.

    Deep enough that Grad-CAM's layer-by-layer story has something to tell (LeNet-5 has two conv
    layers), small enough (about 8 M multiply-adds per 28×28 image) to train on a CPU.
    """
    _require_min_size("convnet8", input_shape, 8)
    channels = input_shape[0]
    layers: list[nn.Module] = []
    for width, pool in ((16, True), (32, True), (64, True), (64, False)):
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        channels = width
    convs = nn.Sequential(*layers, nn.Flatten())
    body = nn.Sequential(*convs, nn.Linear(_flat_size(convs, input_shape), 128), nn.ReLU())
    return ZooNet(body, nn.Linear(128, num_classes))
