"""Cell artifacts are reused only when they are the files committed with their cells, and fit their rows."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from robustinv.records import CellKind, CellResult
from robustinv.store import SCHEMA_VERSION, RunStatus, Store

from test_store import ROBUST, make_row, open_run

X_ADV = np.zeros((4, 1, 8, 8), np.float32)


@pytest.fixture()
def committed(tmp_path: Path) -> tuple[Store, str, Path]:
    """A store with one committed cell `k` (row n = 4, four outcomes, adversarial examples) in run folder `out`."""
    store = Store(tmp_path / "robustinv.db")
    out = tmp_path / "out"
    run_id = open_run(store, out)
    store.commit_cell(run_id, "k", CellKind.attack, CellResult(make_row(), ROBUST, x_adv=X_ADV))
    return store, run_id, out / "cells" / "k.safetensors"


def reloaded(store: Store, run_id: str, caplog: pytest.LogCaptureFixture) -> CellResult | None:
    with caplog.at_level(logging.WARNING, logger="robustinv.store"):
        return store.load_cell(run_id, "k")


def test_the_store_records_the_artifacts_digest(committed: tuple[Store, str, Path]) -> None:
    store, run_id, artifact = committed
    with closing(sqlite3.connect(store.path)) as db:
        (digest,) = db.execute("SELECT artifact_digest FROM cells WHERE cell_key = 'k'").fetchone()
    assert digest == hashlib.sha256(artifact.read_bytes()).hexdigest()
    loaded = store.load_cell(run_id, "k")
    assert loaded is not None and np.array_equal(loaded.robust, ROBUST)


def test_a_truncated_outcome_mask_is_computed_again(committed: tuple[Store, str, Path],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The red team's case: a valid safetensors file whose mask lost inputs was reused, shrinking the worst case."""
    store, run_id, artifact = committed
    tensors = load_file(str(artifact))
    save_file({**tensors, "robust": tensors["robust"][:2]}, str(artifact))
    assert reloaded(store, run_id, caplog) is None
    assert "is not the file committed with the cell" in caplog.text and "computing it again" in caplog.text


@pytest.mark.parametrize("edit", ["flip", "cut", "grow", "swap"])
def test_an_artifact_changed_in_any_way_is_computed_again(committed: tuple[Store, str, Path], tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture, edit: str) -> None:
    store, run_id, artifact = committed
    data = bytearray(artifact.read_bytes())
    if edit == "flip":
        data[-1] ^= 1  # one outcome of the same shape: only the digest tells
    elif edit == "cut":
        data = data[: len(data) // 2]
    elif edit == "grow":
        data += b"\x00" * 8
    else:  # another cell's valid artifact put in its place
        other = tmp_path / "other.safetensors"
        save_file({"robust": np.ones(4, np.uint8), "x_adv": X_ADV}, str(other))
        data = bytearray(other.read_bytes())
    artifact.write_bytes(bytes(data))
    assert reloaded(store, run_id, caplog) is None and "computing it again" in caplog.text


@pytest.mark.parametrize(("robust", "x_adv", "problem"), [
    (np.array([True, False, True]), X_ADV, "holds (3,) per-input outcomes for a row of n = 4"),
    (np.ones((4, 1), bool), X_ADV, "per-input outcomes for a row of n = 4"),
    (ROBUST, X_ADV[:3], "adversarial examples of shape (3, 1, 8, 8)"),
    (ROBUST, X_ADV[:, 0], "adversarial examples of shape (4, 8, 8)"),
])
def test_arrays_that_do_not_fit_the_row_are_computed_again(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                            robust: np.ndarray, x_adv: np.ndarray, problem: str) -> None:
    """Even an artifact that is the committed file is checked against its row (n = 4)."""
    with Store(tmp_path / "robustinv.db") as store:
        run_id = open_run(store, tmp_path / "out")
        store.commit_cell(run_id, "k", CellKind.attack, CellResult(make_row(), robust, x_adv=x_adv))
        assert reloaded(store, run_id, caplog) is None
    assert problem in caplog.text


def test_outcomes_other_than_0_and_1_are_computed_again(committed: tuple[Store, str, Path],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    store, run_id, artifact = committed
    save_file({"robust": np.array([1, 0, 2, 1], np.uint8), "x_adv": X_ADV}, str(artifact))
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("UPDATE cells SET artifact_digest = ?", (digest,))
    assert reloaded(store, run_id, caplog) is None and "not 0 or 1" in caplog.text


# Schema 2 → 3 ----------------------------------------------------------------------------------

SCHEMA_2_CELLS = """
CREATE TABLE cells (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, cell_key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('attack', 'guard', 'transfer')), model TEXT NOT NULL, defense TEXT NOT NULL,
    attack TEXT NOT NULL, norm TEXT NOT NULL, eps REAL NOT NULL, clean_acc REAL, robust_acc REAL,
    row_json TEXT NOT NULL, targets_json TEXT NOT NULL, grid_json TEXT, artifact TEXT, committed TEXT NOT NULL,
    PRIMARY KEY (run_id, cell_key)
)"""


def schema_2_store(path: Path, out: Path) -> None:
    """A store as robustinv wrote it before artifacts had digests: one finished run with one cell."""
    with Store(path) as store:
        run_id = open_run(store, out)
        store.commit_cell(run_id, "k", CellKind.attack, CellResult(make_row(), ROBUST, x_adv=X_ADV))
        store.finish_run(run_id, RunStatus.finished, results_digest="d")
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("ALTER TABLE cells RENAME TO cells_3")
        db.execute(SCHEMA_2_CELLS)
        db.execute("INSERT INTO cells SELECT run_id, cell_key, kind, model, defense, attack, norm, eps, clean_acc, "
                   "robust_acc, row_json, targets_json, grid_json, artifact, committed FROM cells_3")
        db.execute("DROP TABLE cells_3")
        db.execute("PRAGMA user_version = 2")


def test_a_schema_2_store_is_migrated_and_its_undigested_cells_computed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path, out = tmp_path / "robustinv.db", tmp_path / "out"
    schema_2_store(path, out)
    with Store(path) as store:
        [entry] = store.history()
        assert entry.cells == 1 and entry.run.status is RunStatus.finished, "the migration keeps what was stored"
        assert store.results_digest("r1") == "d"
        assert reloaded(store, "r1", caplog) is None
        assert "committed by an older robustinv without a digest" in caplog.text
        store.commit_cell("r1", "k", CellKind.attack, CellResult(make_row(), ROBUST, x_adv=X_ADV))  # recomputed
        loaded = store.load_cell("r1", "k")
        assert loaded is not None and np.array_equal(loaded.robust, ROBUST)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        columns = [row[1] for row in db.execute("PRAGMA table_info(cells)")]
    assert columns[-1] == "artifact_digest"


def test_a_read_only_look_at_a_schema_2_store_does_not_migrate_it(tmp_path: Path) -> None:
    path = tmp_path / "robustinv.db"
    schema_2_store(path, tmp_path / "out")
    with Store(path, readonly=True) as store:
        assert [entry.cells for entry in store.history()] == [1]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
