"""Which cells of a run are done: a stored cell is loaded, any other computed, then committed by the driver.

Only the driver process writes the store and the run folder; workers return results. Without a
store every cell is computed and nothing is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from robustinv.measures import schema
from robustinv.records import CellKind, CellResult
from robustinv.store import ModelRecord, RunStatus, Store

log = logging.getLogger(__name__)


@dataclass
class Journal:
    run_id: str
    started: str
    store: Store | None = None
    done: frozenset[str] = frozenset()
    computed: int = 0
    reused: int = 0

    def open(self, store: Store, *, suite_name: str, suite_key: str, out_dir: Path, planned: list[str]) -> None:
        """Record the run in the store, or resume its earlier attempt (its run_id and start time)."""
        run, resumed = store.open_run(run_id=self.run_id, suite=suite_name, suite_key=suite_key, out_dir=out_dir,
                                      started=self.started)
        self.store, self.run_id, self.started = store, run.run_id, run.started
        self.done = store.finished_cells(run.run_id) & frozenset(planned)
        if resumed:
            log.info("resuming run %s: %d of %d cells already done", run.run_id, len(self.done), len(set(planned)))

    def stored(self, key: str, kind: CellKind) -> CellResult | None:
        """The result of cell `key` if this run, or any run of the store, committed it (and its files are intact).

        A key hashes everything that determines the cell, so a cell another run committed is this
        cell: it is copied into this run (its row renamed to this run) instead of computed again.
        """
        if self.store is None:
            return None
        found = self.store.load_cell(self.run_id, key, schema()) if key in self.done else None
        if found is None:
            found = self._from_another_run(key, kind)
        if found is not None:
            self.reused += 1
        return found

    def _from_another_run(self, key: str, kind: CellKind) -> CellResult | None:
        assert self.store is not None
        for run_id in self.store.runs_with_cell(key, besides=self.run_id):
            found = self.store.load_cell(run_id, key, schema())
            if found is not None:
                found = replace(found, row=replace(found.row, run_id=self.run_id))
                self.store.commit_cell(self.run_id, key, kind, found)
                log.info("cell %s: the result run %s stored for the same key", key[:12], run_id)
                return found
        return None

    def commit(self, key: str, kind: CellKind, result: CellResult) -> None:
        if self.store is not None:
            self.store.commit_cell(self.run_id, key, kind, result)
        self.computed += 1

    def first_recorded(self, model: ModelRecord) -> ModelRecord:
        """The model's provenance (trained or cached, training time) as the run's first attempt saw it."""
        return model if self.store is None else self.store.record_model(self.run_id, model)

    def stop(self, status: RunStatus, *, results_digest: str | None = None) -> None:
        """Record how the run ended (and the digest of its rows); committed cells stay for a resume."""
        if self.store is None:
            return
        self.store.finish_run(self.run_id, status, results_digest=results_digest)
        if status is not RunStatus.finished:
            log.warning("run %s %s with %d cells stored in %s; run the same suite into the same folder to resume",
                        self.run_id, status.value, len(self.store.finished_cells(self.run_id)), self.store.path)
