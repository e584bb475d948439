"""How far the adversarial examples moved: mean and largest Linf and L2 distance to the clean inputs."""

from __future__ import annotations

from robustinv import metrics
from robustinv.measures.registry import CellView, register_measure
from robustinv.records.columns import ROW_COLUMNS


@register_measure("perturbation", columns=tuple(ROW_COLUMNS[name] for name in ("mean_linf", "max_linf", "mean_l2",
                                                                                  "max_l2")))
def perturbation(view: CellView) -> dict[str, float]:
    """Mean and largest Linf and L2 distance of the worst-case examples to the clean inputs."""
    linf, l2 = metrics.linf_norms(view.x, view.x_adv), metrics.l2_norms(view.x, view.x_adv)
    return {"mean_linf": float(linf.mean()), "max_linf": float(linf.max()),
            "mean_l2": float(l2.mean()), "max_l2": float(l2.max())}
