"""A model's verdict at every ε: the worst-case row over all its attacks, and `masking?` where the evidence says so.

Runs after the sanity checks over every row of a run. For each (model, defense, norm, ε) it
combines the per-input outcomes of every attack cell (suite attacks, the guard's stronger PGD and
transfer attack, generators) into a `worst_case` row, adds the convergence notes and masking
findings of `robustinv.judge.guard` to that row's config, and flags the worst-case row and the
white-box rows of the group `masking?` when there is a finding. The worst case carries every
flag of the rows it combines: it is only as trustworthy as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from robustinv.judge.outcomes import Outcomes, row_key
from robustinv.judge.guard import GuardConfig, GuardEvidence, convergence_notes, masking_findings
from robustinv.records import WORST_CASE, ResultRow
from robustinv.judge.sanity import MASKING_REFERENCE_FLAGS, Flag
from robustinv.judge.worst_case import Outcome, WorstCase, worst_case


@dataclass
class ModelOutcomes:
    """What one (model, defense) produced that rows do not hold: per-input outcomes, the unbounded check."""

    clean_correct: npt.NDArray[np.bool_]  # over the eval set
    outcomes: dict[tuple[str, float], Outcome] = field(default_factory=dict)  # (attack, ε) → outcome
    unbounded_acc: dict[str, float] = field(default_factory=dict)  # norm → what an ε = 1 PGD left (guarded models)


@dataclass(frozen=True)
class Verdict:
    """The rows with `masking?` flags where found and the worst-case rows after them; each worst case's outcome."""

    rows: list[ResultRow]
    worst: Outcomes


def verdict_rows(
    rows: Sequence[ResultRow], outcomes: dict[tuple[str, str], ModelOutcomes], guard: GuardConfig
) -> Verdict:
    """The rows with `masking?` flags where found, followed by one worst-case row per (model, defense, norm, ε)."""
    flagged: dict[int, ResultRow] = {}
    worst_rows = []
    worst_outcomes: Outcomes = {}
    for (model, defense), state in outcomes.items():
        groups: dict[tuple[str, float], list[int]] = {}
        for i, row in enumerate(rows):
            if (row.model, row.defense) == (model, defense) and (row.attack, row.eps) in state.outcomes:
                groups.setdefault((row.norm, row.eps), []).append(i)
        for (norm, eps), members in sorted(groups.items()):
            group = [rows[i] for i in members]
            group_outcomes = [state.outcomes[(row.attack, eps)] for row in group]
            worst = worst_case(state.clean_correct, group_outcomes)
            evidence = _evidence(eps, group, group_outcomes, worst, state.unbounded_acc.get(norm))
            findings = masking_findings(evidence, guard)
            white_box = {o.attack for o in group_outcomes if not o.gradient_free}
            notes = convergence_notes(worst, white_box, tolerance=guard.tolerance)
            if findings:
                for i, outcome in zip(members, group_outcomes):
                    if not outcome.gradient_free:
                        flagged[i] = _with_flag(flagged.get(i, rows[i]), Flag.masking.value)
            worst_rows.append(_worst_case_row(group, worst, findings, notes))
            worst_outcomes[row_key(worst_rows[-1])] = worst.robust
    return Verdict([flagged.get(i, row) for i, row in enumerate(rows)] + worst_rows, worst_outcomes)


def _evidence(eps: float, group: list[ResultRow], outcomes: list[Outcome], worst: WorstCase,
              unbounded_acc: float | None) -> GuardEvidence:
    # on the inputs every attack of the group saw, as the worst case's log has them
    fgsm = [entry.attack_acc for entry, o in zip(worst.log, outcomes) if o.single_step]
    pgd = [entry.attack_acc for entry, o in zip(worst.log, outcomes) if o.iterated]
    reference = {
        row.attack: [flag for flag in row.flags if flag in {f.value for f in MASKING_REFERENCE_FLAGS}] for row in group
    }
    n = len(worst.robust)
    return GuardEvidence(
        eps=eps,
        fgsm_vs_pgd=(min(fgsm), max(pgd)) if fgsm and pgd else None,
        gradient_free_only=worst.gradient_free_only / n if n else 0.0,
        gradient_free_attacks=tuple(r.attack for r, o in zip(group, outcomes) if o.gradient_free),
        unbounded_acc=unbounded_acc if eps == max(r.eps for r in group) else None,
        reference_flags={attack: flags for attack, flags in reference.items() if flags},
    )


def _worst_case_row(group: list[ResultRow], worst: WorstCase, findings: list[str], notes: list[str]) -> ResultRow:
    first = group[0]
    clean_correct = worst.clean_correct
    n = len(clean_correct)
    broken = clean_correct & ~worst.robust
    seconds = sum(r.seconds for r in group)
    flags = [flag for row in group for flag in row.flags] + ([Flag.masking.value] if findings else [])
    config = {
        "name": WORST_CASE, "norm": first.norm, "eps": first.eps,
        "attacks": {row.attack: row.n for row in group}, "seeds": {row.attack: row.seed for row in group},
        "log": [vars(entry) for entry in worst.log],
        "findings": findings, "notes": notes,
    }
    return replace(
        first, attack=WORST_CASE, n=n, clean_acc=worst.clean_acc, robust_acc=worst.robust_acc,
        success_rate=float(broken.sum()) / int(clean_correct.sum()) if bool(clean_correct.any()) else math.nan,
        mean_linf=math.nan, max_linf=max(r.max_linf for r in group), mean_l2=math.nan,
        max_l2=max(r.max_l2 for r in group), seconds=seconds,
        samples_per_s=n / seconds if seconds > 0 else math.inf,
        train_seconds=sum(r.train_seconds for r in group), samples_per_input=1,
        candidate_success=math.nan, diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan,
        feature_consistency=math.nan, flags=tuple(dict.fromkeys(flags)), config=config, measures={},
    )


def _with_flag(row: ResultRow, flag: str) -> ResultRow:
    return row if flag in row.flags else replace(row, flags=(*row.flags, flag))

