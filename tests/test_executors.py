"""Executors: the same suite gives the same results.csv in-process, on worker processes and on Ray; failures and
dead workers are handled cell by cell."""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from cli import main
from conftest import write_suite
from robustinv.errors import ModelError
from robustinv.models.checked import ModelCallError
from robustinv.records import CellKind
from robustinv.run.executors import ExecutorOptions
from robustinv.run.executors.failures import CellCrash, CellFailure, capture
from robustinv.run.executors.pool import Pool
from robustinv.run.plan import CellSpec, ModelRef
from robustinv.run.setting import RunSetting
from robustinv.attacks.fgsm import Fgsm
from robustinv.errors import RobustinvError
from robustinv.records import TIMING_COLUMNS, RunResult
from robustinv.records.tables import rows_frame
from robustinv.run import run_suite
from robustinv.store import RunStatus, Store
from robustinv.suite import Suite, load_suite

HAS_RAY = importlib.util.find_spec("ray") is not None
# The Ray tests of a pytest worker share one local Ray instance: starting Ray costs seconds and a dozen processes.
RAY_MARKS = (pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed"), pytest.mark.slow)


def on_ray(test: Any) -> Any:
    for mark in RAY_MARKS:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def ray_kill_mark(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A local Ray instance for this module's Ray tests; yields the mark file its killer model leaves."""
    import ray

    mark = tmp_path_factory.mktemp("ray") / "killed"
    # Ray starts its workers at nice 15; beside a second pytest worker they would wait minutes for a core.
    os.environ["RAY_worker_niceness"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"ROBUSTINV_TEST_KILL_MARK": str(mark)}})
    yield mark
    ray.shutdown()

# Two models to train, a defended one with the guard (stronger PGD, transfer from the standard model, ε = 1 PGD),
# and a learning attack (a generator per ε): every kind of cell, and dependencies between models.
EXECUTOR_SUITE = """
name = "executors"
seed = 3

[dataset]
name = "digits"
n_eval = 48

[[models]]
name = "smallcnn"
defenses = ["standard", "pgd_at"]

[models.train]
epochs = 2
batch_size = 64

[models.adversarial]
epochs = 1
batch_size = 64
eps = 0.1
steps = 2
step_size = 0.05

[[attacks]]
name = "fgsm"
eps = [0.1, 0.2]

[[attacks]]
name = "pgd"
eps = [0.1, 0.2]
steps = 4
step_size = 0.05

[[attacks]]
name = "inversion"
eps = [0.2]
samples_per_input = 2

[attacks.train]
steps = 20

[guard]
n = 24
steps_factor = 2
restarts = 2
"""

KILL_ONCE = '''
import multiprocessing, os
from pathlib import Path

from torch import nn

from robustinv import model_builder
from robustinv.models.zoo import smallcnn

MARK = Path(os.environ["ROBUSTINV_TEST_KILL_MARK"])


class KilledOnce(nn.Module):
    """smallcnn whose first forward pass in a worker (a child process, or a Ray worker) kills that worker."""

    def __init__(self) -> None:
        super().__init__()
        self.net = smallcnn((1, 8, 8), 10)

    def forward(self, x):
        if multiprocessing.parent_process() is not None or os.environ.get("RAY_RAYLET_PID"):
            if not MARK.exists():
                MARK.touch()
                os._exit(1)
        return self.net(x)


@model_builder
def build() -> nn.Module:
    return KilledOnce()
'''


def frame(result: RunResult) -> pd.DataFrame:
    """results.csv without the columns that measure time (run_id among them)."""
    return rows_frame(result.rows).drop(columns=sorted(TIMING_COLUMNS))


def with_cache(text: str, cache: Path) -> str:
    """The suite with its own model cache (a top-level key, so before the first table)."""
    first_table = text.index("[dataset]")
    return text[:first_table] + f'cache_dir = "{cache}"\n\n' + text[first_table:]


SERIAL_CACHE: dict[str, Path] = {}


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    folder = tmp_path_factory.mktemp("serial")
    result = run_suite(load_suite(write_suite(folder, with_cache(EXECUTOR_SUITE, folder / "cache"))))
    SERIAL_CACHE[result.info.run_id] = folder / "cache"
    return result


def serial_cache(result: RunResult) -> Path:
    """The model and generator cache the serial run filled."""
    return SERIAL_CACHE[result.info.run_id]


def test_the_serial_run_has_every_kind_of_cell(serial: RunResult) -> None:
    attacks = set(frame(serial)["attack"])
    assert {"fgsm", "pgd", "inversion", "pgd-guard", "pgd-transfer", "pgd-unbounded", "worst_case"} <= attacks
    assert serial.info.executor == "serial"
    assert set(frame(serial)["defense"]) == {"standard", "pgd_at"}


@pytest.mark.slow
def test_worker_processes_give_the_serial_results(serial: RunResult, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, with_cache(EXECUTOR_SUITE, tmp_path / "cache")))
    result = run_suite(suite, executor="process", workers=2)
    pd.testing.assert_frame_equal(frame(result), frame(serial), check_exact=True)
    assert result.targets == serial.targets
    workers = result.info.workers
    assert len(workers) == 2, f"two worker processes shared the cells: {workers}"


@pytest.mark.usefixtures("ray_kill_mark")
@on_ray
def test_ray_gives_the_serial_results(serial: RunResult, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, with_cache(EXECUTOR_SUITE, tmp_path / "cache")))
    result = run_suite(suite, executor="ray")
    pd.testing.assert_frame_equal(frame(result), frame(serial), check_exact=True)
    assert all(worker.startswith("ray node ") for worker in result.info.workers)


@pytest.mark.slow
def test_a_failing_cell_fails_the_run_after_the_others_are_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    suite = load_suite(write_suite(tmp_path, with_cache(EXECUTOR_SUITE, tmp_path / "cache")))
    original = Fgsm.generate

    def broken(self: Fgsm, model: Any, x: Any, y: Any, eps: float, *, seed: int) -> Any:
        if eps == 0.2:
            raise RobustinvError("fgsm broke on purpose")
        return original(self, model, x, y, eps, seed=seed)

    monkeypatch.setattr(Fgsm, "generate", broken)
    out, db = tmp_path / "out", tmp_path / "robustinv.db"
    with caplog.at_level(logging.ERROR), Store(db) as store, pytest.raises(RobustinvError, match="on purpose"):
        run_suite(suite, store=store, out_dir=out)
    failed = [r.getMessage() for r in caplog.records if "fgsm broke on purpose" in r.getMessage()]
    assert len(failed) == 2 and all("fgsm ε=0.2" in line for line in failed), failed  # one per model, with the cell
    with Store(db) as store:
        [entry] = store.history()
    assert entry.run.status is RunStatus.failed
    planned = 2 * (2 * 2 + 1) + 3  # per model: fgsm, pgd at two ε and the inversion; guard rows of pgd_at
    assert entry.cells == planned - 2, "every cell but the two failed ones was stored"

    monkeypatch.setattr(Fgsm, "generate", original)
    with Store(db) as store:
        resumed = run_suite(suite, store=store, out_dir=out)
    assert (resumed.computed, resumed.reused) == (2, planned - 2)


def killer_suite(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Suite:
    """The executor suite with a model whose first forward pass in a worker kills the worker."""
    (folder / "killer.py").write_text(KILL_ONCE, encoding="utf-8")
    monkeypatch.setenv("ROBUSTINV_TEST_KILL_MARK", str(folder / "killed"))
    text = with_cache(EXECUTOR_SUITE, folder / "cache").replace('name = "smallcnn"\ndefenses = ["standard", "pgd_at"]',
                                                               'name = "killer"\narch = "killer:build"')
    return load_suite(write_suite(folder, text))


@pytest.mark.slow
def test_a_worker_killed_mid_cell_is_replaced_and_the_cell_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    suite = killer_suite(tmp_path, monkeypatch)
    result = run_suite(suite, base_dir=tmp_path, executor="process", workers=2)
    assert (tmp_path / "killed").exists(), "a worker was killed"
    assert "Traceback" not in capfd.readouterr().err, "no worker prints a traceback when the pool closes"
    reference = run_suite(suite, base_dir=tmp_path)  # loads the model the killed run trained
    pd.testing.assert_frame_equal(frame(result).drop(columns="model_source"),
                                  frame(reference).drop(columns="model_source"), check_exact=True)


@on_ray
def test_ray_retries_a_cell_whose_worker_was_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    ray_kill_mark: Path) -> None:
    suite = killer_suite(tmp_path, monkeypatch)
    monkeypatch.setenv("ROBUSTINV_TEST_KILL_MARK", str(ray_kill_mark))  # the mark the Ray workers were given
    result = run_suite(suite, base_dir=tmp_path, executor="ray")
    assert ray_kill_mark.exists(), "a Ray worker was killed"
    reference = run_suite(suite, base_dir=tmp_path)
    pd.testing.assert_frame_equal(frame(result).drop(columns="model_source"),
                                  frame(reference).drop(columns="model_source"), check_exact=True)


def test_an_unknown_executor_lists_the_known_ones(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, with_cache(EXECUTOR_SUITE, tmp_path / "cache")))
    with pytest.raises(RobustinvError, match="valid executors: process, ray, serial"):
        run_suite(suite, executor="threads")


def test_generate_loads_the_generator_the_run_trained(serial: RunResult, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """`robustinv generate` derives the generator's seed as `run` does, defense included: nothing trains again."""
    from robustinv.jobs.inversion import generate_samples

    suite = load_suite(write_suite(tmp_path, with_cache(EXECUTOR_SUITE, serial_cache(serial))))
    for defense in ("standard", "pgd_at"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="robustinv.inversion.cached"):
            request, _ = generate_samples(suite, model_name="smallcnn", defense=defense, n=4, out_dir=tmp_path / defense)
        said = [r.getMessage() for r in caplog.records if r.name == "robustinv.inversion.cached"]
        assert not any("training" in m for m in said) and any("cached" in m for m in said), said
        row = next(r for r in serial.rows if r.attack == "inversion" and r.defense == defense)
        assert request.seed == row.seed and request.model_fingerprint == row.model_fingerprint


@pytest.mark.slow
def test_a_progress_display_sees_every_cell_and_the_training_epochs(tmp_path: Path) -> None:
    from robustinv.run.schedule import Progress

    seen: dict[str, Any] = {"total": 0, "cells": [], "epochs": []}
    progress = Progress(
        on_start=lambda total: seen.update(total=total),
        on_cell=lambda spec, how: seen["cells"].append((spec.kind.value, how)),
        on_event=lambda spec, step, steps: seen["epochs"].append((spec.model.label, step, steps)),
    )
    suite = load_suite(write_suite(tmp_path, with_cache(EXECUTOR_SUITE, tmp_path / "cache")))
    run_suite(suite, progress=progress)
    attacked = 2 * 5 + 3  # the attacks and the guard's cells, each explained by an explain cell
    assert len(seen["cells"]) == seen["total"] == 2 + 2 + attacked + attacked  # and prepare, train
    assert {how for _, how in seen["cells"]} == {"computed"}
    assert ("smallcnn", 2, 2) in seen["epochs"] and ("smallcnn[pgd_at]", 1, 1) in seen["epochs"]


def test_the_progress_bar_stays_quiet_when_asked_or_not_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from robustinv.progress_bar import progress_bar

    class Terminal:
        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    assert progress_bar(quiet=False) == (None, None)  # pytest's captured stderr is no terminal
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress_bar(quiet=True) == (None, None)
    hooks, bar = progress_bar(quiet=False)
    assert hooks is not None and bar is not None
    bar.close()


@pytest.mark.slow
@pytest.mark.parametrize(("driver", "exit_code"), [("os.getppid()", 0), ("os.getppid() + 1", 1)])
def test_a_worker_whose_driver_is_gone_before_it_starts_exits(driver: str, exit_code: int) -> None:
    # A driver killed while its worker is still importing leaves the worker reparented; its set-up
    # compares its parent with the driver's pid it was given and exits rather than wait forever.
    code = ("import os; from robustinv.run.executors.pool import _start_worker; "
            f"_start_worker(1, None, {driver}); print('started')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == exit_code, done.stderr
    assert ("started" in done.stdout) == (exit_code == 0)


# Errors inside workers: whatever a user model does ends as one line naming it; only robustinv's bugs are exit 3 ----

WORKER_MODELS = '''
import logging
import os
import sys

from torch import nn

from robustinv import model_builder
from robustinv.models.zoo import smallcnn

SAID = []


class Net(nn.Module):
    how = "fine"

    def __init__(self):
        super().__init__()
        self.net = smallcnn((1, 8, 8), 10)

    def forward(self, x):
        if len(x) > 8 and self.how == "raise":
            raise RuntimeError("CUDA out of memory (simulated)")
        if len(x) > 8 and self.how == "exit":
            sys.exit(3)
        if len(x) > 8 and self.how == "die":
            os._exit(3)
        if len(x) > 8 and self.how == "talk" and not SAID:
            SAID.append(True)
            logging.getLogger("robustinv.test_worker").warning("worker %d saw a batch", os.getpid())
        return self.net(x)


@model_builder
def build(how: str = "fine") -> nn.Module:
    net = Net()
    net.how = how
    return net
'''


def worker_suite(folder: Path, how: str) -> Suite:
    """A one-model suite whose user model, on any batch larger than the probe's, does what `how` says."""
    (folder / "workermodels.py").write_text(WORKER_MODELS, encoding="utf-8")
    text = with_cache(EXECUTOR_SUITE, folder / "cache")
    text = text.replace('name = "smallcnn"\ndefenses = ["standard", "pgd_at"]',
                        f'name = "m"\narch = "workermodels:build"\narch_kwargs = {{ how = "{how}" }}')
    return load_suite(write_suite(folder, text[: text.index("[[attacks]]\nname = \"pgd\"")]))


def a_spec() -> CellSpec:
    return CellSpec(key="k" * 20, kind=CellKind.prepare, model=ModelRef(0, "m", "standard", "fp"))


def test_a_cell_failure_crosses_a_process_boundary_and_keeps_whose_it_was(tmp_path: Path) -> None:
    setting = RunSetting(worker_suite(tmp_path, "fine"), "key", "run", tmp_path, None, 1)

    def raising(exc: BaseException) -> Any:
        def run() -> None:
            raise exc
        return capture(setting, a_spec(), run)

    unpicklable = ModelCallError("model 'm' failed on a batch of 64 images", "RuntimeError: x")
    with pytest.raises(TypeError):
        pickle.loads(pickle.dumps(unpicklable))  # what broke the process pool
    failure = pickle.loads(pickle.dumps(raising(unpicklable)))
    assert isinstance(failure, CellFailure) and failure.blame == "model"
    error = failure.exception()
    assert isinstance(error, ModelError) and str(error) == "model 'm' failed on a batch of 64 images"
    bug = pickle.loads(pickle.dumps(raising(ZeroDivisionError("a robustinv bug")))).exception()
    assert isinstance(bug, CellCrash) and not isinstance(bug, RobustinvError)
    assert bug.remote_type == "ZeroDivisionError" and "Traceback" in str(bug.__cause__)
    exited = raising(SystemExit(3)).exception()
    assert isinstance(exited, ModelError)
    assert "model 'm' called sys.exit(3) in cell kkkkkkkkkkkk (prepare m)" in str(exited)
    with pytest.raises(KeyboardInterrupt):
        raising(KeyboardInterrupt())


@pytest.mark.slow
@pytest.mark.parametrize(("how", "message"), [
    ("raise", "model 'm' failed on a batch of"),
    ("exit", "model 'm' called sys.exit(3) in cell"),
    ("die", "model 'm': the worker process running cell"),
])
def test_a_user_model_failing_in_a_worker_process_is_the_models_error(tmp_path: Path, how: str, message: str) -> None:
    suite = worker_suite(tmp_path, how)
    with pytest.raises(ModelError, match=re.escape(message)):  # exit 3 (an unpicklable error, a dead worker) before
        run_suite(suite, base_dir=tmp_path, executor="process", workers=1)


@pytest.mark.slow
def test_worker_log_records_reach_the_driver_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    suite = worker_suite(tmp_path, "talk")
    with caplog.at_level(logging.WARNING, logger="robustinv"):
        run_suite(suite, base_dir=tmp_path, executor="process", workers=1)
    said = [r.getMessage() for r in caplog.records if r.name == "robustinv.test_worker"]
    assert said and all(f"worker {os.getpid()} " not in line for line in said), said


def test_a_missing_ray_is_refused_before_any_data_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` finds when Ray is not installed
    suite, db = write_suite(tmp_path, EXECUTOR_SUITE), tmp_path / "runs.db"
    result = CliRunner().invoke(main, ["run", str(suite), "--out", str(tmp_path / "out"), "--executor", "ray",
                                       "--store", str(db)])
    assert result.exit_code == 2 and "needs Ray, which is not installed" in result.stderr, result.stderr
    assert "dataset" not in result.stderr and "Traceback" not in result.stderr
    with Store(db) as store:
        assert store.history() == [], "a refused run is no failed run"


@pytest.mark.usefixtures("ray_kill_mark")
@on_ray
def test_ray_reports_user_model_failures_and_forwards_worker_logs(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    for how, message in (("raise", "model 'm' failed on a batch of"), ("exit", "model 'm' called sys.exit(3)"),
                         ("die", "died (its Ray worker crashed)")):
        folder = tmp_path / how
        folder.mkdir()
        with pytest.raises(ModelError, match=re.escape(message)):
            run_suite(worker_suite(folder, how), base_dir=folder, executor="ray")
    (tmp_path / "talk").mkdir()
    with caplog.at_level(logging.WARNING, logger="robustinv"):
        run_suite(worker_suite(tmp_path / "talk", "talk"), base_dir=tmp_path / "talk", executor="ray")
    assert any(r.name == "robustinv.test_worker" for r in caplog.records)


@pytest.mark.slow
def test_closing_the_pool_leaves_no_worker_starting_up() -> None:
    """A worker still starting when the pool closed printed a traceback after the driver exited (a SemLock gone)."""
    before = set(multiprocessing.active_children())
    executor = Pool(ExecutorOptions(workers=2))
    executor.start()
    assert executor._pool is not None
    first, second = (executor._pool.submit(os.getpid) for _ in range(2))  # the second may start a second worker
    first.result(timeout=300)
    executor.close()
    assert set(multiprocessing.active_children()) - before == set(), "close() returned before its workers ended"
