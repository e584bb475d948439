"""The results store: schema, cell round trips, run bookkeeping, history, and clear errors on bad files."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from robustinv import store as store_module
from robustinv.errors import RobustinvError
from robustinv.records import STORED_KINDS, CellKind, CellResult, ResultRow, SampleGrid, TargetCell
from robustinv.store import APPLICATION_ID, SCHEMA_VERSION, ModelRecord, RunStatus, Store, StoreError


def make_row(**changes: object) -> ResultRow:
    row = ResultRow(
        run_id="r1", dataset="digits", model="net", defense="standard", attack="pgd", norm="linf", eps=0.3, n=4,
        clean_acc=0.75, robust_acc=0.25, success_rate=2 / 3, mean_linf=0.3, max_linf=0.30000001192092896,
        mean_l2=1.5, max_l2=1.75, seconds=0.5, samples_per_s=math.inf, train_seconds=0.0, samples_per_input=1,
        candidate_success=2 / 3, diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan,
        feature_consistency=0.875, flags=("norm>eps", "pgd>fgsm"),
        config={"name": "pgd", "eps": 0.3, "steps": 5, "seed": 7, "nested": {"a": [1, 2.5]}}, seed=7,
        model_fingerprint="abc", dataset_fingerprint="def", model_source="trained", model_train_seconds=1.5,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def same_row(a: ResultRow, b: ResultRow) -> bool:
    """Field by field, NaN equal to NaN (a dataclass's == says NaN != NaN)."""
    return json.dumps(asdict(a)) == json.dumps(asdict(b)) and type(a.flags) is type(b.flags)


def open_run(store: Store, out: Path, run_id: str = "r1", key: str = "suitekey", suite: str = "tiny",
             started: str = "2024-01-01T00:00:00+00:00") -> str:
    run, _ = store.open_run(run_id=run_id, suite=suite, suite_key=key, out_dir=out, started=started)
    return run.run_id


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "db" / "robustinv.db")


def test_a_new_store_has_the_schema_and_wal_journaling(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "robustinv.db"
    Store(path).close()
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "run_models", "cells"} <= tables
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    with Store(path) as again:  # reopening an existing store is fine
        assert again.history() == []


ROBUST = np.array([True, False, True, True])


def test_a_cell_round_trips_with_nans_flags_targets_grid_and_worst_cases(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_id = open_run(store, out)
    row = make_row()
    targets = (TargetCell("net", "standard", "pgd", 0.3, 1, 2, 3, 0.5), TargetCell("net", "standard", "pgd", 0.3, 2, 1, 1, 1.0))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 1, 8, 8), dtype=np.uint8)
    grid = SampleGrid("net", "standard", "pgd", 0.3, (1, 2, 3), ((1, 2, 3), (2, 2, 3)),
                      ((0.5, 0.25, 1.0), (0.125, 0.75, 0.999999)), images)
    x_adv = rng.random((4, 1, 8, 8), dtype=np.float32)
    robust = np.array([True, False, False, True])
    store.commit_cell(run_id, "cellkey", CellKind.attack, CellResult(row, robust, targets, grid, x_adv))

    assert store.finished_cells(run_id) == {"cellkey"}
    assert (out / "cells" / "cellkey.safetensors").is_file()
    loaded = store.load_cell(run_id, "cellkey")
    assert loaded is not None and loaded.grid is not None and loaded.x_adv is not None
    assert same_row(loaded.row, row) and loaded.row.flags == ("norm>eps", "pgd>fgsm")
    assert loaded.targets == targets
    assert np.array_equal(loaded.x_adv, x_adv) and loaded.x_adv.dtype == np.float32
    assert np.array_equal(loaded.robust, robust) and loaded.robust.dtype == np.bool_
    assert np.array_equal(loaded.grid.images, images) and loaded.grid.images.dtype == np.uint8
    assert (loaded.grid.true_labels, loaded.grid.predictions, loaded.grid.confidences) == (
        grid.true_labels, grid.predictions, grid.confidences)
    assert store.load_cell(run_id, "no-such-cell") is None


def test_a_cell_keeps_its_per_input_outcomes_even_without_other_tensors(store: Store, tmp_path: Path) -> None:
    run_id = open_run(store, tmp_path / "out")
    robust = np.array([False, True, True])
    store.commit_cell(run_id, "transfer", CellKind.transfer, CellResult(make_row(attack="pgd-transfer", n=3), robust))
    loaded = store.load_cell(run_id, "transfer")
    assert loaded is not None and loaded.grid is None and loaded.x_adv is None and loaded.targets == ()
    assert np.array_equal(loaded.robust, robust)


def test_the_artifact_keeps_its_format_robust_as_uint8(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_id = open_run(store, out)
    store.commit_cell(run_id, "k", CellKind.guard, CellResult(make_row(attack="pgd-guard"), ROBUST))
    stored = load_file(str(out / "cells" / "k.safetensors"))
    assert set(stored) == {"robust"} and stored["robust"].dtype == np.uint8
    assert stored["robust"].tolist() == [1, 0, 1, 1]


@pytest.mark.parametrize("kind", sorted(set(CellKind) - STORED_KINDS, key=lambda k: k.value))
def test_only_stored_kinds_are_committed(store: Store, tmp_path: Path, kind: CellKind) -> None:
    run_id = open_run(store, tmp_path / "out")
    with pytest.raises(ValueError, match=kind.value):
        store.commit_cell(run_id, "k", kind, CellResult(make_row(), ROBUST))
    assert store.finished_cells(run_id) == frozenset()
    assert not (tmp_path / "out" / "cells").exists()


def test_the_stored_kinds_are_the_schema_s() -> None:
    assert {kind.value for kind in STORED_KINDS} == {"attack", "guard", "transfer"}
    assert store_module.CellKind is CellKind and store_module.CellResult is CellResult  # still importable there


def test_an_artifact_numpy_cannot_read_is_computed_again(store: Store, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    run_id = open_run(store, out)
    store.commit_cell(run_id, "k", CellKind.attack, CellResult(make_row(), ROBUST))
    header = json.dumps({"robust": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()
    (out / "cells" / "k.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with caplog.at_level(logging.WARNING, logger="robustinv.store"):
        assert store.load_cell(run_id, "k") is None
    assert "computing it again" in caplog.text


def test_a_cell_whose_artifact_is_gone_is_reported_missing(store: Store, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    run_id = open_run(store, out)
    x_adv = np.zeros((4, 1, 8, 8), np.float32)
    store.commit_cell(run_id, "k", CellKind.attack, CellResult(make_row(), ROBUST, x_adv=x_adv))
    (out / "cells" / "k.safetensors").write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="robustinv.store"):
        assert store.load_cell(run_id, "k") is None
    assert "computing it again" in caplog.text


def test_open_run_resumes_the_same_suite_into_the_same_folder(store: Store, tmp_path: Path) -> None:
    first, resumed = store.open_run(run_id="r1", suite="tiny", suite_key="k1", out_dir=tmp_path / "a", started="t1")
    assert not resumed and first.status is RunStatus.running
    store.finish_run("r1", RunStatus.interrupted)
    again, resumed = store.open_run(run_id="r2", suite="tiny", suite_key="k1", out_dir=tmp_path / "a", started="t2")
    assert resumed and again.run_id == "r1" and again.started == "t1" and again.status is RunStatus.running
    elsewhere, resumed = store.open_run(run_id="r1", suite="tiny", suite_key="k1", out_dir=tmp_path / "b",
                                        started="t3")
    assert not resumed and elsewhere.run_id == "r1-2", "a taken run_id gets a suffix"
    other_suite, resumed = store.open_run(run_id="r3", suite="tiny", suite_key="k2", out_dir=tmp_path / "a",
                                          started="t4")
    assert not resumed and other_suite.run_id == "r3"


def test_record_model_keeps_the_first_attempts_provenance(store: Store, tmp_path: Path) -> None:
    run_id = open_run(store, tmp_path / "out")
    first = ModelRecord("net", "standard", "fp1", "trained", 12.5)
    assert store.record_model(run_id, first) == first
    assert store.record_model(run_id, replace(first, source="cache", train_seconds=0.0)) == first
    retrained = replace(first, fingerprint="fp2", source="cache", train_seconds=0.0)
    assert store.record_model(run_id, retrained) == retrained, "another model is not the first attempt's"


def test_history_headlines_and_gate_verdicts(store: Store, tmp_path: Path) -> None:
    old = open_run(store, tmp_path / "old", run_id="old", started="2024-01-01T00:00:00+00:00")
    for attack, eps, robust in (("fgsm", 0.1, 0.6), ("fgsm", 0.3, 0.2), ("pgd", 0.1, 0.5), ("pgd", 0.3, 0.1)):
        row = make_row(attack=attack, eps=eps, robust_acc=robust, clean_acc=0.9)
        store.commit_cell(old, f"{attack}{eps}", CellKind.attack, CellResult(row, ROBUST))
    l2 = make_row(attack="pgd-l2", norm="l2", eps=2.0, robust_acc=0.0, clean_acc=0.9)
    store.commit_cell(old, "l2", CellKind.attack, CellResult(l2, ROBUST))
    guard = make_row(attack="pgd-guard", eps=0.3, robust_acc=0.0, clean_acc=0.9)
    store.commit_cell(old, "guard", CellKind.guard, CellResult(guard, ROBUST))
    other = make_row(model="other", defense="trades", attack="pgd", eps=0.3, robust_acc=0.4, clean_acc=0.8)
    store.commit_cell(old, "other", CellKind.attack, CellResult(other, ROBUST))
    store.finish_run(old, RunStatus.finished)
    store.record_gate(old, True)
    new = open_run(store, tmp_path / "new", run_id="new", key="k2", started="2024-02-01T00:00:00+00:00")
    store.commit_cell(new, "x", CellKind.attack, CellResult(make_row(model="other", robust_acc=0.3), ROBUST))
    store.finish_run(new, RunStatus.finished)
    store.record_gate(new, False)

    entries = store.history()
    assert [e.run.run_id for e in entries] == ["new", "old"]
    assert [e.run.gate_passed for e in entries] == [False, True]
    assert entries[1].cells == 7 and entries[1].run.status is RunStatus.finished
    net, trades = entries[1].headlines
    # Linf preferred over L2; the guard's row (0.0) does not count; the worst suite attack at ε 0.3 does.
    assert (net.model, net.clean_acc, net.norm, net.eps, net.worst_robust_acc, net.worst_attack) == (
        "net", 0.9, "linf", 0.3, 0.1, "pgd")
    assert (trades.model, trades.defense, trades.worst_robust_acc) == ("other", "trades", 0.4)
    only_net = store.history(model="net")
    assert [e.run.run_id for e in only_net] == ["old"] and [h.model for h in only_net[0].headlines] == ["net"]
    assert store.history(model="nobody") == []

    found = store.last_passing_run("tiny")
    assert found is not None and (found.run_id, found.out_dir) == ("old", (tmp_path / "old").resolve())
    assert store.last_passing_run("suitekey") == found
    assert store.last_passing_run("k2") is None, "its only run failed the gate"
    assert store.last_passing_run("tiny", besides=tmp_path / "old") is None, "never the folder being judged"
    assert store.last_passing_run("tiny", besides_run="old") is None, "never the run being judged"
    assert store.last_passing_run("tiny", besides=tmp_path / "new", besides_run="new") == found
    open_run(store, tmp_path / "old", run_id="ignored")  # resuming the passing run clears its verdict
    assert store.last_passing_run("tiny") is None


def test_unknown_runs_are_clear_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="has no run 'nope'"):
        store.record_gate("nope", True)
    with pytest.raises(StoreError, match="has no run 'nope'"):
        store.finish_run("nope", RunStatus.failed)


def test_a_corrupt_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "robustinv.db"
    path.write_bytes(b"this is not an SQLite file\n" * 200)
    with pytest.raises(RobustinvError, match=r"robustinv.db is damaged or not an SQLite database .*move it aside"):
        Store(path)


def test_a_damaged_page_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "robustinv.db"
    with Store(path) as store:
        run_id = open_run(store, tmp_path / "out")
        for i in range(200):
            store.commit_cell(run_id, f"k{i}", CellKind.attack, CellResult(make_row(attack=f"a{i}"), ROBUST))
    db = sqlite3.connect(path)
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[:page] + b"\xff" * (len(data) - page))  # the header and schema survive, the tables not
    with pytest.raises(RobustinvError, match="damaged or not an SQLite database"):
        with Store(path) as store:
            store.history()


def test_another_sqlite_database_or_a_newer_schema_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(RobustinvError, match="not a robustinv results store"):
        Store(foreign)
    newer = tmp_path / "newer.db"
    Store(newer).close()
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(RobustinvError, match="written by a newer robustinv"):
        Store(newer)


def test_an_unusable_store_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(RobustinvError, match="a-file is a file, not a folder"):
        Store(blocker / "robustinv.db")
    with pytest.raises(RobustinvError, match="is a folder; give a file path"):
        Store(tmp_path)


def test_a_read_only_store_falls_back_to_an_immutable_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where not even WAL's shared-memory file can be created beside the store, it is read as immutable."""
    path = tmp_path / "robustinv.db"
    with Store(path) as writer:
        open_run(writer, tmp_path / "out")
    connect = sqlite3.connect
    tried: list[str] = []

    def no_shared_memory(target: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        tried.append(str(target))
        if "mode=ro" in str(target) and "immutable" not in str(target):
            raise sqlite3.OperationalError("unable to open database file")
        return connect(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", no_shared_memory)
    with Store(path, readonly=True) as reader:
        assert [entry.run.run_id for entry in reader.history()] == ["r1"]
    assert tried[-1].endswith("?mode=ro&immutable=1")
