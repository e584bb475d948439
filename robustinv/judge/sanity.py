"""Sanity checks on result rows (the AutoAttack habit): a violated check flags a row, never crashes.

Checks within one row: robust ≤ clean; the perturbation stays within ε (+1e-6).
Checks across rows of one model and defense: PGD is at least as strong as FGSM at the same ε and norm;
robust accuracy does not rise with ε for the same attack; a worst-case row carries the flags of
the rows it combines and lies at or below each of them on the same inputs.
A model that is random in eval mode gets `randomized` on every row (set where its rows are made).

AutoAttack's own checks (`robustinv.attacks.aa_runner` keeps what the reference code said)
become `aa:` flags on its rows, calibrated so that a flag means something is wrong: the
reference code warns when Square lowers accuracy by 0.2% (one image in 200 on an honest
model) and when a single input has a zero gradient (a saturated softmax does that), so those two
count only past `SQUARE_GAP` and `ZERO_GRADIENT_SHARE`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from enum import Enum

from robustinv.judge.derived import capabilities, worst_case_members
from robustinv.judge.outcomes import Outcomes, row_key
from robustinv.records import WORST_CASE, ResultRow

NORM_TOLERANCE = 1e-6
ACCURACY_TOLERANCE = 1e-9  # float noise between two means over the same inputs
SQUARE_GAP = 0.02  # Square must break more than 2% of the inputs the white-box members left standing
ZERO_GRADIENT_SHARE = 0.05  # inputs whose logit-margin gradient is exactly zero everywhere


# Capabilities of an attack (see `robustinv.attacks.base.Attack`), derived from its registered name by
# `robustinv.judge.derived.capabilities`, never read from the row's editable config.
SINGLE_STEP = "single_step"  # one gradient step of size ε (FGSM)
ITERATED = "iterated"  # repeats such steps (PGD): must not leave more accuracy than the single step


class Flag(str, Enum):
    robust_above_clean = "robust>clean"
    norm_above_eps = "norm>eps"
    pgd_weaker_than_fgsm = "pgd>fgsm"
    acc_rises_with_eps = "acc-rises-with-eps"
    masking = "masking?"
    aa_randomized = "aa:randomized"
    aa_probabilities = "aa:probabilities"
    aa_dynamic = "aa:dynamic"
    aa_zero_grad = "aa:zero-grad"
    aa_square = "aa:square"
    randomized = "randomized"
    worst_above_attack = "worst>attack"

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self]


EXPLANATIONS = {
    Flag.robust_above_clean: "robust accuracy exceeds clean accuracy: the metric or the attack is broken",
    Flag.norm_above_eps: "a perturbation is larger than ε in the attack's norm: the attack left its threat model",
    Flag.pgd_weaker_than_fgsm: "PGD leaves more accuracy than FGSM at the same ε: likely gradient masking or a "
    "too-small step size",
    Flag.acc_rises_with_eps: "robust accuracy is higher at this ε than at a smaller one for the same attack: "
    "likely gradient masking or a failing attack",
    Flag.masking: "a signature of gradient masking (see the worst-case row's `findings`): FGSM beating PGD, a "
    "gradient-free or transfer attack breaking inputs every white-box attack missed, an ε = 1 attack that fails, or "
    "AutoAttack's zero-gradient, randomness or Square checks: the robust accuracy is likely overstated",
    Flag.aa_randomized: "AutoAttack: the model's outputs differ between identical forward passes (a randomized "
    "defense or dropout left on): the numbers are not repeatable; evaluate it with version = \"rand\"",
    Flag.aa_probabilities: "AutoAttack: the model outputs probabilities, not logits: the cross-entropy attacks "
    "saturate and understate what an attacker can do",
    Flag.aa_dynamic: "AutoAttack: the forward pass computes gradients itself (a dynamic or test-time defense): "
    "fixed attacks may not be enough; use an adaptive attack",
    Flag.aa_zero_grad: f"AutoAttack: more than {ZERO_GRADIENT_SHARE:.0%} of the inputs have an exactly zero "
    "gradient of the logit margin: gradient-based attacks are blind there (shattered gradients)",
    Flag.aa_square: f"AutoAttack: the gradient-free Square attack broke more than {SQUARE_GAP:.0%} of the inputs "
    "the white-box members left standing: the white-box attacks are being misled",
    Flag.randomized: "the model's outputs differ between two identical forward passes in eval mode (dropout left on, "
    "or a randomized model): none of its numbers is repeatable",
    Flag.worst_above_attack: "the worst case is above the robust accuracy of an attack it combines, on the same "
    "inputs: the row does not hold the per-input worst case (an inconsistent or edited record)",
}
_REFERENCE_CHECKS = {  # the reference code's check function → flag
    "check_randomized": Flag.aa_randomized,
    "check_range_output": Flag.aa_probabilities,
    "check_dynamic": Flag.aa_dynamic,
}
# The reference checks that point at gradient masking (the guard turns them into `masking?`).
MASKING_REFERENCE_FLAGS = frozenset({Flag.aa_randomized, Flag.aa_zero_grad, Flag.aa_square})


def check_rows(rows: Iterable[ResultRow], outcomes: Outcomes | None = None) -> list[ResultRow]:
    """Return the rows with these checks' flags added to any they already carry (e.g. `masking?`).

    Checks that compare two rows compare them on the inputs both saw. With `outcomes` (each
    row's per-input result over its first `n` inputs, as a run has them) that is the shorter
    prefix; without (a file, as `robustinv gate` reads it) only rows over the same inputs (equal
    `n`) are compared, and the others not at all. Idempotent: on rows it has checked before (a
    stored run) it adds nothing, unless they were changed since; `robustinv gate` reruns it on
    what it reads instead of trusting the file.
    """
    rows = list(rows)
    shared = _Shared(outcomes)
    flags: list[list[str]] = [[f.value for f in _row_flags(row)] for row in rows]

    by_attack: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    single_steps: dict[tuple[str, str, str, float], list[ResultRow]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_attack[(row.model, row.defense, row.attack, row.norm)].append(i)
        if SINGLE_STEP in capabilities(row):
            single_steps[(row.model, row.defense, row.norm, row.eps)].append(row)

    for i, row in enumerate(rows):
        if ITERATED not in capabilities(row):
            continue
        if any(shared.above(row, fgsm) for fgsm in single_steps.get((row.model, row.defense, row.norm, row.eps), ())):
            flags[i].append(Flag.pgd_weaker_than_fgsm.value)

    for indices in by_attack.values():
        ordered = sorted(indices, key=lambda j: rows[j].eps)
        for position, i in enumerate(ordered):
            if any(shared.above(rows[i], rows[j]) for j in ordered[:position] if rows[j].eps < rows[i].eps):
                flags[i].append(Flag.acc_rises_with_eps.value)

    for i, row in enumerate(rows):
        if row.attack == WORST_CASE:
            flags[i] += _worst_case_flags(row, rows, shared)

    return [
        replace(row, flags=tuple(dict.fromkeys([*row.flags, *row_flags])))
        for row, row_flags in zip(rows, flags)
    ]


class _Shared:
    """Robust accuracies of two rows on the inputs both saw."""

    def __init__(self, outcomes: Outcomes | None) -> None:
        self.outcomes = outcomes

    def above(self, row: ResultRow, other: ResultRow) -> bool:
        """Whether `row` leaves more robust accuracy than `other` on their shared inputs (False when unknown)."""
        if self.outcomes is not None:
            mine, theirs = self.outcomes.get(row_key(row)), self.outcomes.get(row_key(other))
            if mine is not None and theirs is not None:
                m = min(len(mine), len(theirs))
                return m > 0 and float(mine[:m].mean()) > float(theirs[:m].mean()) + ACCURACY_TOLERANCE
        return row.n == other.n and row.robust_acc > other.robust_acc + ACCURACY_TOLERANCE


def _worst_case_flags(worst: ResultRow, rows: list[ResultRow], shared: _Shared) -> list[str]:
    """What a worst-case row must carry: every flag of the rows it combines, `masking?` with findings, and
    `worst>attack` when it is above an attack on the same inputs."""
    members = worst_case_members(worst, rows)
    flags = [flag for row in members for flag in row.flags]
    if worst.config.get("findings"):
        flags.append(Flag.masking.value)
    if any(shared.above(worst, row) for row in members):
        flags.append(Flag.worst_above_attack.value)
    return flags


def reference_flags(row: ResultRow) -> list[Flag]:
    """Calibrated flags from what AutoAttack's code reported for this row (none for other attacks)."""
    diagnostics = row.config.get("diagnostics") or {}
    flags = list(dict.fromkeys(
        _REFERENCE_CHECKS[c["check"]] for c in diagnostics.get("checks", ()) if c.get("check") in _REFERENCE_CHECKS
    ))
    if diagnostics.get("zero_gradient_share", 0.0) > ZERO_GRADIENT_SHARE:
        flags.append(Flag.aa_zero_grad)
    if square_gain(diagnostics.get("log", {})) > SQUARE_GAP:
        flags.append(Flag.aa_square)
    return flags


def square_gain(log: dict[str, float]) -> float:
    """How much robust accuracy Square removed after the members before it (AutoAttack's Square check)."""
    before = [acc for member, acc in log.items() if member not in ("square", "clean")]
    if "square" not in log or not before:
        return 0.0
    return min(before) - log["square"]


def _row_flags(row: ResultRow) -> list[Flag]:
    flags = reference_flags(row)
    if row.robust_acc > row.clean_acc:
        flags.append(Flag.robust_above_clean)
    bound = row.max_linf if row.norm == "linf" else row.max_l2
    if bound > row.eps + NORM_TOLERANCE:
        flags.append(Flag.norm_above_eps)
    return flags
