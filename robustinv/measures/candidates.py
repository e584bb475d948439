"""Single-shot success: the share of candidates that fool the model, and that hit the class they aimed at."""

from __future__ import annotations

from robustinv import metrics
from robustinv.measures.registry import NAN, CellView, register_measure
from robustinv.records.columns import ROW_COLUMNS


@register_measure("candidates", columns=tuple(ROW_COLUMNS[name] for name in ("samples_per_input", "candidate_success",
                                                                              "target_success")))
def candidates(view: CellView) -> dict[str, float]:
    """k, the share of all candidates that fool the model, and of those aimed at a class, that hit it."""
    return {
        "samples_per_input": int(view.samples.shape[0]),
        "candidate_success": metrics.candidate_success(view.clean_pred, view.sample_pred, view.y),
        "target_success": metrics.target_success(view.sample_pred, view.targets) if view.targets is not None else NAN,
    }
