"""Opening the store's SQLite file: identity and schema checks, journaling, transactions and clear errors.

Journaling is WAL with `synchronous = NORMAL`: a reader (`robustinv history`, a CI step polling
progress) never blocks the run committing cells and vice versa, and a commit is an append to
the log rather than a rewrite of the database. A killed process loses no committed cell; a
power cut may lose the last few commits (which are then recomputed) but never corrupts the file.
The price is two sidecar files (`-wal`, `-shm`) and a database on a local file system, since
WAL needs shared memory; NFS shares are not supported.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from robustinv.errors import RobustinvError
from robustinv.store.schema import APPLICATION_ID, SCHEMA_VERSION, create_schema, identity, migrate_schema

log = logging.getLogger(__name__)


class StoreError(RobustinvError):
    """A results store that cannot be opened, read or written."""


class Database:
    """An open SQLite connection to a results store, with the transactions `Store`'s methods run in."""

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
            raise StoreError(f"cannot create results store {self.path}: {reason(exc)}") from None

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _prepare(self) -> None:
        """Check that the file is a robustinv store this version reads; create or migrate its schema."""
        with self._reading() as db:
            application_id, schema, tables = identity(db)
        if (application_id, schema, tables) == (0, 0, 0):
            if self.readonly:
                raise StoreError(f"{self.path} is an empty database, not a robustinv results store")
            with self._transaction() as db:
                if identity(db) == (0, 0, 0):  # unless another process created it meanwhile
                    create_schema(db)
                    log.info("created results store %s (schema %d)", self.path, SCHEMA_VERSION)
        elif application_id != APPLICATION_ID:
            raise StoreError(f"{self.path} is an SQLite database but not a robustinv results store; "
                             "pass another store path")
        elif schema < 1 or tables == 0:  # robustinv's mark with no schema version, or no tables: a damaged header
            raise StoreError(f"results store {self.path} is damaged: its header says schema {schema} with "
                             f"{tables} tables; move it aside to start a new one, or pass another store path")
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
            migrate_schema(db)
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


def reason(exc: BaseException) -> str:
    """An error as a short phrase for a message: an OS error's reason and file, else its text."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
