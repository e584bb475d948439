"""What the gate checks about a run's rows besides their values: that their descriptions fit the rows.

The sanity checks derive what they compare from the rows (`robustinv.judge.derived`), not from
what a row's `config` says about itself. Where a description stays, it must agree with what is
derived: a row names an attack robustinv has registered (its capabilities follow from that name),
capabilities it records are that attack's, and a worst case lists exactly the rows of its
(model, defense, norm, ε) with their `n`. A disagreement means the file was edited (or written by
a robustinv whose attacks differ): the gate fails closed rather than judge it.
"""

from __future__ import annotations

from collections.abc import Sequence

from robustinv.judge.derived import ATTACK_CAPABILITIES, TRANSFER, attack_name, worst_case_members
from robustinv.records import WORST_CASE, ResultRow, model_label


def description_problem(rows: Sequence[ResultRow]) -> str | None:
    """The first row whose recorded description contradicts the rows, as one line; None when all agree."""
    for row in rows:
        problem = _worst_case_problem(row, rows) if row.attack == WORST_CASE else _attack_problem(row)
        if problem is not None:
            return f"{_label(row)}: {problem} (an edited or inconsistent record)"
    return None


def _attack_problem(row: ResultRow) -> str | None:
    name = attack_name(row)
    if name is None:
        return "its config names no attack"
    if name == TRANSFER:
        return None
    if name not in ATTACK_CAPABILITIES:
        return f"its config names attack {name!r}, which robustinv has not registered"
    recorded = row.config.get("capabilities")
    if recorded is not None and set(recorded) != ATTACK_CAPABILITIES[name]:
        expected = ", ".join(sorted(ATTACK_CAPABILITIES[name])) or "none"
        return f"its config lists the capabilities {', '.join(sorted(recorded)) or 'none'}, but {name}'s are {expected}"
    return None


def _worst_case_problem(worst: ResultRow, rows: Sequence[ResultRow]) -> str | None:
    listed = worst.config.get("attacks", {})
    found = {row.attack: row.n for row in worst_case_members(worst, rows)}
    if listed != found:
        return f"its config combines {_members(listed)}, but the rows at its ε are {_members(found)}"
    return None


def _members(members: dict[str, int]) -> str:
    return ", ".join(f"{name} (n={n})" for name, n in sorted(members.items())) or "none"


def _label(row: ResultRow) -> str:
    return f"{model_label(row.model, row.defense)} {row.attack} ε={row.eps:g}"
