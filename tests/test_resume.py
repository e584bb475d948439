"""Resuming a run from the results store: only unfinished cells are computed, and the rows come out the same."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file, save_file

from conftest import TINY_SUITE, write_suite
from robustinv.attacks import Attack
from robustinv.data import load_dataset
from robustinv.training import prepare_models
from robustinv.paths import cache_dir
from robustinv.records import TIMING_COLUMNS, ResultRow, RunResult
from robustinv.records.tables import rows_frame
from robustinv.run import run_suite
from robustinv.runtime import resolve_device
from robustinv.store import RunStatus, Store
from robustinv.suite import Suite, load_suite

# TINY_SUITE with a second standard model and the guard on both: 2 × 4 attack cells, 2 guard, 2 transfer,
# 2 unbounded.
SECOND_MODEL = """
[[models]]
name = "second"
arch = "smallcnn"

[models.train]
epochs = 2
batch_size = 64
lr = 0.003

[[attacks]]"""
RESUME_SUITE = TINY_SUITE.replace("[[attacks]]", SECOND_MODEL, 1) + """
[guard]
models = "all"
n = 20
steps_factor = 2
restarts = 2
"""
CELLS = 14


def table(rows: list[ResultRow]) -> pd.DataFrame:
    """results.csv as `rows_frame` builds it, without the columns that measure time (run_id among them)."""
    return rows_frame(rows).drop(columns=sorted(TIMING_COLUMNS))


def assert_same_results(result: RunResult, expected: RunResult) -> None:
    pd.testing.assert_frame_equal(table(result.rows), table(expected.rows), check_exact=True)
    assert result.targets == expected.targets
    assert [(g.model, g.defense, g.attack, g.eps, g.predictions, g.confidences) for g in result.grids] == [
        (g.model, g.defense, g.attack, g.eps, g.predictions, g.confidences) for g in expected.grids]
    assert all(np.array_equal(a.images, b.images) for a, b in zip(result.grids, expected.grids))


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, isolated_cache: Path) -> Suite:
    """The suite, with its models trained here: every run below loads them from the cache alike."""
    loaded = load_suite(write_suite(tmp_path_factory.mktemp("resume"), RESUME_SUITE))
    dataset = load_dataset(loaded.dataset.name)
    threads = torch.get_num_threads()
    torch.set_num_threads(loaded.threads)  # cells train on the suite's threads: the cache key says so
    try:
        for spec in loaded.models:
            prepare_models(spec, dataset, seed=loaded.seed, device=resolve_device(loaded.device.value),
                           cache_dir=cache_dir())
    finally:
        torch.set_num_threads(threads)
    return loaded


@pytest.fixture(scope="module")
def reference(suite: Suite) -> RunResult:
    """An uninterrupted run without a store."""
    return run_suite(suite)


def test_a_run_without_a_store_computes_every_cell(reference: RunResult) -> None:
    assert (reference.computed, reference.reused) == (CELLS, 0)
    worst = [row for row in reference.rows if row.attack == "worst_case"]
    assert len(reference.rows) == CELLS + len(worst) and len(worst) == 4  # 2 models × ε 0.1, 0.3


def test_a_store_needs_an_output_folder(suite: Suite, tmp_path: Path) -> None:
    with Store(tmp_path / "robustinv.db") as store, pytest.raises(ValueError, match="needs out_dir"):
        run_suite(suite, store=store)


def test_a_resumed_run_computes_only_the_missing_cells(
    suite: Suite, reference: RunResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, db = tmp_path / "out", tmp_path / "robustinv.db"
    with Store(db) as store:
        full = run_suite(suite, store=store, out_dir=out)
    assert (full.computed, full.reused) == (CELLS, 0)
    assert_same_results(full, reference)
    # Every cell keeps its per-input outcomes (the worst case needs them), so every cell has tensors.
    assert len(list((out / "cells").glob("*.safetensors"))) == CELLS
    assert {p.suffix for p in out.rglob("*") if p.is_file()} == {".safetensors"}

    # As if the run had stopped early: the guarded PGD cell of one model (with its grid and worst
    # cases), and the other model's guard, unbounded and transfer cells (which need the first model's).
    with closing(sqlite3.connect(db)) as conn, conn:
        deleted = conn.execute(
            "DELETE FROM cells WHERE (model = 'smallcnn' AND attack = 'pgd' AND eps = 0.3) "
            "OR (model = 'second' AND kind IN ('guard', 'transfer'))"
        ).rowcount
    assert deleted == 4
    with caplog.at_level(logging.INFO, logger="robustinv.run.journal"), Store(db) as store:
        resumed = run_suite(suite, store=store, out_dir=out)
        [entry] = store.history()
    assert f"resuming run {full.info.run_id}: {CELLS - 4} of {CELLS} cells already done" in caplog.text
    assert (resumed.computed, resumed.reused) == (4, CELLS - 4)
    assert resumed.info.run_id == full.info.run_id and resumed.info.started == full.info.started
    assert {row.run_id for row in resumed.rows} == {full.info.run_id}
    assert entry.run.status is RunStatus.finished and entry.cells == CELLS
    assert_same_results(resumed, reference)

    with Store(db) as store:  # a finished run into the same folder is all reuse
        again = run_suite(suite, store=store, out_dir=out)
    assert (again.computed, again.reused) == (0, CELLS)
    assert_same_results(again, reference)


def test_a_truncated_cell_artifact_is_computed_again_not_reused(
    suite: Suite, reference: RunResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid artifact whose per-input mask lost inputs used to shrink the resumed worst case to those inputs."""
    out, db = tmp_path / "out", tmp_path / "robustinv.db"
    with Store(db) as store:
        run_suite(suite, store=store, out_dir=out)
    with closing(sqlite3.connect(db)) as conn:
        (artifact,) = conn.execute("SELECT artifact FROM cells WHERE model = 'smallcnn' AND attack = 'fgsm' "
                                   "AND eps = 0.3").fetchone()
    tensors = load_file(str(out / artifact))
    save_file({**tensors, "robust": tensors["robust"][:5]}, str(out / artifact))
    with caplog.at_level(logging.WARNING, logger="robustinv.store"), Store(db) as store:
        resumed = run_suite(suite, store=store, out_dir=out)
    assert "is not the file committed with the cell" in caplog.text
    assert (resumed.computed, resumed.reused) == (1, CELLS - 1)
    worst = [row.n for row in resumed.rows if row.attack == "worst_case" and row.model == "smallcnn" and row.eps == 0.3]
    assert worst == [20], "the worst case over the guard's 20 inputs, not over the 5 the damaged mask kept"
    assert_same_results(resumed, reference)
    assert load_file(str(out / artifact))["robust"].shape == (60,), "the recomputed cell replaced the damaged file"


def test_ctrl_c_marks_the_run_interrupted_and_a_rerun_finishes_it(
    suite: Suite, reference: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, db = tmp_path / "out", tmp_path / "robustinv.db"
    original, calls = Attack.run, []

    def interrupt_after_two(self: Attack, *args: Any, **kwargs: Any) -> Any:
        calls.append(self.config.display_name)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Attack, "run", interrupt_after_two)
    with Store(db) as store, pytest.raises(KeyboardInterrupt):
        run_suite(suite, store=store, out_dir=out)
    monkeypatch.undo()
    with Store(db) as store:
        [entry] = store.history()
        assert entry.run.status is RunStatus.interrupted and entry.cells == 2
        resumed = run_suite(suite, store=store, out_dir=out)
        [entry] = store.history()
    assert entry.run.status is RunStatus.finished
    assert (resumed.computed, resumed.reused) == (CELLS - 2, 2)
    assert_same_results(resumed, reference)


# The real thing: a CLI run killed mid-loop, then rerun. ------------------------------------------

ROBUSTINV = Path(sys.executable).with_name("robustinv")

SLOW_SUITE = """
name = "resume-kill"
seed = 3

[dataset]
name = "digits"
n_eval = 120

[[models]]
name = "smallcnn"

[models.train]
epochs = 2
batch_size = 64

[[attacks]]
name = "pgd"
eps = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4]
steps = 20
step_size = 0.02

[[attacks]]
name = "fgsm"
eps = [0.05, 0.1, 0.2, 0.3]

[guard]
models = "all"
n = 40
steps_factor = 2
restarts = 2
"""
SLOW_CELLS = 12  # 6 PGD (~1 s each on 2 CPUs), 4 FGSM, 1 guard, 1 unbounded (one model: no transfer)


def committed_cells(db: Path) -> int:
    """Cells the run has committed so far, read as any other reader of the store would."""
    if not db.is_file():
        return 0
    try:
        with closing(sqlite3.connect(db, timeout=10)) as conn:
            return int(conn.execute("SELECT count(*) FROM cells").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def slow_suite_command(suite: Path, out: Path, db: Path, executor: str) -> list[str]:
    return [str(ROBUSTINV), "run", str(suite), "--out", str(out), "--store", str(db), "--executor", executor]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """results.csv of one uninterrupted serial CLI run of the slow suite (every executor gives the same)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    command = slow_suite_command(write_suite(folder, SLOW_SUITE), folder / "out", folder / "robustinv.db", "serial")
    done = subprocess.run(command, env={**os.environ, "ROBUSTINV_CACHE": str(folder / "cache")}, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_csv(folder / "out" / "results.csv").drop(columns=sorted(TIMING_COLUMNS))


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "process", pytest.param("ray", marks=pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="the ray extra is not installed"))])
def test_a_killed_cli_run_resumes_to_the_results_of_an_uninterrupted_one(tmp_path: Path, executor: str,
                                                                         uninterrupted: pd.DataFrame) -> None:
    """The driver is killed mid-run (its workers, or its Ray instance, die with it); the rerun finishes the run."""
    suite = write_suite(tmp_path, SLOW_SUITE)

    def command(out: Path, db: Path) -> list[str]:
        return slow_suite_command(suite, out, db, executor)

    def env(cache: str) -> dict[str, str]:  # the run trains its own model: every results.csv says "trained"
        # Ray's workers at nice 0, not its default 15: beside a second pytest worker they would starve.
        return {**os.environ, "ROBUSTINV_CACHE": str(tmp_path / cache), "RAY_worker_niceness": "0"}

    out, db = tmp_path / "out", tmp_path / "robustinv.db"
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(command(out, db), env=env("cache"), stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while committed_cells(db) < 2:
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before 2 cells were committed: "
                            f"{(tmp_path / 'killed.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("no 2 cells committed within 300 s")
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    with Store(db) as store:
        [entry] = store.history()
    assert entry.run.status is RunStatus.running, "a killed process has no chance to record anything"
    assert 2 <= entry.cells < SLOW_CELLS, "the kill should land mid-loop"

    resumed = subprocess.run(command(out, db), env=env("cache"), capture_output=True, text=True, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = re.search(r"resuming run \S+: (\d+) of (\d+) cells already done", resumed.stderr)
    assert done is not None, resumed.stderr[-3000:]
    assert int(done[2]) == SLOW_CELLS and entry.cells <= int(done[1]) < SLOW_CELLS

    resumed_frame = pd.read_csv(out / "results.csv").drop(columns=sorted(TIMING_COLUMNS))
    assert (resumed_frame["model_source"] == "trained").all()
    pd.testing.assert_frame_equal(resumed_frame, uninterrupted, check_exact=True)
