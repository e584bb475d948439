"""The run folder's lock: one writer at a time, whatever store each uses, released on every way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustinv.store import Store
from robustinv.store.folder_lock import LOCK_NAME, FolderInUse, folder_lock

HOLD = """
import sys, time
from pathlib import Path
from robustinv.store.folder_lock import folder_lock
with folder_lock(Path(sys.argv[1]), command="run", suite="tiny"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with folder_lock(out, command="run", suite="tiny"):
        assert (out / LOCK_NAME).is_file()
        with pytest.raises(FolderInUse, match=rf"out is in use: a run of suite 'tiny' \(process {os.getpid()}\) is "
                                              "writing to it"):
            with folder_lock(out, command="run", suite="other"):
                pass
        for command in ("gate", "report"):
            with pytest.raises(FolderInUse, match="is in use"):
                with folder_lock(out, command=command):
                    pass
        with pytest.raises(FolderInUse, match="is in use"), folder_lock(out, command="gate", shared=True, create=False):
            pass
    assert not out.exists(), "a folder only the lock made goes with it"


def test_the_holders_run_is_named_when_the_store_knows_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Store(tmp_path / "s.db") as store:
        store.open_run(run_id="r1", suite="tiny", suite_key="k", out_dir=out, started="t")
        with folder_lock(out, command="run", suite="tiny", runs=store):
            with pytest.raises(FolderInUse, match=rf"run r1 \(process {os.getpid()}\) is writing"):
                with folder_lock(out, command="run", runs=store):
                    pass
    with folder_lock(out, command="gate"), pytest.raises(FolderInUse, match=rf"robustinv gate \(process "):
        with folder_lock(out, command="report"):
            pass


def test_readers_share_a_folder_and_keep_writers_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text('{"command": "run", "pid": 999999999, "suite": "gone"}')  # a killed run's
    with folder_lock(out, command="gate", shared=True, create=False):
        with folder_lock(out, command="gate", shared=True, create=False):
            with pytest.raises(FolderInUse, match="in use: another robustinv process is using it"):
                with folder_lock(out, command="run"):
                    pass
    with folder_lock(out, command="run"):
        pass
    assert sorted(p.name for p in out.iterdir()) == [], "the writer removed the lock file when done"


def test_a_reader_of_a_folder_without_lock_file_writes_nothing(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    with folder_lock(baseline, command="gate", shared=True, create=False):
        assert list(baseline.iterdir()) == []
    with folder_lock(tmp_path / "missing", command="gate", shared=True, create=False):
        pass
    assert not (tmp_path / "missing").exists()


def test_every_way_out_releases_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    with pytest.raises(KeyboardInterrupt), folder_lock(out, command="run"):
        raise KeyboardInterrupt
    assert not (tmp_path / "deep").exists(), "folders the lock made are removed when nothing else went into them"
    with pytest.raises(ValueError), folder_lock(out, command="run"):
        (out / "cells").mkdir()
        (out / "cells" / "k.safetensors").write_bytes(b"x")
        raise ValueError
    assert sorted(p.name for p in out.iterdir()) == ["cells"], "committed cells stay, the lock file goes"
    with folder_lock(out, command="run"):
        pass


def test_a_killed_holder_leaves_the_folder_free(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUse, match=rf"a run of suite 'tiny' \(process {holder.pid}\)"):
            with folder_lock(out, command="run"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (out / LOCK_NAME).is_file(), "SIGKILL gives no chance to clean up"
    deadline = time.monotonic() + 10
    while True:  # the kernel drops the lock with the process
        try:
            with folder_lock(out, command="run"):
                break
        except FolderInUse:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert not (out / LOCK_NAME).exists()


def test_a_damaged_lock_file_still_names_someone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with folder_lock(out, command="run"):
        (out / LOCK_NAME).write_bytes(b"\xff not json")
        with pytest.raises(FolderInUse, match="in use: another robustinv process is using it"):
            with folder_lock(out, command="run"):
                pass


# Through the command line ------------------------------------------------------------------------

def invoke(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr


def test_run_gate_and_report_refuse_a_folder_in_use(tmp_path: Path) -> None:
    from conftest import TINY_SUITE, write_suite

    suite = write_suite(tmp_path, TINY_SUITE)
    out = tmp_path / "out"
    (tmp_path / "p.toml").write_text('[[rules]]\nmetric = "clean_acc"\nmin = 0.0\n')
    with folder_lock(out, command="run", suite="tiny"):
        (out / "results.json").write_text("{}")  # what a run part-way through leaves: not for reading yet
        for args in (("run", str(suite), "--out", str(out)), ("gate", str(out), "--policy", str(tmp_path / "p.toml")),
                     ("report", str(out))):
            code, stderr = invoke(*args)
            assert code == 2 and f"is in use: a run of suite 'tiny' (process {os.getpid()})" in stderr, stderr
            assert "Traceback" not in stderr and len([line for line in stderr.splitlines() if "error" in line]) == 1
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "results.json"], "nothing was written"


@pytest.mark.slow
def test_two_runs_with_different_stores_never_share_a_folder(tmp_path: Path) -> None:
    """The red team's case: both exited 0 and left a mix of both runs' cells."""
    from conftest import TINY_SUITE, write_suite
    from test_resume import committed_cells

    # Long enough that the first run is still attacking when it is terminated, however loaded the machine.
    suite = write_suite(tmp_path, TINY_SUITE.replace("steps = 5", "steps = 4000").replace("n_eval = 60", "n_eval = 300"))
    out, first_db, second_db = tmp_path / "out", tmp_path / "first.db", tmp_path / "second.db"
    robustinv = Path(sys.executable).with_name("robustinv")
    first = subprocess.Popen([str(robustinv), "run", str(suite), "--out", str(out), "--store", str(first_db)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).is_file() or not (out / LOCK_NAME).read_bytes():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never locked its folder"
            time.sleep(0.05)
        code, stderr = invoke("run", str(suite), "--out", str(out), "--store", str(second_db))
        assert code == 2 and f"is in use: a run of suite 'tiny' (process {first.pid}) is writing to it" in stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM
    assert committed_cells(second_db) == 0, "the refused run stored nothing"
    assert not (out / LOCK_NAME).exists(), "the interrupted run released its folder"
