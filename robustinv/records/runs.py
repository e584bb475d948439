"""Runs: what identifies a run and its environment, and everything it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from robustinv.records.columns import Column
from robustinv.records.explanations import Explanation
from robustinv.records.grids import SampleGrid
from robustinv.records.rows import ResultRow, TargetCell

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run and the environment it ran in."""

    run_id: str
    suite: str
    seed: int
    device: str
    started: str
    finished: str
    dataset: str
    dataset_fingerprint: str
    n_eval: int
    versions: dict[str, str] = field(default_factory=dict)
    executor: str = "serial"
    workers: dict[str, list[str]] = field(default_factory=dict)  # worker → the cells it computed in this attempt


@dataclass(frozen=True)
class RunResult:
    info: RunInfo
    rows: list[ResultRow]
    targets: list[TargetCell] = field(default_factory=list)
    grids: list[SampleGrid] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    computed: int = 0  # cells computed by this call
    reused: int = 0  # cells loaded from the results store, finished by an earlier attempt of the run
    columns: dict[str, Column] = field(default_factory=dict)  # the declarations of the rows' measure columns

    def to_frame(self) -> pd.DataFrame:
        """The rows as results.csv holds them: one line per (model, defense, attack, ε), stable columns."""
        from robustinv.records.tables import rows_frame

        return rows_frame(self.rows)
