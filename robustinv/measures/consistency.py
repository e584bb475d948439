"""Feature consistency (Dong et al. 2017): how close the model's penultimate features stay under attack."""

from __future__ import annotations

from robustinv import metrics
from robustinv.measures.registry import NAN, CellView, register_measure
from robustinv.records.columns import ROW_COLUMNS


@register_measure("feature_consistency", columns=(ROW_COLUMNS["feature_consistency"],))
def feature_consistency(view: CellView) -> dict[str, float]:
    """Mean cosine of clean and adversarial penultimate features (Dong et al. 2017); NaN without features."""
    if view.clean_features is None or view.adv_features is None:
        return {"feature_consistency": NAN}
    return {"feature_consistency": metrics.feature_consistency(view.clean_features, view.adv_features)}
