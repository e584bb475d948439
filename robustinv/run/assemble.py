"""From finished cells to a run's records: one row per attack and ε, per-input outcomes, grids and explanations.

An attack split into input ranges (a sequential run) comes back as one cell per range; its row
is the union of theirs. Accuracies are recomputed from the per-input outcomes, every other
column combined as its declaration says (`robustinv.records.columns.Combine`). The attention
measures of an explain cell join the row of the cell it explains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from robustinv.attacks import ATTACKS
from robustinv.judge.verdict import ModelOutcomes
from robustinv.judge.worst_case import Outcome as AttackOutcome
from robustinv.measures import attention_columns, schema
from robustinv.records import AttentionResult, CellKind, CellResult, Explanation, ResultRow, SampleGrid, TargetCell
from robustinv.records.columns import Column, Combine, declared
from robustinv.run.cells import Prepared, Value
from robustinv.run.plan import CellSpec, ModelRef, Plan
from robustinv.store import ModelRecord

_NUMERIC = tuple(f.name for f in fields(ResultRow) if f.type in ("float", "int"))
_RECOMPUTED = frozenset({"n", "clean_acc", "robust_acc", "success_rate", "samples_per_s", "seed", "eps"})


@dataclass
class Assembled:
    rows: list[ResultRow]
    judged: dict[tuple[str, str], ModelOutcomes]
    targets: list[TargetCell]
    grids: list[SampleGrid]
    explanations: list[Explanation]


def assemble(plan: Plan, values: Mapping[str, Value], models: Mapping[ModelRef, ModelRecord]) -> Assembled:
    """Rows, per-input outcomes, target cells, grids and explanations, model by model in plan order.

    `values` may hold only the first looks of a sequential run: an attack's row then covers the
    ranges it finished. Every row names where its model came from as this run first recorded it
    (`models`), whichever run computed the cell.
    """
    out = Assembled([], {}, [], [], [])
    declarations = schema()
    unexplained = dict.fromkeys(attention_columns(), math.nan)  # rows no explain cell measured keep the columns
    attention = {spec.deps[1]: value for spec in plan.cells
                 if spec.kind is CellKind.explain and isinstance(value := values.get(spec.key), AttentionResult)}
    for model in plan.models:
        prepared = next(values[c.key] for c in plan.of_model(model, CellKind.prepare))
        assert isinstance(prepared, Prepared)
        state = ModelOutcomes(np.asarray(prepared.clean_correct, dtype=bool))
        out.grids.append(prepared.grid)
        for group in _groups(plan.of_model(model, CellKind.attack, CellKind.guard, CellKind.transfer), values):
            results = [values[spec.key] for spec in group]
            assert all(isinstance(r, CellResult) for r in results)
            cells = [r for r in results if isinstance(r, CellResult)]
            row = merge_rows([c.row for c in cells], [c.robust for c in cells], state.clean_correct, declarations)
            row = replace(row, measures={**unexplained, **row.measures})
            record = models.get(model)
            if record is not None:
                row = replace(row, model_source=record.source, model_train_seconds=record.train_seconds)
            for spec, cell in zip(group, cells):
                explained = attention.get(spec.key)
                if explained is not None:
                    row = replace(row, measures={**row.measures, **explained.measures})
                    if explained.explanation is not None:
                        out.explanations.append(explained.explanation)
                out.targets.extend(cell.targets)
                if cell.grid is not None:
                    out.grids.append(cell.grid)
            out.rows.append(row)
            _judge(plan, group[0], row, np.concatenate([c.robust for c in cells]), state)
        out.judged[(model.name, model.defense)] = state
    return out


def _groups(specs: list[CellSpec], values: Mapping[str, Value]) -> list[list[CellSpec]]:
    """The finished ranges of each (kind, attack, ε), in plan order: a contiguous prefix of its inputs."""
    groups: dict[tuple[CellKind, str, float], list[CellSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.kind, spec.label, spec.eps), []).append(spec)
    found = []
    for group in groups.values():
        done: list[CellSpec] = []
        for spec in sorted(group, key=lambda s: s.inputs.start):
            if spec.key not in values or spec.inputs.start != sum(s.inputs.size for s in done):
                break
            done.append(spec)
        if done:
            found.append(done)
    return found


def _judge(plan: Plan, spec: CellSpec, row: ResultRow, robust: npt.NDArray[np.bool_], state: ModelOutcomes) -> None:
    """Record what the verdict needs of one row: its per-input outcome and its capabilities, or the ε = 1 check."""
    assert spec.attack is not None
    if plan.guard is not None and spec.kind is CellKind.guard and spec.attack == plan.guard.unbounded:
        state.unbounded_acc[row.norm] = row.robust_acc  # evidence only: ε = 1 is no threat model
        return
    attack = ATTACKS.get(spec.attack.name)
    transferred = spec.kind is CellKind.transfer  # black-box for this model, whatever crafted it
    state.outcomes[(row.attack, row.eps)] = AttackOutcome(
        row.attack, robust, gradient_free=transferred or attack.gradient_free,
        single_step=not transferred and attack.single_step, iterated=not transferred and attack.iterated)


def merge_rows(rows: list[ResultRow], robust: list[npt.NDArray[np.bool_]], clean_correct: npt.NDArray[np.bool_],
               declarations: Mapping[str, Column]) -> ResultRow:
    """The row of consecutive input ranges [0, n₁), [n₁, n₂), … of one attack: the row of their union."""
    if len(rows) == 1:
        return rows[0]
    sizes = np.array([row.n for row in rows], dtype=np.float64)
    n = int(sizes.sum())
    stayed = np.concatenate(robust)
    clean = clean_correct[:n]
    values: dict[str, Any] = {name: _combined([getattr(r, name) for r in rows], sizes, declared(declarations, name))
                              for name in _NUMERIC if name not in _RECOMPUTED}
    measures = {name: _combined([r.measures.get(name, math.nan) for r in rows], sizes, declared(declarations, name))
                for name in dict.fromkeys(k for r in rows for k in r.measures)}
    samples = sum(r.samples_per_input * r.n for r in rows)
    first = rows[0]
    config = {**first.config, "ranges": [[int(a), int(b)] for a, b in _bounds(rows)],
              "seeds": [r.seed for r in rows]}
    if all("diagnostics" in r.config for r in rows):
        config["diagnostics"] = _merged_diagnostics([r.config["diagnostics"] for r in rows], sizes)
    combined: dict[str, Any] = {name: int(value) if isinstance(getattr(first, name), int) else value
                                for name, value in values.items()}
    return replace(
        first, **combined, n=n, clean_acc=float(clean.mean()), robust_acc=float(stayed.mean()),
        success_rate=float((clean & ~stayed).sum() / clean.sum()) if clean.any() else math.nan,
        samples_per_s=samples / values["seconds"] if values["seconds"] > 0 else math.inf,
        flags=tuple(dict.fromkeys(flag for r in rows for flag in r.flags)), config=config, measures=measures,
    )


def _bounds(rows: list[ResultRow]) -> list[tuple[int, int]]:
    edges = np.cumsum([0] + [row.n for row in rows])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _combined(values: list[float], sizes: npt.NDArray[np.float64], column: Column) -> float:
    array = np.asarray(values, dtype=np.float64)
    if column.combine is Combine.same:
        return float(array[0])
    known = ~np.isnan(array)
    if not known.any():
        return math.nan
    if column.combine is Combine.max:
        return float(array[known].max())
    if column.combine is Combine.sum:
        return float(array[known].sum())
    return float((array[known] * sizes[known]).sum() / sizes[known].sum())


def _merged_diagnostics(parts: list[dict[str, Any]], sizes: npt.NDArray[np.float64]) -> dict[str, Any]:
    """The reference code's diagnostics over the union of ranges: logs and shares weighted by range size."""
    merged: dict[str, Any] = {**parts[0]}
    logs = [part.get("log", {}) for part in parts]
    keys = dict.fromkeys(key for log in logs for key in log)
    merged["log"] = {key: float(sum(log.get(key, math.nan) * size for log, size in zip(logs, sizes)) / sizes.sum())
                     for key in keys if all(key in log for log in logs)}
    if all("zero_gradient_share" in part for part in parts):
        merged["zero_gradient_share"] = float(
            sum(part["zero_gradient_share"] * size for part, size in zip(parts, sizes)) / sizes.sum())
    merged["checks"] = [check for part in parts for check in part.get("checks", [])]
    return merged
