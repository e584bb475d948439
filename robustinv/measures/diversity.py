"""Diversity of an attack's k candidates per input: mean pairwise feature cosine and L2, over all and over the fooling ones."""

from __future__ import annotations

from robustinv import metrics
from robustinv.measures.registry import NAN, CellView, register_measure
from robustinv.records.columns import ROW_COLUMNS, cosine


@register_measure("diversity", columns=(ROW_COLUMNS["diversity_cos"], ROW_COLUMNS["diversity_l2"],
                                        cosine("fooled_diversity_cos")))
def diversity(view: CellView) -> dict[str, float]:
    """Mean pairwise feature cosine and L2 distance among an input's k candidates; NaN when k = 1.

    `fooled_diversity_cos` takes only the candidates that fool the model (of inputs it gets right
    clean), over inputs with at least two: the spread of the adversarial samples an attack delivers.
    """
    features = view.sample_features
    if features is None:
        return {"diversity_cos": NAN, "diversity_l2": metrics.pairwise_l2(view.samples), "fooled_diversity_cos": NAN}
    fooled = (view.sample_pred != view.y) & (view.clean_pred == view.y)
    return {
        "diversity_cos": metrics.pairwise_cosine(features),
        "diversity_l2": metrics.pairwise_l2(view.samples),
        "fooled_diversity_cos": metrics.fooled_pairwise_cosine(features, fooled),
    }
