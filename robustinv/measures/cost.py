"""What an attack spent per input, in the unit that makes attacks comparable: gradient evaluations of the model."""

from __future__ import annotations

from robustinv.measures.registry import CellView, register_measure


@register_measure("cost", columns=("grad_evals",))
def cost(view: CellView) -> dict[str, float]:
    """The attack's gradient budget per input (PGD: steps × restarts; generator: draws × refine steps)."""
    return {"grad_evals": view.grad_evals}
