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

import numpy as np
import torch

from robustinv.attacks import ATTACKS, AttackConfig, Norm
from robustinv.data import Dataset, load_dataset
from robustinv.errors import RobustinvError
from robustinv.training.prepare import identify_model
from robustinv.paths import cache_dir
from robustinv.records import CellKind, CellResult, ResultRow, RunInfo, RunResult, SampleGrid, TargetCell, rows_digest
from robustinv.run.cells import Prepared
from robustinv.run.executors import EXECUTORS, ExecutorOptions
from robustinv.judge.guard_plan import guard_plan
from robustinv.run.journal import Journal
from robustinv.run.plan import KeyBasis, Plan, build_plan
from robustinv.run.schedule import Outcome, Progress, run_plan
from robustinv.run.setting import RunSetting
from robustinv.runtime import resolve_device, set_threads
from robustinv.judge.sanity import check_rows
from robustinv.store import RunStatus, Store
from robustinv.suite import Suite, suite_key
from robustinv.judge.verdict import ModelOutcomes, verdict_rows
from robustinv.judge.worst_case import Outcome as AttackOutcome

log = logging.getLogger(__name__)


def run_suite(
    suite: Suite, *, base_dir: Path | None = None, store: Store | None = None, out_dir: Path | None = None,
    executor: str | None = None, address: str | None = None, workers: int | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Evaluate every (model, defense) of the suite under every attack and ε, guard them, then judge them.

    `executor` (default: the suite's) is `serial`, `process` (`workers` local processes) or
    `ray` (`address` joins a cluster). Rows come back sanity-checked; guarded models get their
    guard rows; every (model, defense, norm, ε) gets a `worst_case` row over all its attacks, and
    `masking?` flags where found. With a `store`, each finished cell is committed to it, its
    tensors written under `out_dir` (required then), and an earlier run of the same resolved
    suite into the same `out_dir` is resumed under its run_id. Ctrl-C marks the run interrupted
    in the store and propagates; a failed cell fails the run after every other cell is stored.
    """
    if store is not None and out_dir is None:
        raise ValueError("run_suite: a results store needs out_dir, the folder its cell artifacts go to")
    threads = torch.get_num_threads()
    try:
        return _run(suite, base_dir=base_dir, store=store, out_dir=out_dir, executor=executor, address=address,
                    workers=workers, progress=progress)
    finally:
        set_threads(threads)  # serial cells ran here on the suite's threads; leave the caller's as they were


def _run(suite: Suite, *, base_dir: Path | None, store: Store | None, out_dir: Path | None, executor: str | None,
         address: str | None, workers: int | None, progress: Progress | None) -> RunResult:
    started = datetime.now(timezone.utc)
    name = executor or suite.executor
    executor_type = EXECUTORS.get(name)  # an unknown name fails before any data is read
    key = suite_key(suite)
    set_threads(suite.threads)
    device = resolve_device(suite.device.value)
    dataset = load_dataset(suite.dataset.name, suite.dataset.root, download=suite.dataset.download)
    check_eps_fits(suite.attacks, dataset)
    x, y = dataset.eval_subset(suite.dataset.n_eval, suite.seed)
    log.info("dataset %s: %d test images of shape %s, %d classes; attacking %d", dataset.name,
             len(dataset.y_test), dataset.input_shape, dataset.num_classes, len(y))
    cache = suite.cache_dir or cache_dir()
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
    basis = KeyBasis(dataset.fingerprint, len(y), suite.seed, suite.eval_batch_size, str(device), suite.threads,
                     found_versions, suite.explained)
    guard = guard_plan(suite.guard, attacks, [m.defense for _, m in identities], len(y))
    plan = build_plan(suite, identities, attacks, basis, guard)
    runner = executor_type(ExecutorOptions(
        threads=suite.threads, workers=workers, address=address, gpus_per_cell=1.0 if device.type == "cuda" else 0.0,
    ))

    journal = Journal(f"{started:%Y%m%dT%H%M%SZ}-{key[:6]}", started.isoformat(timespec="seconds"))
    if store is not None:
        assert out_dir is not None
        journal.open(store, suite_name=suite.name, suite_key=key, out_dir=out_dir, planned=plan.stored_keys())
    setting = RunSetting(suite, key, journal.run_id, cache, base_dir, suite.threads, dataset.fingerprint)
    try:
        with runner:
            outcome = run_plan(plan, runner, setting, journal, progress)
        if outcome.failures:
            if len(outcome.failures) > 1:
                log.error("%d cells failed or were skipped; the others are stored: rerun to compute only the "
                          "missing ones", len(outcome.failures))
            raise outcome.failures[0].error
        rows, judged, targets, grids = _assemble(plan, outcome)
        explanations = [value.explanation for cell in plan.cells
                        if isinstance(value := outcome.values.get(cell.key), CellResult) and value.explanation is not None]
        rows = check_rows(rows)
        rows = check_rows(verdict_rows(rows, judged, suite.guard))
    except KeyboardInterrupt:
        journal.stop(RunStatus.interrupted)
        raise
    except BaseException:
        journal.stop(RunStatus.failed)
        raise
    journal.stop(RunStatus.finished, results_digest=rows_digest(rows))
    finished = datetime.now(timezone.utc)
    info = RunInfo(
        run_id=journal.run_id, suite=suite.name, seed=suite.seed, device=str(device),
        started=journal.started, finished=finished.isoformat(timespec="seconds"),
        dataset=dataset.name, dataset_fingerprint=dataset.fingerprint, n_eval=len(y), versions=found_versions,
        executor=name, workers=_placement(plan, outcome),
    )
    return RunResult(info, rows, targets, grids, explanations, computed=journal.computed, reused=journal.reused)


def _assemble(plan: Plan, outcome: Outcome) -> tuple[
        list[ResultRow], dict[tuple[str, str], ModelOutcomes], list[TargetCell], list[SampleGrid]]:
    """Rows, per-input outcomes, target cells and grids, model by model in plan order."""
    rows: list[ResultRow] = []
    judged: dict[tuple[str, str], ModelOutcomes] = {}
    targets: list[TargetCell] = []
    grids: list[SampleGrid] = []
    for model in plan.models:
        prepared = next(outcome.values[c.key] for c in plan.of_model(model, CellKind.prepare))
        assert isinstance(prepared, Prepared)
        state = ModelOutcomes(np.asarray(prepared.clean_correct, dtype=bool))
        grids.append(prepared.grid)
        for spec in plan.of_model(model, CellKind.attack, CellKind.guard, CellKind.transfer):
            result = outcome.values[spec.key]
            assert isinstance(result, CellResult)
            row = result.row
            rows.append(row)
            targets.extend(result.targets)
            if result.grid is not None:
                grids.append(result.grid)
            if plan.guard is not None and spec.attack is not None and spec.kind is CellKind.guard \
                    and spec.attack == plan.guard.unbounded:
                state.unbounded_acc[row.norm] = row.robust_acc  # evidence only: ε = 1 is no threat model
                continue
            assert spec.attack is not None
            attack = ATTACKS.get(spec.attack.name)
            transferred = spec.kind is CellKind.transfer  # black-box for this model, whatever crafted it
            state.outcomes[(row.attack, row.eps)] = AttackOutcome(
                row.attack, np.asarray(result.robust, dtype=bool), gradient_free=transferred or attack.gradient_free,
                single_step=not transferred and attack.single_step, iterated=not transferred and attack.iterated)
        judged[(model.name, model.defense)] = state
    return rows, judged, targets, grids


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
