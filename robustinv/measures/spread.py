"""The spread of an attack's successful samples in the model's output and in pixel space.

On adversarially trained models the penultimate features barely move within ε: the feature
cosine among any two adversarial samples of an input is 0.99 or more, whichever attack made
them, so `fooled_diversity_cos` cannot tell a diverse attack from a repetitive one there. These
columns look where the samples do differ, over the candidates that fool the model on inputs it
classifies correctly:

- `fooled_classes`: how many different wrong classes the fooling candidates of an input reach,
  averaged over the inputs broken at least once (1 to k; a multi-targeted attack reaches more).
- `fooled_l2`: the mean pairwise L2 distance between the fooling candidates of an input, over
  inputs with at least two (0 when they are all the same image).
- `fooled_delta_cos`: the mean pairwise cosine between their perturbations x' − x, scale-free
  (1 when every sample pushes the same pixels the same way).
"""

from __future__ import annotations

import math

import torch

from robustinv import metrics
from robustinv.measures.registry import CellView, register_measure
from robustinv.records.columns import cosine, non_negative


def classes_reached(pred: torch.Tensor, fooled: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per input, the number of distinct classes among its fooling candidates' predictions, (k, N) → (N,)."""
    hits = torch.zeros(pred.shape[1], num_classes, dtype=torch.bool)
    inputs = torch.arange(pred.shape[1]).expand_as(pred)
    hits[inputs[fooled], pred[fooled]] = True
    return hits.sum(1)


def fooled_pairwise_l2(samples: torch.Tensor, fooled: torch.Tensor) -> torch.Tensor:
    """Per input, the mean pairwise L2 distance among its fooling candidates (k, N, ...); NaN with fewer than two."""
    flat = samples.flatten(2).double().transpose(0, 1)  # (N, k, D)
    mask = fooled.T.double()  # (N, k)
    distances = torch.cdist(flat, flat) * mask[:, :, None] * mask[:, None, :]
    count = mask.sum(1)
    pairs = count * (count - 1)
    return torch.where(pairs > 0, distances.sum((1, 2)) / pairs.clamp(min=1), torch.full_like(count, math.nan))


def _mean(values: torch.Tensor) -> float:
    kept = values[~values.isnan()]
    return float(kept.mean()) if len(kept) else math.nan


@register_measure("spread", columns=(non_negative("fooled_classes"), non_negative("fooled_l2"),
                                     cosine("fooled_delta_cos")))
def spread(view: CellView) -> dict[str, float]:
    """Wrong classes reached per broken input, and pixel L2 and perturbation cosine among the fooling candidates."""
    fooled = (view.sample_pred != view.y) & (view.clean_pred == view.y)
    broken = fooled.any(0)
    num_classes = int(max(view.sample_pred.max(), view.y.max())) + 1
    reached = classes_reached(view.sample_pred, fooled, num_classes)[broken].double()
    deltas = (view.samples - view.x[None]).flatten(2)
    return {
        "fooled_classes": float(reached.mean()) if len(reached) else math.nan,
        "fooled_l2": _mean(fooled_pairwise_l2(view.samples, fooled)),
        "fooled_delta_cos": _mean(metrics.fooled_cosine_per_input(deltas, fooled)),
    }
