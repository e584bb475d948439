"""Runs: what identifies a run and its environment, and everything it produced."""

from __future__ import annotations

from dataclasses import dataclass, field

from robustinv.records.explanations import Explanation
from robustinv.records.grids import SampleGrid
from robustinv.records.rows import ResultRow, TargetCell


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
