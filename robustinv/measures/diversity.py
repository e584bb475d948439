"""Diversity of an attack's k candidates per input: mean pairwise cosine of their features, mean pairwise L2."""

from __future__ import annotations

from robustinv import metrics
from robustinv.measures.registry import NAN, CellView, register_measure


@register_measure("diversity", columns=("diversity_cos", "diversity_l2"))
def diversity(view: CellView) -> dict[str, float]:
    """Mean pairwise feature cosine and L2 distance among an input's k candidates; NaN when k = 1."""
    cosine = metrics.pairwise_cosine(view.sample_features) if view.sample_features is not None else NAN
    return {"diversity_cos": cosine, "diversity_l2": metrics.pairwise_l2(view.samples)}
