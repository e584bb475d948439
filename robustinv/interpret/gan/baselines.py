"""Cheap predictors of the target map from the condition maps, the bar an explainer GAN must clear.

Each is fitted on a training set and evaluated on held-out data with the same metrics as the GAN:
`MeanMap` uses nothing of the input, `BestAffineMap` one condition map, `PixelLeastSquares` all of
them linearly. A GAN that does not beat them has learned no more than a linear read-out.
Conditions are (N, K, H, W), targets and predictions (N, 1, H, W) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_PIXEL_CHUNK = 64
"""Pixels solved per `lstsq` call: the batched design matrix is (pixels, N, K+1), too large at once."""


@dataclass(frozen=True)
class MeanMap:
    """The training targets' mean map, whatever the input."""

    mean: torch.Tensor  # (1, H, W)

    @classmethod
    def fit(cls, conditions: torch.Tensor, targets: torch.Tensor) -> MeanMap:
        return cls(targets.mean(0))

    def predict(self, conditions: torch.Tensor) -> torch.Tensor:
        return self.mean.expand(len(conditions), *self.mean.shape).clone()


@dataclass(frozen=True)
class BestAffineMap:
    """a·map_index + b, clipped to [0, 1], for the one condition map with the lowest training MAE.

    a and b are least squares over all training pixels; the choice is made after clipping, on the
    error the prediction actually has.
    """

    index: int
    a: float
    b: float

    @classmethod
    def fit(cls, conditions: torch.Tensor, targets: torch.Tensor) -> BestAffineMap:
        y = targets.double().flatten()
        best: tuple[float, BestAffineMap] | None = None
        for i in range(conditions.shape[1]):
            x = conditions[:, i].double().flatten()
            centred = x - x.mean()
            spread = float((centred * centred).sum())
            # A constant map carries no information; it can still be the best (as the mean).
            a = float((centred * (y - y.mean())).sum()) / spread if spread > 0 else 0.0
            candidate = cls(i, a, float(y.mean()) - a * float(x.mean()))
            error = float((candidate.predict(conditions).double().flatten() - y).abs().mean())
            if best is None or error < best[0]:
                best = (error, candidate)
        if best is None:
            raise ValueError("BestAffineMap needs at least one condition map")
        return best[1]

    def predict(self, conditions: torch.Tensor) -> torch.Tensor:
        return (self.a * conditions[:, self.index : self.index + 1] + self.b).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PixelLeastSquares:
    """At each pixel position, least squares of the target on all K condition maps plus a bias.

    `weights` is (H·W, K+1), the bias last. `torch.linalg.lstsq` copes with the rank-deficient
    systems of background pixels, where the maps are constant across the training set.
    """

    weights: torch.Tensor  # float64

    @classmethod
    def fit(cls, conditions: torch.Tensor, targets: torch.Tensor) -> PixelLeastSquares:
        n = len(conditions)
        maps = conditions.double().flatten(2)  # (N, K, P)
        design = torch.cat([maps, torch.ones(n, 1, maps.shape[2], dtype=torch.float64, device=maps.device)], 1)
        design = design.permute(2, 0, 1)  # (P, N, K+1)
        wanted = targets.double().flatten(1).T.unsqueeze(-1)  # (P, N, 1)
        solved = [torch.linalg.lstsq(a, b).solution
                  for a, b in zip(design.split(_PIXEL_CHUNK), wanted.split(_PIXEL_CHUNK))]
        return cls(torch.cat(solved).squeeze(-1))

    def predict(self, conditions: torch.Tensor) -> torch.Tensor:
        n, k, h, w = conditions.shape
        if self.weights.shape != (h * w, k + 1):
            raise ValueError(f"fitted for {self.weights.shape[0]} pixels and {self.weights.shape[1] - 1} maps, "
                             f"got conditions of shape {tuple(conditions.shape)}")
        maps = conditions.double().flatten(2)
        pred = torch.einsum("nkp,pk->np", maps, self.weights[:, :k]) + self.weights[:, k]
        return pred.clamp(0.0, 1.0).reshape(n, 1, h, w).to(conditions.dtype)
