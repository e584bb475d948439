"""The store's tables, their version and the migrations that bring an older store up to date.

The version is SQLite's `PRAGMA user_version` and the file is marked as a robustinv store by
`PRAGMA application_id`, so a store written by a newer robustinv, or another program's SQLite
file, is refused rather than misread.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3  # PRAGMA user_version; bump with a migration in MIGRATIONS when a table changes
APPLICATION_ID = 0x52424956  # PRAGMA application_id, "RBIV": tells a robustinv store from other SQLite files

SCHEMA = """
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
    artifact_digest TEXT,                -- SHA-256 of the artifact's bytes (NULL in cells of schema 2)
    PRIMARY KEY (run_id, cell_key)
);
"""


MIGRATIONS = {  # schema version → statements that bring it to the next one
    1: ["ALTER TABLE runs ADD COLUMN pid INTEGER", "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN results_digest TEXT"],
    # Cells committed before have no digest of their artifact: `cells.cell_from_row` computes them again.
    2: ["ALTER TABLE cells ADD COLUMN artifact_digest TEXT"],
}


def identity(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(application id, schema version, number of schema objects): all 0 in a new, empty database."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    schema = db.execute("PRAGMA user_version").fetchone()[0]
    return application_id, schema, db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]


def create_schema(db: sqlite3.Connection) -> None:
    """Create every table in an empty database, inside the caller's transaction, and mark the file as ours."""
    for statement in SCHEMA.split(";")[:-1]:  # not executescript: it would commit the caller's transaction
        db.execute(statement)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def migrate_schema(db: sqlite3.Connection) -> None:
    """Bring the schema to `SCHEMA_VERSION`, inside the caller's write transaction."""
    schema = identity(db)[1]
    while schema < SCHEMA_VERSION:  # another process may have migrated meanwhile: the caller holds the lock
        for statement in MIGRATIONS[schema]:
            db.execute(statement)
        schema += 1
        db.execute(f"PRAGMA user_version = {schema}")
