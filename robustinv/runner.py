"""Run a suite: load the data, prepare every model, attack every (model, attack, ε) cell, guard the results.

Everything that can fail on bad input (data, models, shapes, ε ranges) is checked before the
first attack runs, so a broken suite fails fast and leaves nothing behind.

With a results store (`robustinv.store`) each cell is committed the moment it finishes, and
running the same suite into the same output folder again resumes: cells the store holds are
loaded, the others computed. Every cell seeds itself from the suite seed and its own
coordinates, so a resumed run returns the rows an uninterrupted one would (timing aside).
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from robustinv import metrics
from robustinv.attacks import ATTACKS, Attack, AttackConfig, AttackContext, Norm
from robustinv.attacks.pgd import Pgd, PgdConfig
from robustinv.checkpoints import content_key
from robustinv.data import Dataset, load_dataset
from robustinv.errors import ModelError, RobustinvError
from robustinv.guard import UNBOUNDED_EPS
from robustinv.models import PreparedModel, prepare_models
from robustinv.models.features import logits_and_features
from robustinv.paths import cache_dir
from robustinv.records import CLEAN, GUARD_SUFFIXES, ResultRow, RunInfo, RunResult, SampleGrid, TargetCell, rows_digest
from robustinv.runtime import derive_seed, model_device, predict_logits, resolve_device
from robustinv.sanity import Flag, check_rows
from robustinv.store import CellKind, CellResult, ModelRecord, RunStatus, Store
from robustinv.suite import Suite, dump_suite
from robustinv.verdict import ModelOutcomes, verdict_rows
from robustinv.worst_case import Outcome

log = logging.getLogger(__name__)

GUARD, TRANSFER, UNBOUNDED = GUARD_SUFFIXES
SAMPLE_INPUTS = 8  # inputs shown per sample grid (the first of the eval set, the same for every grid)
SAMPLE_DRAWS = 8  # candidates shown per input for attacks that make several


def run_suite(
    suite: Suite, *, base_dir: Path | None = None, store: Store | None = None, out_dir: Path | None = None
) -> RunResult:
    """Evaluate every (model, defense) of the suite under every attack and ε, guard them, then judge them.

    Rows come back sanity-checked; guarded models get their guard rows; every (model, defense,
    norm, ε) gets a `worst_case` row over all its attacks, and `masking?` flags where found.
    With a `store`, each finished cell is committed to it, its tensors written under `out_dir`
    (required then), and an earlier run of the same resolved suite into the same `out_dir` is
    resumed under its run_id. Ctrl-C marks the run interrupted in the store and propagates.
    """
    if store is not None and out_dir is None:
        raise ValueError("run_suite: a results store needs out_dir, the folder its cell artifacts go to")
    started = datetime.now(timezone.utc)
    suite_key = content_key({"suite": dump_suite(suite)})
    device = resolve_device(suite.device.value)
    dataset = load_dataset(suite.dataset.name, suite.dataset.root, download=suite.dataset.download)
    check_eps_fits(suite.attacks, dataset)
    x, y = dataset.eval_subset(suite.dataset.n_eval, suite.seed)
    log.info("dataset %s: %d test images of shape %s, %d classes; attacking %d", dataset.name,
             len(dataset.y_test), dataset.input_shape, dataset.num_classes, len(y))
    cache = suite.cache_dir or cache_dir()
    models = [
        model
        for spec in suite.models
        for model in prepare_models(spec, dataset, seed=suite.seed, device=device, cache_dir=cache, base_dir=base_dir)
    ]
    attacks = [ATTACKS.get(config.name)(config) for config in suite.attacks]
    for model in models:
        for attack in attacks:
            attack.validate(model.module, dataset.input_shape, model_name=model.name)

    journal = _Journal(f"{started:%Y%m%dT%H%M%SZ}-{suite_key[:6]}", started.isoformat(timespec="seconds"))
    found_versions = versions()
    guard = _guard_plan(suite, models, attacks, len(y))
    cells = _CellRunner(journal, suite, dataset, x, y, cache, device, found_versions, guard)
    if store is not None:
        assert out_dir is not None
        models = journal.open(store, suite_name=suite.name, suite_key=suite_key, out_dir=out_dir, models=models,
                              planned=cells.plan(models, attacks))
    try:
        evaluated = [_evaluate(cells, model, attacks) for model in models]
        for state in evaluated:
            guard_cells(cells, state, evaluated)
        rows = check_rows(row for state in evaluated for row in state.rows)
        outcomes = {(state.model.name, state.model.defense): state.outcomes for state in evaluated}
        rows = check_rows(verdict_rows(rows, outcomes, suite.guard))
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
    )
    targets = [cell for state in evaluated for cell in state.targets]
    grids = [grid for state in evaluated for grid in state.grids]
    return RunResult(info, rows, targets, grids, computed=journal.computed, reused=journal.reused)


@torch.no_grad()
def sample_grid(model: PreparedModel, attack: str, eps: float, samples: torch.Tensor, y: torch.Tensor) -> SampleGrid:
    """What the model says about a few example images, (draws, inputs, C, H, W), for the report."""
    draws, n = samples.shape[:2]
    probabilities = predict_logits(model.module, samples.flatten(0, 1)).softmax(1).view(draws, n, -1)
    confidence, prediction = probabilities.max(2)
    return SampleGrid(
        model=model.name, defense=model.defense, attack=attack, eps=eps,
        true_labels=tuple(int(v) for v in y[:n]),
        predictions=tuple(tuple(int(v) for v in draw) for draw in prediction),
        confidences=tuple(tuple(round(float(v), 6) for v in draw) for draw in confidence),
        images=(samples.clamp(0, 1) * 255).round().to(torch.uint8),
    )


@dataclass
class _Journal:
    """Which cells of this run are done: a stored cell is loaded, any other computed and committed.

    Without a store every cell is computed and nothing is kept.
    """

    run_id: str
    started: str
    store: Store | None = None
    done: frozenset[str] = frozenset()
    computed: int = 0
    reused: int = 0

    def open(self, store: Store, *, suite_name: str, suite_key: str, out_dir: Path, models: list[PreparedModel],
             planned: list[str]) -> list[PreparedModel]:
        """Record the run in the store, or resume its earlier attempt; returns the models as the run first got them."""
        run, resumed = store.open_run(run_id=self.run_id, suite=suite_name, suite_key=suite_key, out_dir=out_dir,
                                      started=self.started)
        self.store, self.run_id, self.started = store, run.run_id, run.started
        self.done = store.finished_cells(run.run_id) & frozenset(planned)
        if resumed:
            log.info("resuming run %s: %d of %d cells already done", run.run_id, len(self.done), len(set(planned)))
        return [_as_first_recorded(store, run.run_id, model) for model in models]

    def cell(self, key: str, kind: CellKind, compute: Callable[[], CellResult]) -> CellResult:
        """The stored result of cell `key` if this run finished it before, else `compute()`, committed."""
        if self.store is not None and key in self.done:
            stored = self.store.load_cell(self.run_id, key)
            if stored is not None:
                log.debug("cell %s (%s %s ε=%g): loaded from the store", key, stored.row.model, stored.row.attack,
                          stored.row.eps)
                self.reused += 1
                return stored
        result = compute()
        if self.store is not None:
            self.store.commit_cell(self.run_id, key, kind, result)
        self.computed += 1
        return result

    def stop(self, status: RunStatus, *, results_digest: str | None = None) -> None:
        """Record how the run ended (and the digest of its rows); committed cells stay for a resume."""
        if self.store is None:
            return
        self.store.finish_run(self.run_id, status, results_digest=results_digest)
        if status is not RunStatus.finished:
            log.warning("run %s %s with %d cells stored in %s; run the same suite into the same folder to resume",
                        self.run_id, status.value, len(self.store.finished_cells(self.run_id)), self.store.path)


def _as_first_recorded(store: Store, run_id: str, model: PreparedModel) -> PreparedModel:
    """The model with the provenance (trained or cached, training time) of the run's first attempt."""
    recorded = store.record_model(
        run_id, ModelRecord(model.name, model.defense, model.fingerprint, model.source, model.train_seconds)
    )
    return replace(model, source=recorded.source, train_seconds=recorded.train_seconds)


@dataclass(frozen=True)
class _GuardPlan:
    """What the guard attacks: the suite's Linf PGD at its largest ε, again stronger, and at ε = 1."""

    suite_pgd: PgdConfig
    eps: float
    strong: Pgd | None  # None when the suite runs a step-size-free APGD at `eps`, which replaces it
    unbounded: Pgd
    n: int  # the first n inputs


def _guard_plan(suite: Suite, models: list[PreparedModel], attacks: list[Attack], n_eval: int) -> _GuardPlan | None:
    """None when no model is guarded or the suite has no Linf PGD to check."""
    config = suite.guard
    pgds = [a for a in suite.attacks if isinstance(a, PgdConfig) and a.norm is Norm.linf]
    if not pgds or not any(config.applies_to(model.defense) for model in models):
        return None
    suite_pgd = max(pgds, key=lambda a: max(a.eps))  # the first of them with the largest ε
    eps = max(suite_pgd.eps)
    replaced = any(a.step_size_free and a.config.norm is Norm.linf and eps in a.config.eps for a in attacks)
    strong = None if replaced else Pgd(suite_pgd.model_copy(update={
        "eps": [eps], "label": f"{suite_pgd.display_name}{GUARD}", "steps": suite_pgd.steps * config.steps_factor,
        "restarts": config.restarts, "random_start": True, "n": None,
    }))
    unbounded = Pgd(PgdConfig(eps=[UNBOUNDED_EPS], label=f"{suite_pgd.display_name}{UNBOUNDED}", steps=20,
                              step_size=0.1, batch_size=suite_pgd.batch_size))
    return _GuardPlan(suite_pgd, eps, strong, unbounded, min(config.n, n_eval))


@dataclass
class _Evaluated:
    """A prepared model with its clean predictions and features, and what its cells produced."""

    model: PreparedModel
    clean_pred: torch.Tensor
    clean_features: torch.Tensor | None
    outcomes: ModelOutcomes
    rows: list[ResultRow] = field(default_factory=list)
    targets: list[TargetCell] = field(default_factory=list)
    grids: list[SampleGrid] = field(default_factory=list)
    reference_adv: torch.Tensor | None = None  # adversarial examples of the PGD cell the transfer check replays

    def add(self, result: CellResult, *, gradient_free: bool = False) -> None:
        """Keep a finished cell's row and per-input outcome."""
        row = result.row
        self.rows.append(row)
        self.outcomes.outcomes[(row.attack, row.eps)] = Outcome(row.attack, result.robust, gradient_free)


def _evaluate(cells: _CellRunner, model: PreparedModel, attacks: list[Attack]) -> _Evaluated:
    """Clean predictions of one model, then every suite attack at every ε."""
    clean_pred, clean_features = _logits_features(model, cells.x, cells.suite.eval_batch_size)
    state = _Evaluated(model, clean_pred.argmax(1), clean_features, ModelOutcomes(clean_pred.argmax(1) == cells.y))
    state.grids.append(sample_grid(model, CLEAN, 0.0, cells.x[None, :SAMPLE_INPUTS], cells.y))
    log.info("model %s: clean accuracy %.2f%%", model.label, 100 * metrics.accuracy(state.clean_pred, cells.y))
    for attack in attacks:
        for eps in attack.config.eps:
            result = cells.attack(state, attack, eps)
            state.add(result, gradient_free=attack.gradient_free)
            state.targets.extend(result.targets)
            if result.grid is not None:
                state.grids.append(result.grid)
            if result.x_adv is not None:
                state.reference_adv = result.x_adv
    return state


@dataclass(frozen=True)
class _CellRunner:
    """Runs the cells of a suite — an attack at one ε on one model, or a guard row — each into a row.

    Every cell goes through the journal, which hands back a stored result when it has one. A
    cell's key hashes everything that determines its result.
    """

    journal: _Journal
    suite: Suite
    dataset: Dataset
    x: torch.Tensor
    y: torch.Tensor
    cache: Path
    device: torch.device
    versions: dict[str, str]
    guard: _GuardPlan | None

    def plan(self, models: list[PreparedModel], attacks: list[Attack]) -> list[str]:
        """The keys of every cell the run will produce."""
        keys = [self._attack_key(m, a.config, eps) for m in models for a in attacks for eps in a.config.eps]
        if self.guard is None:
            return keys
        for model in models:
            if self.suite.guard.applies_to(model.defense):
                keys.append(self._guard_key(model, self.guard.unbounded))
                if self.guard.strong is not None:
                    keys.append(self._guard_key(model, self.guard.strong))
                surrogate = _surrogate(model, models) if self.suite.guard.transfer else None
                if surrogate is not None:
                    keys.append(self._transfer_key(model, surrogate))
        return keys

    def attack(self, state: _Evaluated, attack: Attack, eps: float) -> CellResult:
        """A suite attack at one ε; a grid at its largest ε, the worst cases when the guard checks them."""
        config = attack.config
        keep = self.guard is not None and (config.display_name, eps) == (self.guard.suite_pgd.display_name,
                                                                         self.guard.eps)
        return self.journal.cell(
            self._attack_key(state.model, config, eps), CellKind.attack,
            lambda: self._run(state, attack, eps, grid=eps == max(config.eps), keep_adv=keep),
        )

    def guard_attack(self, state: _Evaluated, attack: Pgd) -> CellResult:
        """One of the guard's PGDs (stronger, or unbounded) on the first inputs."""
        guard = self.guard
        assert guard is not None
        eps = attack.config.eps[0]
        return self.journal.cell(self._guard_key(state.model, attack), CellKind.guard,
                                 lambda: self._run(state, attack, eps, n=guard.n))

    def transfer(self, state: _Evaluated, surrogate: _Evaluated, reference: ResultRow) -> CellResult:
        """The surrogate's worst cases of the reference PGD, replayed against this model."""
        def compute() -> CellResult:
            assert surrogate.reference_adv is not None
            config = {**reference.config, "name": "transfer", "surrogate": surrogate.model.label}
            row, robust = self.row(state, f"{reference.attack}{TRANSFER}", config, reference.eps,
                                   surrogate.reference_adv)
            return CellResult(row, robust)

        return self.journal.cell(self._transfer_key(state.model, surrogate.model), CellKind.transfer, compute)

    def _key(self, kind: CellKind, model: PreparedModel, **cell: Any) -> str:
        return content_key({
            "kind": kind.value, "dataset": self.dataset.fingerprint, "n_eval": len(self.y), "seed": self.suite.seed,
            "eval_batch_size": self.suite.eval_batch_size, "device": str(self.device), "versions": self.versions,
            "model": model.label, "model_fingerprint": model.fingerprint, **cell,
        })

    def _attack_key(self, model: PreparedModel, config: AttackConfig, eps: float, *, n: int | None = None,
                    kind: CellKind = CellKind.attack) -> str:
        label = config.display_name
        return self._key(kind, model, attack=label, config=config.row_config(eps, self._seed(model, label, eps)), n=n)

    def _guard_key(self, model: PreparedModel, attack: Pgd) -> str:
        assert self.guard is not None
        return self._attack_key(model, attack.config, attack.config.eps[0], n=self.guard.n, kind=CellKind.guard)

    def _transfer_key(self, model: PreparedModel, surrogate: PreparedModel) -> str:
        assert self.guard is not None
        return self._key(CellKind.transfer, model,
                         crafted=self._attack_key(surrogate, self.guard.suite_pgd, self.guard.eps))

    def _seed(self, model: PreparedModel, label: str, eps: float) -> int:
        return derive_seed(self.suite.seed, model.name, model.defense, label, eps)

    def _run(self, state: _Evaluated, attack: Attack, eps: float, *, n: int | None = None, grid: bool = False,
             keep_adv: bool = False) -> CellResult:
        """Attack the first `n` inputs (the attack's own `n`, else all) and measure the outcome."""
        model, config = state.model, attack.config
        n = n if n is not None else config.n
        label = config.display_name
        seed = self._seed(model, label, eps)
        context = AttackContext(
            x_train=self.dataset.x_train, y_train=self.dataset.y_train, num_classes=self.dataset.num_classes,
            model_name=model.label, model_fingerprint=model.fingerprint,
            dataset_fingerprint=self.dataset.fingerprint, cache_dir=self.cache,
        )
        x, y = self.x[:n], self.y[:n]
        output = attack.run(model.module, x, y, eps, seed=seed, context=context)
        k = output.samples.shape[0]
        sample_pred, sample_features = _candidates_view(model, output.samples, self.suite.eval_batch_size)
        row_config = config.row_config(eps, seed)
        if output.diagnostics:
            row_config["diagnostics"] = output.diagnostics
        row, robust = self.row(
            state, label, row_config, eps, output.x_adv, n=n, seconds=output.seconds,
            train_seconds=output.train_seconds, samples_per_input=k,
            candidate_success=metrics.candidate_success(state.clean_pred[:n], sample_pred, y),
            diversity_cos=metrics.pairwise_cosine(sample_features) if sample_features is not None else math.nan,
            diversity_l2=metrics.pairwise_l2(output.samples),
            target_success=metrics.target_success(sample_pred, output.targets)
            if output.targets is not None else math.nan,
        )
        targets = _target_cells(row, y, sample_pred, output.targets, self.dataset.num_classes)
        samples = output.samples[:SAMPLE_DRAWS, :SAMPLE_INPUTS]
        return CellResult(
            row, robust, tuple(targets), sample_grid(model, label, eps, samples, self.y) if grid else None,
            output.x_adv if keep_adv else None,
        )

    def row(self, state: _Evaluated, label: str, config: dict[str, Any], eps: float, x_adv: torch.Tensor, *,
            n: int | None = None, seconds: float = 0.0, **extra: Any) -> tuple[ResultRow, torch.Tensor]:
        """The result row of adversarial examples for the first `n` inputs, and which of them stayed correct."""
        model = state.model
        x, y, clean_pred = self.x[:n], self.y[:n], state.clean_pred[:n]
        adv_logits, adv_features = _logits_features(model, x_adv, self.suite.eval_batch_size)
        adv_pred = adv_logits.argmax(1)
        linf, l2 = metrics.linf_norms(x, x_adv), metrics.l2_norms(x, x_adv)
        consistency = (
            metrics.feature_consistency(state.clean_features[:n], adv_features)
            if state.clean_features is not None and adv_features is not None else math.nan
        )
        defaults: dict[str, Any] = {
            "train_seconds": 0.0, "samples_per_input": 1, "candidate_success": metrics.success_rate(clean_pred, adv_pred, y),
            "diversity_cos": math.nan, "diversity_l2": math.nan, "target_success": math.nan,
        }
        row = ResultRow(
            run_id=self.journal.run_id, dataset=self.dataset.name, model=model.name, defense=model.defense,
            attack=label, norm=str(config.get("norm", "linf")), eps=eps, n=len(y),
            clean_acc=metrics.accuracy(clean_pred, y),
            robust_acc=metrics.robust_accuracy(clean_pred, adv_pred, y),
            success_rate=metrics.success_rate(clean_pred, adv_pred, y),
            mean_linf=float(linf.mean()), max_linf=float(linf.max()),
            mean_l2=float(l2.mean()), max_l2=float(l2.max()),
            seconds=seconds,
            samples_per_s=extra.get("samples_per_input", 1) * len(y) / seconds if seconds > 0 else math.inf,
            feature_consistency=consistency, flags=(Flag.randomized.value,) if model.randomized else (), config=config,
            seed=int(config.get("seed", 0)),
            model_fingerprint=model.fingerprint, dataset_fingerprint=self.dataset.fingerprint,
            model_source=model.source, model_train_seconds=model.train_seconds,
            **{**defaults, **extra},
        )
        log.info("model %s | %s ε=%g: robust %.2f%%, success %.2f%%, feature consistency %.3f (%.1fs)", model.label,
                 row.attack, eps, 100 * row.robust_acc, 100 * row.success_rate, row.feature_consistency, row.seconds)
        return row, (clean_pred == y) & (adv_pred == y)


def guard_cells(cells: _CellRunner, state: _Evaluated, everyone: list[_Evaluated]) -> None:
    """The guard's own attacks on a guarded model: the stronger PGD, the transfer attack, the unbounded PGD.

    Their rows join the model's; the first two also join its worst case, the unbounded one is
    evidence only (ε = 1 is no threat model).
    """
    config, guard = cells.suite.guard, cells.guard
    if not config.applies_to(state.model.defense):
        return
    if guard is None:
        log.warning("guard: model %s has no Linf PGD rows to check; skipped", state.model.label)
        return
    if guard.strong is not None:
        state.add(cells.guard_attack(state, guard.strong))
    surrogate = _surrogate(state.model, [e.model for e in everyone]) if config.transfer else None
    if surrogate is not None:
        reference = next(r for r in state.rows if r.attack == guard.suite_pgd.display_name and r.eps == guard.eps)
        source = next(e for e in everyone if e.model is surrogate)
        state.add(cells.transfer(state, source, reference), gradient_free=True)
    unbounded = cells.guard_attack(state, guard.unbounded).row
    state.rows.append(unbounded)
    state.outcomes.unbounded_acc[unbounded.norm] = unbounded.robust_acc


def _surrogate(model: PreparedModel, models: list[PreparedModel]) -> PreparedModel | None:
    """Where transfer examples come from: the entry's own standard model, else the first other standard one."""
    standard = [m for m in models if m is not model and m.defense == "standard"]
    same_entry = [m for m in standard if m.name == model.name]
    candidates = same_entry or standard
    return candidates[0] if candidates else None


@torch.no_grad()
def _logits_features(model: PreparedModel, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits and penultimate features of `x`; features are None for models that expose none."""
    try:
        forward = logits_and_features(model.module, model.name)
    except ModelError:
        return predict_logits(model.module, x, batch_size=batch_size), None
    device = model_device(model.module)
    logits, features = zip(*(tuple(t.float().cpu() for t in forward(b.to(device))) for b in x.split(batch_size)))
    out = torch.cat(logits)
    if not torch.isfinite(out).all():
        raise ModelError("the model returned NaN or infinite logits")
    return out, torch.cat(features)


@torch.no_grad()
def _candidates_view(
    model: PreparedModel, samples: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predictions (k, N) for every candidate, and their penultimate features (k, N, d) when k > 1."""
    k, n = samples.shape[:2]
    flat = samples.flatten(0, 1)
    if k == 1:
        return predict_logits(model.module, flat, batch_size=batch_size).argmax(1).view(k, n), None
    try:
        forward = logits_and_features(model.module, model.name)
    except ModelError:  # diversity needs features; models without them still get every other number
        return predict_logits(model.module, flat, batch_size=batch_size).argmax(1).view(k, n), None
    device = model_device(model.module)
    logits, features = zip(*(tuple(t.cpu() for t in forward(b.to(device))) for b in flat.split(batch_size)))
    return torch.cat(logits).argmax(1).view(k, n), torch.cat(features).view(k, n, -1)


def _target_cells(
    row: ResultRow, y: torch.Tensor, pred: torch.Tensor, targets: torch.Tensor | None, num_classes: int
) -> list[TargetCell]:
    if targets is None:
        return []
    counts, rates = metrics.target_matrix(y, pred, targets, num_classes)
    return [
        TargetCell(row.model, row.defense, row.attack, row.eps, true, target, int(counts[true, target]), float(rates[true, target]))
        for true in range(num_classes) for target in range(num_classes) if counts[true, target] > 0
    ]


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
