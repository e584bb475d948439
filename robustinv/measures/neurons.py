"""Neuron consistency (Dong et al. 2017): whether the last conv layer's channels respond to the same inputs."""

from __future__ import annotations

from robustinv.interpret.agreement import neuron_consistency
from robustinv.interpret.explained import ExplainedPair
from robustinv.measures.registry import NAN, register_measure
from robustinv.records.columns import fraction

COLUMNS = ("neuron_consistency", "neuron_purity_clean", "neuron_purity_adv")


@register_measure("neurons", columns=tuple(fraction(name) for name in COLUMNS), attention=True)
def neurons(pair: ExplainedPair | None) -> dict[str, float]:
    """Overlap of each channel's top-activating inputs clean vs adversarial, and their class purity."""
    if pair is None:
        return dict.fromkeys(COLUMNS, NAN)
    return neuron_consistency(pair.clean.activations, pair.adversarial.activations, pair.y)
