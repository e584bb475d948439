"""Sanity checks on result rows (the AutoAttack habit): a violated check flags a row, never crashes.

Checks within one row: robust ≤ clean; the perturbation stays within ε (+1e-6).
Checks across rows of one model and defense: PGD is at least as strong as FGSM at the same ε and norm;
robust accuracy does not rise with ε for the same attack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from enum import Enum

from robustinv.records import ResultRow

NORM_TOLERANCE = 1e-6


class Flag(str, Enum):
    robust_above_clean = "robust>clean"
    norm_above_eps = "norm>eps"
    pgd_weaker_than_fgsm = "pgd>fgsm"
    acc_rises_with_eps = "acc-rises-with-eps"
    masking = "masking?"

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
    Flag.masking: "the gradient-masking guard found a stronger or gradient-free attack doing clearly better than "
    "the suite's PGD (see the guard row's `findings`): the robust accuracy is likely overstated",
}


def check_rows(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Return the rows with these checks' flags added to any they already carry (e.g. `masking?`)."""
    rows = list(rows)
    flags: list[list[Flag]] = [_row_flags(row) for row in rows]

    by_attack: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    fgsm_acc: dict[tuple[str, str, str, float], float] = {}
    for i, row in enumerate(rows):
        by_attack[(row.model, row.defense, row.attack, row.norm)].append(i)
        if row.config.get("name") == "fgsm":
            key = (row.model, row.defense, row.norm, row.eps)
            fgsm_acc[key] = min(fgsm_acc.get(key, 1.0), row.robust_acc)

    for i, row in enumerate(rows):
        fgsm = fgsm_acc.get((row.model, row.defense, row.norm, row.eps))
        if row.config.get("name") == "pgd" and fgsm is not None and row.robust_acc > fgsm:
            flags[i].append(Flag.pgd_weaker_than_fgsm)

    for indices in by_attack.values():
        best_so_far = None
        for i in sorted(indices, key=lambda j: rows[j].eps):
            if best_so_far is not None and rows[i].robust_acc > best_so_far:
                flags[i].append(Flag.acc_rises_with_eps)
            best_so_far = rows[i].robust_acc if best_so_far is None else min(best_so_far, rows[i].robust_acc)

    return [
        replace(row, flags=tuple(dict.fromkeys([*row.flags, *(f.value for f in row_flags)])))
        for row, row_flags in zip(rows, flags)
    ]


def _row_flags(row: ResultRow) -> list[Flag]:
    flags = []
    if row.robust_acc > row.clean_acc:
        flags.append(Flag.robust_above_clean)
    bound = row.max_linf if row.norm == "linf" else row.max_l2
    if bound > row.eps + NORM_TOLERANCE:
        flags.append(Flag.norm_above_eps)
    return flags
