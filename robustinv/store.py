"""The results store: an embedded SQLite database of runs and the cells they finished.

A cell is one attack at one ε on one (model, defense), or one of the gradient-masking guard's
extra rows. Each finished cell is committed in its own transaction as soon as it is done, so an
interrupted run loses at most the cell in flight and a rerun of the same suite into the same
output folder resumes where it stopped (see `robustinv.runner.run_suite`).

What is small and queried lives in the database: run status and gate verdict, each cell's
result row, target cells and sample-grid labels as JSON, and its headline numbers as columns.
Tensors (which inputs stayed correct, adversarial examples the guard reuses, sample-grid images)
go to one safetensors file per cell under the run's output folder, `OUT/cells/<cell key>.safetensors`, written atomically
before the cell's row is committed; the store records the path relative to OUT. Nothing is
pickled.

Journaling is WAL with `synchronous = NORMAL`: a reader (`robustinv history`, a CI step polling
progress) never blocks the run committing cells and vice versa, and a commit is an append to
the log rather than a rewrite of the database. A killed process loses no committed cell; a
power cut may lose the last few commits (which are then recomputed) but never corrupts the file.
The price is two sidecar files (`-wal`, `-shm`) and a database on a local file system, since
WAL needs shared memory; NFS shares are not supported.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustinv.files import atomic_write
from robustinv.errors import RobustinvError
from robustinv.records import ResultRow, SampleGrid, TargetCell, row_from_dict

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # PRAGMA user_version; bump with a migration in _MIGRATIONS when a table changes
APPLICATION_ID = 0x52424956  # PRAGMA application_id, "RBIV": tells a robustinv store from other SQLite files
CELLS_DIR = "cells"  # artifacts, relative to a run's output folder
DEFAULT_STORE = Path("reports") / "robustinv.db"  # where the CLI keeps it unless told otherwise

_SCHEMA = """
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    suite       TEXT NOT NULL,
    suite_key   TEXT NOT NULL,           -- content key of the resolved suite
    out_dir     TEXT NOT NULL,           -- absolute
    started     TEXT NOT NULL,           -- ISO 8601, UTC
    finished    TEXT,                    -- when it last stopped, whatever the status
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
    gate_passed INTEGER CHECK (gate_passed IN (0, 1)),  -- NULL: not gated
    pid         INTEGER,                 -- the process of the latest attempt, on `host`
    host        TEXT,
    results_digest TEXT                  -- records.rows_digest of the finished run's rows
);
CREATE INDEX runs_by_suite ON runs (suite_key, out_dir);

CREATE TABLE run_models (                -- where each model of a run came from the first time
    run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    model         TEXT NOT NULL,
    defense       TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    source        TEXT NOT NULL,
    train_seconds REAL NOT NULL,
    PRIMARY KEY (run_id, model, defense)
);

CREATE TABLE cells (
    run_id       TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    cell_key     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('attack', 'guard', 'transfer')),
    model        TEXT NOT NULL,
    defense      TEXT NOT NULL,
    attack       TEXT NOT NULL,
    norm         TEXT NOT NULL,
    eps          REAL NOT NULL,
    clean_acc    REAL,                   -- NULL for NaN
    robust_acc   REAL,
    row_json     TEXT NOT NULL,          -- the ResultRow before run-level flags (NaN spelled NaN)
    targets_json TEXT NOT NULL,          -- list of TargetCell
    grid_json    TEXT,                   -- the SampleGrid without its images, or NULL
    artifact     TEXT,                   -- safetensors file relative to the run's out_dir, or NULL
    committed    TEXT NOT NULL,
    PRIMARY KEY (run_id, cell_key)
);
"""


_MIGRATIONS = {  # schema version → statements that bring it to the next one
    1: ["ALTER TABLE runs ADD COLUMN pid INTEGER", "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN results_digest TEXT"],
}


class StoreError(RobustinvError):
    """A results store that cannot be opened, read or written."""


class RunStatus(str, Enum):
    running = "running"  # also what a killed process leaves behind
    finished = "finished"
    interrupted = "interrupted"  # Ctrl-C
    failed = "failed"  # any other exception


class CellKind(str, Enum):
    attack = "attack"  # a suite attack at one ε
    guard = "guard"  # the guard's stronger PGD
    transfer = "transfer"  # the guard's transfer attack from a standard surrogate


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    suite: str
    suite_key: str
    out_dir: Path
    started: str
    finished: str | None
    status: RunStatus
    gate_passed: bool | None


@dataclass(frozen=True)
class ModelRecord:
    """Where a run's model came from: kept so a resumed run reports what its first attempt did."""

    model: str
    defense: str
    fingerprint: str
    source: str
    train_seconds: float


@dataclass(frozen=True, eq=False)
class CellResult:
    """Everything later steps need from a finished cell.

    `row` carries no run-level flags (sanity checks and the guard add them over all rows);
    `robust` says, per evaluated input, whether the model stayed correct (what the worst case
    combines); `x_adv` is kept only for the adversarial examples the guard reuses.
    """

    row: ResultRow
    robust: torch.Tensor
    targets: tuple[TargetCell, ...] = ()
    grid: SampleGrid | None = None
    x_adv: torch.Tensor | None = None


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


class Store:
    """An open results store; create it with a path, close it (or use `with`) when done."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (or create) the store at `path`; `readonly` opens an existing one without writing to it.

        A read-only store may lie where this process cannot write (a shared CI cache): it is
        read through SQLite's read-only mode, and as an immutable file when even WAL's shared
        memory file cannot be created beside it.
        """
        self.path = path
        self.readonly = readonly
        if path.is_dir():
            raise StoreError(f"results store {path} is a folder; give a file path such as {path / 'robustinv.db'}")
        blocking = next((parent for parent in path.parents if parent.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise StoreError(f"cannot create results store {path}: {blocking} is a file, not a folder")
        self._db = self._connect_readonly() if readonly else self._connect()
        self._db.row_factory = sqlite3.Row
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot create results store {self.path}: {_reason(exc)}") from None

    def _connect_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no results store at {self.path} (runs create it; see --store)")
        uri = self.path.resolve().as_uri()
        last: sqlite3.Error | None = None
        for mode in ("mode=ro", "mode=ro&immutable=1"):
            try:
                db = sqlite3.connect(f"{uri}?{mode}", uri=True, isolation_level=None, timeout=30.0)
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opening is lazy; reading is not
                return db
            except sqlite3.Error as exc:
                last = exc
        raise StoreError(f"cannot read results store {self.path}: {last}")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

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
                if busy["host"] == me[1] and busy["pid"] not in (None, me[0]) and _alive(busy["pid"]):
                    raise StoreError(f"{folder} is in use: run {busy['run_id']} (process {busy['pid']}) is writing "
                                     "to it; wait for it to finish, or use another --out")
            previous = db.execute(
                "SELECT * FROM runs WHERE suite_key = ? AND out_dir = ? ORDER BY started DESC, rowid DESC LIMIT 1",
                (suite_key, folder),
            ).fetchone()
            if previous is not None:
                db.execute("UPDATE runs SET status = ?, finished = NULL, gate_passed = NULL, results_digest = NULL, "
                           "pid = ?, host = ? WHERE run_id = ?", (RunStatus.running.value, *me, previous["run_id"]))
                run = replace(_run_record(previous), finished=None, status=RunStatus.running, gate_passed=None)
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

    def last_passing_run(self, suite: str) -> Path | None:
        """The output folder of the latest finished run that passed its gate; `suite` is a suite key or name."""
        with self._reading() as db:
            found = db.execute(
                "SELECT out_dir FROM runs WHERE gate_passed = 1 AND status = ? AND (suite_key = ? OR suite = ?) "
                "ORDER BY finished DESC, rowid DESC LIMIT 1",
                (RunStatus.finished.value, suite, suite),
            ).fetchone()
        return Path(found["out_dir"]) if found is not None else None

    def history(self, model: str | None = None) -> list[HistoryEntry]:
        """Past runs, newest first, with headline numbers; only runs (and headlines) of `model` when given."""
        with self._reading() as db:
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
            HistoryEntry(_run_record(run), run["n_cells"], _headlines(by_run.get(run["run_id"], [])))
            for run in runs
        ]

    # Cells -----------------------------------------------------------------------------------

    def finished_cells(self, run_id: str) -> frozenset[str]:
        """Keys of the cells the run has committed."""
        with self._reading() as db:
            found = db.execute("SELECT cell_key FROM cells WHERE run_id = ?", (run_id,)).fetchall()
        return frozenset(row["cell_key"] for row in found)

    def commit_cell(self, run_id: str, key: str, kind: CellKind, result: CellResult) -> None:
        """Write the cell's tensors (if any) under the run's folder, then commit its record in one transaction."""
        row = result.row
        with self._reading() as db:
            out_dir = self._require_run(db, run_id)
        artifact = _write_artifact(out_dir, key, result)
        grid = result.grid
        grid_json = None if grid is None else json.dumps(grid.meta())
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, key, kind.value, row.model, row.defense, row.attack, row.norm, row.eps,
                 _real(row.clean_acc), _real(row.robust_acc), json.dumps(asdict(row)),
                 json.dumps([asdict(cell) for cell in result.targets]), grid_json, artifact, _now()),
            )

    def load_cell(self, run_id: str, key: str) -> CellResult | None:
        """A committed cell, or None when it is missing or its artifact is gone or unreadable (recompute it)."""
        with self._reading() as db:
            found = db.execute(
                "SELECT cells.*, runs.out_dir FROM cells JOIN runs USING (run_id) WHERE run_id = ? AND cell_key = ?",
                (run_id, key),
            ).fetchone()
        if found is None:
            return None
        tensors: dict[str, torch.Tensor] = {}
        if found["artifact"] is not None:
            path = Path(found["out_dir"]) / found["artifact"]
            try:
                tensors = load_file(str(path))
            except (SafetensorError, OSError) as exc:
                log.warning("cell %s: cannot read %s (%s); computing it again", key, path, _reason(exc))
                return None
        try:
            return _cell_result(found, tensors)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("cell %s: stored record does not fit this version (%s); computing it again", key, exc)
            return None

    # Plumbing --------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Check that the file is a robustinv store this version reads; create or migrate its schema."""
        with self._reading() as db:
            application_id, schema, tables = _identity(db)
        if (application_id, schema, tables) == (0, 0, 0):
            if self.readonly:
                raise StoreError(f"{self.path} is an empty database, not a robustinv results store")
            with self._transaction() as db:
                if _identity(db) == (0, 0, 0):  # unless another process created it meanwhile
                    for statement in _SCHEMA.split(";")[:-1]:  # not executescript: it would commit the check
                        db.execute(statement)
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    log.info("created results store %s (schema %d)", self.path, SCHEMA_VERSION)
        elif application_id != APPLICATION_ID:
            raise StoreError(f"{self.path} is an SQLite database but not a robustinv results store; "
                             "pass another store path")
        elif schema > SCHEMA_VERSION:
            raise StoreError(f"results store {self.path} was written by a newer robustinv (schema {schema}; "
                             f"this version reads schema {SCHEMA_VERSION}); upgrade robustinv")
        elif schema < SCHEMA_VERSION and not self.readonly:
            self._migrate()
        if self.readonly:
            return
        with self._errors():
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        with self._transaction() as db:
            schema = _identity(db)[1]
            while schema < SCHEMA_VERSION:  # another process may have migrated meanwhile: re-read in the lock
                for statement in _MIGRATIONS[schema]:
                    db.execute(statement)
                schema += 1
                db.execute(f"PRAGMA user_version = {schema}")
        log.info("results store %s: schema migrated to %d", self.path, SCHEMA_VERSION)

    @contextmanager
    def _errors(self) -> Iterator[sqlite3.Connection]:
        """Turn SQLite's exceptions into one clear line naming the store."""
        try:
            yield self._db
        except sqlite3.OperationalError as exc:  # locked, read-only, disk full, cannot open
            raise StoreError(f"cannot use results store {self.path}: {exc}") from None
        except sqlite3.IntegrityError as exc:  # a constraint: a bug or a hand-edited store, not damage
            raise StoreError(f"results store {self.path} refused a write: {exc}") from None
        except sqlite3.DatabaseError as exc:  # not a database, malformed image
            raise StoreError(f"results store {self.path} is damaged or not an SQLite database ({exc}); "
                             "move it aside to start a new one, or pass another store path") from None

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: its queries see one snapshot, even while a run commits cells."""
        with self._errors() as db:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises (Ctrl-C too)."""
        with self._errors() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some errors
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _require_run(self, db: sqlite3.Connection, run_id: str) -> Path:
        found = db.execute("SELECT out_dir FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if found is None:
            raise StoreError(f"results store {self.path} has no run {run_id!r}")
        return Path(found["out_dir"])


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _identity(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(application id, schema version, number of schema objects): all 0 in a new, empty database."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    schema = db.execute("PRAGMA user_version").fetchone()[0]
    return application_id, schema, db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]


def _run_record(row: sqlite3.Row) -> RunRecord:
    gate = row["gate_passed"]
    return RunRecord(
        run_id=row["run_id"], suite=row["suite"], suite_key=row["suite_key"], out_dir=Path(row["out_dir"]),
        started=row["started"], finished=row["finished"], status=RunStatus(row["status"]),
        gate_passed=None if gate is None else bool(gate),
    )


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


def _write_artifact(out_dir: Path, key: str, result: CellResult) -> str:
    tensors = {"robust": result.robust.to(torch.uint8).contiguous()}
    if result.x_adv is not None:
        tensors["x_adv"] = result.x_adv.detach().cpu().contiguous()
    if result.grid is not None:
        tensors["grid_images"] = result.grid.images.contiguous()
    relative = f"{CELLS_DIR}/{key}.safetensors"
    try:
        atomic_write(out_dir / relative, lambda tmp: save_file(tensors, str(tmp)))
    except OSError as exc:
        raise StoreError(f"cannot write cell artifact {out_dir / relative}: {_reason(exc)}") from None
    return relative


def _cell_result(found: sqlite3.Row, tensors: dict[str, torch.Tensor]) -> CellResult:
    grid_json = found["grid_json"]
    grid = None if grid_json is None else SampleGrid.from_meta(json.loads(grid_json), tensors["grid_images"])
    return CellResult(
        row=row_from_dict(json.loads(found["row_json"])),
        robust=tensors["robust"].bool(),
        targets=tuple(TargetCell(**cell) for cell in json.loads(found["targets_json"])),
        grid=grid,
        x_adv=tensors.get("x_adv"),
    )


def _real(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
