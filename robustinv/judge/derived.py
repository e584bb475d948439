"""Facts the checks derive from rows instead of reading them from a row's own description.

A row's `config` describes the row (its attack's capabilities, the attacks a worst case
combined); an editor can change that description together with the numbers, so a check that
believed it could be switched off by the same edit it is meant to catch. What is derived here:

* an attack's capabilities, from its registered name through `ATTACK_CAPABILITIES`, a table
  that imports no attack (and so no torch); `tests/test_gate.py` checks it against every
  registered attack's own `capabilities()`;
* the rows a worst case combines: every other row of the same (model, defense, norm, ε) but the
  guard's ε = 1 check, which only serves as evidence.

What cannot be derived from the rows: which registered attack a row ran (`config.name`), the
evidence behind a worst case's `findings` (the per-input outcomes and the guard's evidence live
in the results store, not in results.json) and AutoAttack's own `diagnostics`. Only the results
store's digest of a run's rows protects those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from robustinv.records import GUARD_SUFFIXES, WORST_CASE, ResultRow

# Registered attack name → its capability flags (`robustinv.attacks.base.Attack`).
ATTACK_CAPABILITIES: Mapping[str, frozenset[str]] = {
    "apgd": frozenset({"step_size_free"}),
    "autoattack": frozenset({"step_size_free"}),
    "cascade": frozenset({"step_size_free", "iterated"}),
    "fab": frozenset(),
    "fgsm": frozenset({"single_step"}),
    "inversion": frozenset({"learns"}),
    "pgd": frozenset({"iterated"}),
    "square": frozenset({"gradient_free"}),
}
TRANSFER = "transfer"  # `config.name` of the guard's transfer rows: examples replayed, no capability of their own
UNBOUNDED_SUFFIX = GUARD_SUFFIXES[2]  # the guard's ε = 1 row: evidence for the guard, never part of a worst case


def attack_name(row: ResultRow) -> str | None:
    """The registered attack the row's config names (`transfer` for the guard's transfer rows), or None."""
    name = row.config.get("name")
    return name if isinstance(name, str) else None


def capabilities(row: ResultRow) -> frozenset[str]:
    """The capabilities of the row's attack, by its registered name; none for unknown names and transfers."""
    return ATTACK_CAPABILITIES.get(attack_name(row) or "", frozenset())


def worst_case_members(worst: ResultRow, rows: Iterable[ResultRow]) -> list[ResultRow]:
    """The rows a worst-case row combines: the other rows of its (model, defense, norm, ε)."""
    group = (worst.model, worst.defense, worst.norm, worst.eps)
    return [
        row for row in rows
        if row.attack != WORST_CASE and not row.attack.endswith(UNBOUNDED_SUFFIX)
        and (row.model, row.defense, row.norm, row.eps) == group
    ]
