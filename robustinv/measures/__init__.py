"""Per-cell measurements: what a result row reports besides accuracy, one measure per file.

Every measure is a function of the cell's `CellView` (the model's view of the clean inputs,
the adversarial examples and all k candidates), or for attention measures of the explained
inputs, that returns named columns it declares with their types and bounds. Adding a column is
one new file here with `@register_measure` and its import below.
"""

from robustinv.measures import (  # noqa: F401  (fill the registry)
    attribution, candidates, consistency, cost, diversity, neurons, perturbation, spread,
)
from robustinv.measures.registry import (
    MEASURES, CellView, Measure, attention_columns, measure_attention, measure_cell, register_measure, schema,
)

__all__ = [
    "MEASURES", "CellView", "Measure", "attention_columns", "measure_attention", "measure_cell", "register_measure",
    "schema",
]
