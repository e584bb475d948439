"""Release gates: a TOML policy of bounds on result columns, checked against a run (and a baseline run).

A policy is a list of rules. Each rule selects result rows (by model, defense, attack, ε) and bounds
one numeric column: `min`, `max`, and/or `max_drop` against the same rows of a baseline run.
`attack = "worst_case"` selects the per-input worst case over every attack, the verdict a release
is judged by. For accuracies, `bound = "low"` (or `"high"`) bounds the Wilson 95% interval's lower
(upper) end instead of the measured value, so a small evaluation set cannot pass by luck.
Checking is a pure function from records to a `GateVerdict`; rendering it (JUnit, Markdown) and
deciding the exit code happen elsewhere.

The gate fails closed: a rule that cannot be checked honestly — no matching row, a missing value,
a row the sanity checks flagged or whose attack errored, a drop without a baseline — fails, and its
`reason` says why. A number that cannot be trusted never lets a release through.

The rules and their validation are `robustinv.gating.policy`; checking them `robustinv.gating.checks`.
"""

from robustinv.gating.checks import evaluate_gate, gate_run, outcome_summary
from robustinv.gating.policy import (
    FRACTION_METRICS, METRICS, TOLERANCE, Bound, Policy, PolicyError, Rule, load_policy,
)

__all__ = [
    "FRACTION_METRICS", "METRICS", "TOLERANCE", "Bound", "Policy", "PolicyError", "Rule", "evaluate_gate", "gate_run",
    "load_policy", "outcome_summary",
]
