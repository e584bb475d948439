"""Whether a baseline row measured the same thing as the row a `max_drop` rule compares it with.

A drop means something only between two evaluations that differ in the model alone: the same
images (dataset fingerprint, seed, `n`) under the same attack (every key of its config: steps,
restarts, step size, random start, batch size, …). For a worst case, the rows it combines are
compared one by one as well. Any other difference makes the comparison fail closed, naming it.

Differences judged harmless, and why:
* the model's fingerprint and source, and every timing column: comparing two models is the point;
* what an attack reported rather than was asked to do (`capabilities`, derived anyway;
  `diagnostics`; a worst case's `log`, `findings` and `notes`);
* the version of the package that ran a reference attack (`package_version`): an upgrade
  changes no setting, as an upgrade of torch (recorded per run, not per row) does not.
"""

from __future__ import annotations

import json
import math
from typing import Any

from robustinv.judge.derived import worst_case_members
from robustinv.records import WORST_CASE, ResultRow

OUTPUT_KEYS = frozenset({"capabilities", "diagnostics", "log", "findings", "notes", "package_version"})
WORST_CASE_KEYS = frozenset({"attacks", "seeds"})  # compared through the combined rows themselves
SHOWN = 3  # differences named in a reason; the rest are counted


def evaluation_differences(row: ResultRow, before: ResultRow, rows: list[ResultRow],
                           baseline: list[ResultRow]) -> list[str]:
    """How the baseline's `before` was evaluated differently from `row`, as `what mine vs baseline's`."""
    found = _differences(row, before)
    if row.attack == WORST_CASE:
        mine = {r.attack: r for r in worst_case_members(row, rows)}
        theirs = {r.attack: r for r in worst_case_members(before, baseline)}
        for name in sorted(mine.keys() | theirs.keys()):
            if name not in theirs:
                found.append(f"{name} combined here only")
            elif name not in mine:
                found.append(f"{name} combined in the baseline only")
            else:
                found += [f"{name} {difference}" for difference in _differences(mine[name], theirs[name])]
    return found


def describe(differences: list[str]) -> str:
    """The first few differences, and how many more there are."""
    shown = ", ".join(differences[:SHOWN])
    more = len(differences) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _differences(row: ResultRow, before: ResultRow) -> list[str]:
    mine, theirs = _evaluation(row), _evaluation(before)
    return [
        f"{key} {_shown(mine.get(key))} vs {_shown(theirs.get(key))}"
        for key in sorted(mine.keys() | theirs.keys()) if not _same(mine.get(key), theirs.get(key))
    ]


def _evaluation(row: ResultRow) -> dict[str, Any]:
    """What determines the row's numbers besides the model, flattened to `config.train.steps`-style keys."""
    ignored = OUTPUT_KEYS | (WORST_CASE_KEYS if row.attack == WORST_CASE else frozenset())
    found: dict[str, Any] = {"n": row.n, "seed": row.seed, "dataset_fingerprint": row.dataset_fingerprint}
    _flatten("config", {k: v for k, v in row.config.items() if k not in ignored}, found)
    return found


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return bool(type(a) is type(b) and a == b)


def _shown(value: Any) -> str:
    text = "absent" if value is None else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
