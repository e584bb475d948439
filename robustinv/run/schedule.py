"""Run a plan's cells on an executor: each as soon as what it depends on is done, results committed as they come.

Cells the store already holds are loaded instead of run. A cell that raises is reported with
its key and error, cells that need it are skipped, every other cell still runs and is stored,
and the first failure is raised at the end (a rerun computes only what is missing). A cell whose
worker died under it is retried once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace

from robustinv.records import CellResult
from robustinv.run.cells import Done, Prepared, Value
from robustinv.run.executors import Executor
from robustinv.run.executors.base import Event
from robustinv.run.journal import Journal
from robustinv.run.plan import CellSpec, ModelRef
from robustinv.run.setting import RunSetting
from robustinv.store import ModelRecord
from robustinv.text import first_line

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often progress events are drained while cells run


@dataclass(frozen=True)
class Failure:
    spec: CellSpec
    error: BaseException

    def describe(self) -> str:
        return f"cell {self.spec.key[:12]} ({self.spec.describe()}): {first_line(self.error)}"


@dataclass
class Outcome:
    """What the cells produced, by key, with the models' first-recorded provenance and who ran what."""

    values: dict[str, Value] = field(default_factory=dict)
    models: dict[ModelRef, ModelRecord] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)  # cell key → worker that computed it
    failures: list[Failure] = field(default_factory=list)


@dataclass
class Progress:
    """What the scheduler tells a progress display; every hook may be ignored."""

    on_start: Callable[[int], None] = lambda total: None
    on_cell: Callable[[CellSpec, str], None] = lambda spec, how: None  # how: "computed", "stored", "failed"
    on_event: Callable[[CellSpec, int, int], None] = lambda spec, step, steps: None
    on_running: Callable[[list[CellSpec]], None] = lambda running: None


def run_plan(cells: list[CellSpec], executor: Executor, setting: RunSetting, journal: Journal,
             progress: Progress | None = None, outcome: Outcome | None = None) -> Outcome:
    """Every cell of `cells` not yet in `outcome`, stored or computed; `outcome` (extended in place) holds earlier ones."""
    progress = progress or Progress()
    outcome = outcome if outcome is not None else Outcome()
    todo = [cell for cell in cells if cell.key not in outcome.values]
    by_key = {cell.key: cell for cell in todo}
    pending: dict[Future[Done], CellSpec] = {}
    retried: set[str] = set()
    waiting = []
    for spec in todo:
        stored = journal.stored(spec.key, spec.kind) if spec.stored else None
        if stored is None:
            waiting.append(spec)
        else:
            outcome.values[spec.key] = stored
            progress.on_cell(spec, "stored")
    failed_keys = {failure.spec.key for failure in outcome.failures}
    try:
        while waiting or pending:
            waiting = _start_ready(waiting, pending, outcome, failed_keys, executor, setting, journal, progress)
            if not pending:
                if waiting:  # nothing runs and nothing can start: only cells behind failures are left
                    _skip_all(waiting, outcome, failed_keys, progress)
                break
            progress.on_running(list(pending.values()))
            finished, _ = wait(list(pending), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            _forward(executor.events(), by_key, progress)
            for future in finished:
                spec = pending.pop(future)
                _collect(future, spec, outcome, failed_keys, retried, pending, executor, setting, journal, progress)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return outcome


def _start_ready(waiting: list[CellSpec], pending: dict[Future[Done], CellSpec], outcome: Outcome,
                 failed_keys: set[str], executor: Executor, setting: RunSetting, journal: Journal,
                 progress: Progress) -> list[CellSpec]:
    """Submit the cells whose dependencies are done (up to the executor's slots); the rest wait."""
    still = []
    for spec in waiting:
        if any(dep in failed_keys for dep in spec.deps):
            _skip(spec, outcome, failed_keys, progress)
            continue
        if all(dep in outcome.values for dep in spec.deps) and len(pending) < executor.slots:
            inputs = {dep: outcome.values[dep] for dep in spec.deps if isinstance(outcome.values[dep], CellResult)}
            pending[executor.submit(setting, spec, inputs)] = spec
            continue
        still.append(spec)
    return still


def _collect(future: Future[Done], spec: CellSpec, outcome: Outcome, failed_keys: set[str], retried: set[str],
             pending: dict[Future[Done], CellSpec], executor: Executor, setting: RunSetting, journal: Journal,
             progress: Progress) -> None:
    error = future.exception()
    if error is not None and executor.worker_lost(error):
        lost = [spec, *pending.values()]  # a broken pool takes every cell in flight with it
        pending.clear()
        executor.recover()
        for cell in lost:
            if cell.key in retried:
                outcome.failures.append(Failure(cell, error))
                failed_keys.add(cell.key)
                progress.on_cell(cell, "failed")
                continue
            retried.add(cell.key)
            log.warning("%s: its worker died; running it again", cell.describe())
            inputs = {dep: outcome.values[dep] for dep in cell.deps if isinstance(outcome.values[dep], CellResult)}
            pending[executor.submit(setting, cell, inputs)] = cell
        return
    if error is not None:
        failure = Failure(spec, executor.original(error))
        log.error("%s", failure.describe())
        outcome.failures.append(failure)
        failed_keys.add(spec.key)
        progress.on_cell(spec, "failed")
        return
    done = future.result()
    value = done.value
    if isinstance(value, Prepared):
        outcome.models[spec.model] = journal.first_recorded(value.record)
    elif isinstance(value, CellResult):
        record = outcome.models[spec.model]
        value = replace(value, row=replace(value.row, model_source=record.source,
                                           model_train_seconds=record.train_seconds))
        journal.commit(spec.key, spec.kind, value)
    outcome.values[spec.key] = value
    outcome.workers[spec.key] = done.worker
    progress.on_cell(spec, "computed")


def _skip_all(waiting: list[CellSpec], outcome: Outcome, failed_keys: set[str], progress: Progress) -> None:
    for spec in waiting:
        _skip(spec, outcome, failed_keys, progress)


def _skip(spec: CellSpec, outcome: Outcome, failed_keys: set[str], progress: Progress) -> None:
    failure = Failure(spec, _Skipped(spec, failed_keys))
    log.warning("%s", failure.describe())
    outcome.failures.append(failure)
    failed_keys.add(spec.key)
    progress.on_cell(spec, "failed")


def _forward(events: list[Event], by_key: dict[str, CellSpec], progress: Progress) -> None:
    for key, step, steps in events:
        if key in by_key:
            progress.on_event(by_key[key], step, steps)


class _Skipped(Exception):
    """A cell not run because a cell it needs failed."""

    def __init__(self, spec: CellSpec, failed_keys: set[str]) -> None:
        needed = [dep[:12] for dep in spec.deps if dep in failed_keys]
        super().__init__(f"not run: it needs cell {', '.join(needed)}, which failed")
