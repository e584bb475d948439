"""The threat model's geometry: steepest-ascent directions, projection onto the ε-ball ∩ [0, 1], random starts.

Linf steps follow the gradient's sign, L2 steps its normalized direction; both are projected back
onto the ε-ball around the clean input and the [0, 1] image box (APGD's projections, Croce & Hein 2020).
"""

from __future__ import annotations

import torch

from robustinv.attacks.base import Norm


def _per_input(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def l2_norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def direction(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The unit step of steepest ascent in `norm` (zero where the gradient is zero)."""
    if norm is Norm.linf:
        return grad.sign()
    return grad / _per_input(l2_norms(grad) + 1e-12, grad)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """The point of the ε-ball around `x` (and of [0, 1]) that `x_adv` is moved to."""
    if norm is Norm.linf:
        return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
    delta = x_adv - x
    scale = (eps / (l2_norms(delta) + 1e-12)).clamp(max=1.0)
    # Clamping to [0, 1] moves every coordinate toward x, so the L2 norm can only shrink.
    return (x + delta * _per_input(scale, delta)).clamp(0.0, 1.0)


def random_start(x: torch.Tensor, eps: float, norm: Norm, noise: torch.Tensor) -> torch.Tensor:
    """A random point of the ball: uniform per pixel (Linf) or on the sphere (L2); `noise` ~ U(0, 1), x's shape."""
    if norm is Norm.linf:
        return (x + eps * (2 * noise - 1)).clamp(0.0, 1.0)
    gaussian = torch.special.ndtri(noise.clamp(1e-6, 1 - 1e-6))  # U(0, 1) → N(0, 1), one draw per pixel
    return project(x + eps * direction(gaussian, Norm.l2), x, eps, norm)
