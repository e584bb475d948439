"""Hidden label encoding (soft-vector conditioning, Suhail & Sethi 2024).

The generator never sees a one-hot label. A code v ~ N(0, I_K) is turned into a soft vector
c = softmax(v / τ); the intended label is t = argmax c. Many different codes share one t, so the
generator has to learn a spread of inputs per label rather than one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_codes(
    targets: torch.Tensor, num_classes: int, *, tau: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Soft vectors c with argmax c = targets: a Gaussian draw whose largest entry is moved to t."""
    v = torch.randn(len(targets), num_classes, generator=generator)
    top = v.max(1, keepdim=True).values
    # swap the largest entry into the target's position, keep everything else as drawn
    current = v.gather(1, targets[:, None])
    v = v.scatter(1, v.argmax(1, keepdim=True), current).scatter(1, targets[:, None], top)
    return F.softmax(v / tau, dim=1)


def wrong_class_targets(
    y: torch.Tensor, num_classes: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A uniformly drawn class other than the true one, per input."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y + shift) % num_classes


def rotating_targets(y: torch.Tensor, num_classes: int, draw: int, offset: torch.Tensor | None = None) -> torch.Tensor:
    """The `draw`-th wrong class of each input, starting at `offset` (default: the input's index).

    Consecutive draws of one input get different wrong classes; with the index as offset every
    (true, target) pair is covered across inputs.
    """
    start = torch.arange(len(y)) if offset is None else offset
    return (y + 1 + (start + draw) % (num_classes - 1)) % num_classes


def hot_matrix(targets: torch.Tensor, num_classes: int, size: tuple[int, int]) -> torch.Tensor:
    """K×K maps with ones in row and column t, resized to `size`: the optional "vector-matrix" channel."""
    eye = F.one_hot(targets, num_classes).float()
    grid = ((eye[:, :, None] + eye[:, None, :]) > 0).float()[:, None]
    return F.interpolate(grid, size=size, mode="nearest")
