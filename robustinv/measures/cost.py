"""What an attack spent per input: its nominal gradient budget, and the model passes it actually took."""

from __future__ import annotations

from robustinv.measures.registry import CellView, register_measure
from robustinv.records.columns import Combine, non_negative


@register_measure("cost", columns=(non_negative("grad_evals", Combine.same), non_negative("forward_passes"),
                                   non_negative("backward_passes")))
def cost(view: CellView) -> dict[str, float]:
    """The nominal budget (PGD: steps × restarts; generator: draws × refine steps) and the counted passes.

    `forward_passes` / `backward_passes`: images the model saw (and sent a gradient back through)
    while the attack ran, per evaluated input, counted by the checked model every call goes through.
    """
    return {"grad_evals": view.grad_evals, "forward_passes": view.forward_passes,
            "backward_passes": view.backward_passes}
