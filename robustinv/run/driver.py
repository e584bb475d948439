"""Run a suite: check everything, plan its cells, run them on an executor, judge the results.

Everything that can fail on bad input (data, models, shapes, ε ranges) is checked before the
first cell runs, so a broken suite fails fast and leaves nothing behind. With a results store
each cell is committed the moment it finishes (by this process only), and running the same
suite into the same output folder again resumes: cells the store holds are loaded, the others
computed. Every cell seeds itself from the suite seed and its own coordinates and runs torch on
the suite's `threads`, so a resumed run, or one on another executor, returns the same rows.
"""

from __future__ import annotations

import logging
import math
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

import torch

from robustinv.attacks import ATTACKS, AttackConfig, Norm
from robustinv.data import Dataset
from robustinv.errors import RobustinvError
from robustinv.training.prepare import identify_model
from robustinv.paths import cache_dir
from robustinv.judge.guard_plan import guard_plan
from robustinv.judge.judgement import Judgement, judge
from robustinv.measures import schema
from robustinv.records import RunInfo, RunResult, rows_digest
from robustinv.run import setting as workspace
from robustinv.run.assemble import assemble
from robustinv.run.executors import EXECUTORS, Executor, ExecutorOptions
from robustinv.run.journal import Journal
from robustinv.run.plan import KeyBasis, Plan, build_plan
from robustinv.run.schedule import Outcome, Progress, run_plan
from robustinv.run.setting import RunSetting
from robustinv.runtime import resolve_device, set_threads
from robustinv.store import RunStatus, Store
from robustinv.suite import Suite, suite_key

log = logging.getLogger(__name__)


class Sequential(Protocol):
    """A sequential gate as the run sees it: how many inputs per look, and whether a look decided the gate."""

    batch: int

    def decided(self, look: Judgement) -> bool:
        """Whether the evidence so far decides every rule it can; the run then stops attacking."""


def run_suite(
    suite: Suite, *, base_dir: Path | None = None, store: Store | None = None, out_dir: Path | None = None,
    executor: str | None = None, address: str | None = None, workers: int | None = None,
    progress: Progress | None = None, sequential: Sequential | None = None,
) -> RunResult:
    """Evaluate every (model, defense) of the suite under every attack and ε, guard them, then judge them.

    `executor` (default: the suite's) is `serial`, `process` (`workers` local processes) or
    `ray` (`address` joins a cluster). Rows come back sanity-checked; guarded models get their
    guard rows; every (model, defense, norm, ε) gets a `worst_case` row over all its attacks, and
    `masking?` flags where found. With a `store`, each finished cell is committed to it, its
    tensors written under `out_dir` (required then), and an earlier run of the same resolved
    suite into the same `out_dir` is resumed under its run_id. Ctrl-C marks the run interrupted
    in the store and propagates; a failed cell fails the run after every other cell is stored.

    With `sequential`, the eval inputs are taken in their seeded order and attacked `batch` at a
    time; after each batch the gate looks at the rows so far and the run stops once it is decided.
    """
    if store is not None and out_dir is None:
        raise ValueError("run_suite: a results store needs out_dir, the folder its cell artifacts go to")
    threads = torch.get_num_threads()
    try:
        return _run(suite, base_dir=base_dir, store=store, out_dir=out_dir, executor=executor, address=address,
                    workers=workers, progress=progress or Progress(), sequential=sequential)
    finally:
        set_threads(threads)  # serial cells ran here on the suite's threads; leave the caller's as they were


def _run(suite: Suite, *, base_dir: Path | None, store: Store | None, out_dir: Path | None, executor: str | None,
         address: str | None, workers: int | None, progress: Progress, sequential: Sequential | None) -> RunResult:
    started = datetime.now(timezone.utc)
    name = executor or suite.executor
    executor_type = EXECUTORS.get(name)  # an unknown name fails before any data is read
    executor_type.preflight(workers)  # so do absurd --workers and a missing Ray
    key = suite_key(suite)
    set_threads(suite.threads)
    device = resolve_device(suite.device.value)
    cache = suite.cache_dir or cache_dir()  # a cache that cannot be one is refused before the data is read
    dataset = suite.dataset.load()
    check_eps_fits(suite.attacks, dataset)
    n_eval = len(dataset.y_test) if suite.dataset.n_eval is None else min(suite.dataset.n_eval, len(dataset.y_test))
    log.info("dataset %s: %d test images of shape %s, %d classes; attacking %d", dataset.name,
             len(dataset.y_test), dataset.input_shape, dataset.num_classes, n_eval)
    identities = [
        (entry, identify_model(spec, dataset, seed=suite.seed, device=device, cache_dir=cache, base_dir=base_dir,
                               defense=defense))
        for entry, spec in enumerate(suite.models) for defense in spec.defenses
    ]
    attacks = [ATTACKS.get(config.name)(config) for config in suite.attacks]
    for _, identity in identities:
        for attack in attacks:
            attack.validate(identity.module, dataset.input_shape, model_name=identity.label)
    found_versions = versions()
    basis = KeyBasis(dataset.fingerprint, n_eval, suite.seed, suite.eval_batch_size, str(device), suite.threads,
                     found_versions, shuffled=sequential is not None)
    guard = guard_plan(suite.guard, attacks, [m.defense for _, m in identities], n_eval)
    plan = build_plan(suite, identities, attacks, basis, guard, batch=sequential.batch if sequential else None)
    if sequential is not None and suite.explained:
        log.info("sequential run: attention is not measured (it is measured on whole attacks only)")
    runner = executor_type(ExecutorOptions(
        threads=suite.threads, workers=workers, address=address, gpus_per_cell=1.0 if device.type == "cuda" else 0.0,
    ))

    journal = Journal(f"{started:%Y%m%dT%H%M%SZ}-{key[:6]}", started.isoformat(timespec="seconds"))
    if store is not None:
        assert out_dir is not None
        journal.open(store, suite_name=suite.name, suite_key=key, out_dir=out_dir, planned=plan.stored_keys())
    setting = RunSetting(suite, key, journal.run_id, cache, base_dir, suite.threads, dataset.fingerprint,
                         shuffled=sequential is not None)
    workspace.adopt(setting, dataset, identities)
    try:
        outcome = _looks(plan, runner, setting, journal, progress, sequential, suite)
        assembled = assemble(plan, outcome.values, outcome.models)
        rows = judge(assembled.rows, assembled.judged, suite.guard).rows
    except KeyboardInterrupt:
        journal.stop(RunStatus.interrupted)
        raise
    except BaseException:
        journal.stop(RunStatus.failed)
        raise
    finally:
        workspace.release(setting)
    journal.stop(RunStatus.finished, results_digest=rows_digest(rows))
    finished = datetime.now(timezone.utc)
    info = RunInfo(
        run_id=journal.run_id, suite=suite.name, seed=suite.seed, device=str(device),
        started=journal.started, finished=finished.isoformat(timespec="seconds"),
        dataset=dataset.name, dataset_fingerprint=dataset.fingerprint, n_eval=n_eval, versions=found_versions,
        executor=name, workers=_placement(plan, outcome),
    )
    return RunResult(info, rows, assembled.targets, assembled.grids, assembled.explanations,
                     computed=journal.computed, reused=journal.reused, columns=schema())


def _looks(plan: Plan, runner: Executor, setting: RunSetting, journal: Journal, progress: Progress,
           sequential: Sequential | None, suite: Suite) -> Outcome:
    """Run the plan one look (batch of inputs) after another until the sequential gate is decided, or to the end."""
    progress.on_start(len(plan.cells))
    outcome = Outcome()
    with runner:
        for look in range(plan.batches):
            run_plan(plan.up_to(look), runner, setting, journal, progress, outcome)
            if outcome.failures:
                if len(outcome.failures) > 1:
                    log.error("%d cells failed or were skipped; the others are stored: rerun to compute only the "
                              "missing ones", len(outcome.failures))
                raise outcome.failures[0].error
            if sequential is not None and look + 1 < plan.batches and sequential.decided(_judged(plan, outcome, suite)):
                log.info("sequential gate decided after %d of %d looks", look + 1, plan.batches)
                break
    return outcome


def _judged(plan: Plan, outcome: Outcome, suite: Suite) -> Judgement:
    assembled = assemble(plan, outcome.values, outcome.models)
    return judge(assembled.rows, assembled.judged, suite.guard)


def _placement(plan: Plan, outcome: Outcome) -> dict[str, list[str]]:
    """Which worker computed which cells (cells loaded from the store are not listed)."""
    placed: dict[str, list[str]] = {}
    for spec in plan.cells:
        worker = outcome.workers.get(spec.key)
        if worker is not None:
            placed.setdefault(worker, []).append(spec.describe())
    return placed


def check_eps_fits(attacks: list[AttackConfig], dataset: Dataset) -> None:
    """Reject an ε larger than the largest possible perturbation of [0, 1] images in its norm."""
    c, h, w = dataset.input_shape
    largest = {Norm.linf: 1.0, Norm.l2: math.sqrt(c * h * w)}
    for config in attacks:
        limit = largest[config.norm]
        too_big = [e for e in config.eps if e > limit]
        if too_big:
            raise RobustinvError(
                f"attack {config.display_name!r}: ε={too_big[0]:g} exceeds the largest {config.norm.value} "
                f"distance between [0, 1] images of shape {dataset.input_shape} ({limit:.4g})"
            )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("robustinv", "torch", "torchvision", "adversarial-robustness-toolbox", "pyautoattack", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found
