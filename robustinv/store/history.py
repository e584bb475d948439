"""The history of a store: past runs, newest first, with each model's headline numbers."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from robustinv.records import CellKind
from robustinv.store.runs import RunRecord, run_record


@dataclass(frozen=True)
class Headline:
    """One (model, defense) of a run: clean accuracy and the worst robust accuracy at the largest ε.

    Over the suite's attacks (not the guard's rows), in Linf when the model has Linf cells.
    """

    model: str
    defense: str
    clean_acc: float
    norm: str
    eps: float
    worst_robust_acc: float
    worst_attack: str


@dataclass(frozen=True)
class HistoryEntry:
    run: RunRecord
    cells: int  # committed cells
    headlines: tuple[Headline, ...]


def read_history(db: sqlite3.Connection, model: str | None) -> list[HistoryEntry]:
    """Past runs, newest first, with headline numbers; only runs (and headlines) of `model` when given.

    Call it inside one read transaction, so that the runs and their cells come from one snapshot.
    """
    runs = db.execute(
        "SELECT runs.*, (SELECT count(*) FROM cells WHERE cells.run_id = runs.run_id) AS n_cells FROM runs "
        "WHERE :model IS NULL "
        "OR EXISTS (SELECT 1 FROM cells WHERE cells.run_id = runs.run_id AND cells.model = :model) "
        "ORDER BY started DESC, rowid DESC",
        {"model": model},
    ).fetchall()
    cells = db.execute(
        "SELECT run_id, model, defense, attack, norm, eps, clean_acc, robust_acc FROM cells "
        "WHERE kind = :kind AND (:model IS NULL OR model = :model) ORDER BY rowid",
        {"kind": CellKind.attack.value, "model": model},
    ).fetchall()
    by_run: dict[str, list[sqlite3.Row]] = {}
    for cell in cells:
        by_run.setdefault(cell["run_id"], []).append(cell)
    return [
        HistoryEntry(run_record(run), run["n_cells"], _headlines(by_run.get(run["run_id"], [])))
        for run in runs
    ]


def _headlines(cells: list[sqlite3.Row]) -> tuple[Headline, ...]:
    by_model: dict[tuple[str, str], list[sqlite3.Row]] = {}
    for cell in cells:
        by_model.setdefault((cell["model"], cell["defense"]), []).append(cell)
    headlines = []
    for (model, defense), own in by_model.items():
        linf = [c for c in own if c["norm"] == "linf"]
        considered = linf or own
        eps = max(c["eps"] for c in considered)
        worst = min((c for c in considered if c["eps"] == eps), key=lambda c: _float(c["robust_acc"]))
        headlines.append(Headline(model, defense, _float(own[0]["clean_acc"]), worst["norm"], eps,
                                  _float(worst["robust_acc"]), worst["attack"]))
    return tuple(headlines)


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
