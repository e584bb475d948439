"""Attribution drift (Explain-CNN-with-GANs maps): how far an attack moves where the model looks."""

from __future__ import annotations

from robustinv.interpret.agreement import attribution_drift, top_fraction_iou
from robustinv.interpret.explained import ExplainedPair
from robustinv.measures.registry import NAN, register_measure
from robustinv.records.columns import Column, fraction


@register_measure("attribution", columns=(Column("attribution_drift", 0.0, 2.0), fraction("attribution_iou")),
                  attention=True)
def attribution(pair: ExplainedPair | None) -> dict[str, float]:
    """Clean vs adversarial final cumulative Grad-CAM map of the true class, over the explained inputs.

    `attribution_drift`: mean of 1 − Spearman's ρ (0 = attention unmoved, 1 = unrelated);
    `attribution_iou`: mean IoU of the two maps' top-10 % pixels. NaN when nothing is explained.
    """
    if pair is None:
        return {"attribution_drift": NAN, "attribution_iou": NAN}
    clean, adversarial = pair.clean.final, pair.adversarial.final
    return {"attribution_drift": float(attribution_drift(clean, adversarial).mean()),
            "attribution_iou": float(top_fraction_iou(clean, adversarial).mean())}
