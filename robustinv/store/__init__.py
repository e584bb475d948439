"""The results store: an embedded SQLite database of runs and the cells they finished.

A cell is one attack at one ε on one (model, defense), or one of the gradient-masking guard's
extra rows. Each finished cell is committed in its own transaction as soon as it is done, so an
interrupted run loses at most the cell in flight and a rerun of the same suite into the same
output folder resumes where it stopped (see `robustinv.run.driver`).

What is small and queried lives in the database: run status and gate verdict, each cell's
result row, target cells and sample-grid labels as JSON, and its headline numbers as columns.
Arrays go to one safetensors file per cell under the run's output folder (`robustinv.store.cells`).
Opening, journaling and transactions are `robustinv.store.database`; the tables and their
migrations `robustinv.store.schema`; the lock that keeps one writer per run folder, whatever
store each uses, `robustinv.store.folder_lock`.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from robustinv.records import (  # CellKind, CellResult: re-exported, older callers import them from here
    STORED_KINDS, CellKind, CellResult,
)
from robustinv.records.columns import Column
from robustinv.store.cells import CELLS_DIR, INSERT_CELL, cell_columns, cell_from_row, write_artifact
from robustinv.store.database import Database, StoreError
from robustinv.store.history import Headline, HistoryEntry, read_history
from robustinv.store.runs import ModelRecord, RunRecord, RunStatus, alive, run_record
from robustinv.store.schema import APPLICATION_ID, SCHEMA_VERSION

__all__ = [
    "APPLICATION_ID", "CELLS_DIR", "DEFAULT_STORE", "SCHEMA_VERSION", "CellKind", "CellResult", "Headline",
    "HistoryEntry", "ModelRecord", "RunRecord", "RunStatus", "Store", "StoreError",
]

DEFAULT_STORE = Path("reports") / "robustinv.db"  # where the CLI keeps it unless told otherwise


class Store(Database):
    """An open results store; create it with a path, close it (or use `with`) when done."""

    # Runs ------------------------------------------------------------------------------------

    def open_run(
        self, *, run_id: str, suite: str, suite_key: str, out_dir: Path, started: str
    ) -> tuple[RunRecord, bool]:
        """Resume the latest run of this suite into this folder, whatever its status, or record a new one.

        Returns the run and whether it was resumed. A resumed run keeps its run_id and start time,
        turns `running` again and loses its gate verdict (the gate will judge it anew). A new run
        whose `run_id` is taken (same suite started the same second elsewhere) gets a `-2`, `-3`… suffix.
        """
        folder = str(out_dir.resolve())
        me = (os.getpid(), socket.gethostname())
        with self._transaction() as db:
            for busy in db.execute("SELECT run_id, pid, host FROM runs WHERE out_dir = ? AND status = ?",
                                   (folder, RunStatus.running.value)).fetchall():
                if busy["host"] == me[1] and busy["pid"] not in (None, me[0]) and alive(busy["pid"]):
                    raise StoreError(f"{folder} is in use: run {busy['run_id']} (process {busy['pid']}) is writing "
                                     "to it; wait for it to finish, or use another --out")
            previous = db.execute(
                "SELECT * FROM runs WHERE suite_key = ? AND out_dir = ? ORDER BY started DESC, rowid DESC LIMIT 1",
                (suite_key, folder),
            ).fetchone()
            if previous is not None:
                db.execute("UPDATE runs SET status = ?, finished = NULL, gate_passed = NULL, results_digest = NULL, "
                           "pid = ?, host = ? WHERE run_id = ?", (RunStatus.running.value, *me, previous["run_id"]))
                run = replace(run_record(previous), finished=None, status=RunStatus.running, gate_passed=None)
                return run, True
            unique, suffix = run_id, 1
            while db.execute("SELECT 1 FROM runs WHERE run_id = ?", (unique,)).fetchone() is not None:
                suffix += 1
                unique = f"{run_id}-{suffix}"
            db.execute(
                "INSERT INTO runs (run_id, suite, suite_key, out_dir, started, status, pid, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (unique, suite, suite_key, folder, started, RunStatus.running.value, *me),
            )
        return RunRecord(unique, suite, suite_key, Path(folder), started, None, RunStatus.running, None), False

    def finish_run(self, run_id: str, status: RunStatus, *, results_digest: str | None = None) -> None:
        """Record how the run stopped, and the digest of its rows when it finished; committed cells stay."""
        with self._transaction() as db:
            self._require_run(db, run_id)
            db.execute("UPDATE runs SET status = ?, finished = ?, results_digest = ? WHERE run_id = ?",
                       (status.value, _now(), results_digest, run_id))

    def results_digest(self, run_id: str) -> str | None:
        """The `records.rows_digest` of the run's rows as it finished; None for unknown or unfinished runs."""
        with self._reading() as db:
            found = db.execute("SELECT results_digest FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if found is None else found["results_digest"]

    def has_run(self, run_id: str) -> bool:
        with self._reading() as db:
            return db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def run(self, run_id: str) -> RunRecord | None:
        """The store's record of a run; None when it does not know it."""
        with self._reading() as db:
            found = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if found is None else run_record(found)

    def runs_in(self, folder: Path) -> list[RunRecord]:
        """Every run recorded into `folder`, newest first."""
        with self._reading() as db:
            found = db.execute("SELECT * FROM runs WHERE out_dir = ? ORDER BY started DESC, rowid DESC",
                               (str(folder.resolve()),)).fetchall()
        return [run_record(row) for row in found]

    def running_in(self, folder: Path, pid: int) -> str | None:
        """The run that process `pid` of this host is writing into `folder`, by its id; None when unknown."""
        with self._reading() as db:
            found = db.execute("SELECT run_id FROM runs WHERE out_dir = ? AND status = ? AND pid = ? AND host = ?",
                               (str(folder.resolve()), RunStatus.running.value, pid, socket.gethostname())).fetchone()
        return None if found is None else str(found["run_id"])

    def record_gate(self, run_id: str, passed: bool) -> None:
        """Store the gate's verdict on a run (what `last_passing_run` looks for)."""
        with self._transaction() as db:
            self._require_run(db, run_id)
            db.execute("UPDATE runs SET gate_passed = ? WHERE run_id = ?", (int(passed), run_id))

    def record_model(self, run_id: str, model: ModelRecord) -> ModelRecord:
        """The run's record of this model: the first attempt's when the fingerprint still matches.

        A resumed run loads its models from the cache; reporting them as its first attempt got
        them (trained, and how long that took) keeps its rows identical to an uninterrupted run's.
        """
        with self._transaction() as db:
            stored = db.execute(
                "SELECT * FROM run_models WHERE run_id = ? AND model = ? AND defense = ?",
                (run_id, model.model, model.defense),
            ).fetchone()
            if stored is not None and stored["fingerprint"] == model.fingerprint:
                return ModelRecord(stored["model"], stored["defense"], stored["fingerprint"], stored["source"],
                                   stored["train_seconds"])
            db.execute("INSERT OR REPLACE INTO run_models VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, model.model, model.defense, model.fingerprint, model.source, model.train_seconds))
        return model

    def last_passing_run(self, suite: str, *, besides: Path | None = None, besides_run: str | None = None
                         ) -> RunRecord | None:
        """The latest finished run that passed its gate; `suite` is a suite key or name.

        Never the run being judged: not a run written into `besides` (its folder), nor `besides_run`.
        """
        folder = "" if besides is None else str(besides.resolve())
        with self._reading() as db:
            found = db.execute(
                "SELECT * FROM runs WHERE gate_passed = 1 AND status = ? AND (suite_key = ? OR suite = ?) "
                "AND out_dir != ? AND run_id != ? ORDER BY finished DESC, rowid DESC LIMIT 1",
                (RunStatus.finished.value, suite, suite, folder, besides_run or ""),
            ).fetchone()
        return None if found is None else run_record(found)

    def history(self, model: str | None = None) -> list[HistoryEntry]:
        """Past runs, newest first, with headline numbers; only runs (and headlines) of `model` when given."""
        with self._reading() as db:
            return read_history(db, model)

    # Cells -----------------------------------------------------------------------------------

    def finished_cells(self, run_id: str) -> frozenset[str]:
        """Keys of the cells the run has committed."""
        with self._reading() as db:
            found = db.execute("SELECT cell_key FROM cells WHERE run_id = ?", (run_id,)).fetchall()
        return frozenset(row["cell_key"] for row in found)

    def runs_with_cell(self, key: str, *, besides: str) -> list[str]:
        """The runs (newest first) other than `besides` that committed the cell `key`: content-keyed, so the same result."""
        with self._reading() as db:
            found = db.execute("SELECT run_id FROM cells WHERE cell_key = ? AND run_id != ? ORDER BY committed DESC",
                               (key, besides)).fetchall()
        return [row["run_id"] for row in found]

    def commit_cell(self, run_id: str, key: str, kind: CellKind, result: CellResult) -> None:
        """Write the cell's arrays under the run's folder, then commit its record in one transaction.

        Only the `STORED_KINDS` are stored; other kinds of work (preparing a model, training a
        generator, the worst case) are recomputed or derived, and asking to store one is a bug.
        """
        if kind not in STORED_KINDS:
            stored = ", ".join(sorted(k.value for k in STORED_KINDS))
            raise ValueError(f"cell {key}: the results store keeps only {stored} cells, not {kind.value!r}")
        with self._reading() as db:
            out_dir = self._require_run(db, run_id)
        artifact = write_artifact(out_dir, key, result)
        with self._transaction() as db:
            db.execute(INSERT_CELL, cell_columns(run_id, key, kind, result, artifact=artifact, committed=_now()))

    def load_cell(self, run_id: str, key: str, schema: Mapping[str, Column] | None = None) -> CellResult | None:
        """A committed cell, or None when it is missing or its artifact is gone or unreadable (recompute it).

        `schema` declares the measure columns its row may hold (see `robustinv.records.columns`).
        """
        with self._reading() as db:
            found = db.execute(
                "SELECT cells.*, runs.out_dir FROM cells JOIN runs USING (run_id) WHERE run_id = ? AND cell_key = ?",
                (run_id, key),
            ).fetchone()
        return None if found is None else cell_from_row(found, schema)

    def _require_run(self, db: sqlite3.Connection, run_id: str) -> Path:
        found = db.execute("SELECT out_dir FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if found is None:
            raise StoreError(f"results store {self.path} has no run {run_id!r}")
        return Path(found["out_dir"])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
