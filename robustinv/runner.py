"""Run a suite: load the data, prepare every model, attack every (model, attack, ε) cell.

Everything that can fail on bad input (data, models, shapes, ε ranges) is checked before the
first attack runs, so a broken suite fails fast and leaves nothing behind.
"""

from __future__ import annotations

import logging
import math
import platform
from dataclasses import asdict, dataclass, field, replace
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
from robustinv.models import PreparedModel, prepare_models
from robustinv.paths import cache_dir
from robustinv.models.features import logits_and_features
from robustinv.guard import GuardConfig, GuardEvidence, masking_findings
from robustinv.records import ResultRow, SampleGrid, TargetCell
from robustinv.runtime import derive_seed, model_device, predict_logits, resolve_device
from robustinv.sanity import Flag, check_rows
from robustinv.suite import Suite, dump_suite

log = logging.getLogger(__name__)

SAMPLE_INPUTS = 8  # inputs shown per sample grid (the first of the eval set, the same for every grid)
SAMPLE_DRAWS = 8  # candidates shown per input for attacks that make several


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run and the environment it ran in."""

    run_id: str
    suite: str
    seed: int
    device: str
    started: str
    finished: str
    dataset: str
    dataset_fingerprint: str
    n_eval: int
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    info: RunInfo
    rows: list[ResultRow]
    targets: list[TargetCell] = field(default_factory=list)
    grids: list[SampleGrid] = field(default_factory=list)


@dataclass
class _Evaluated:
    """A prepared model with its clean predictions and features, and the adversarial inputs of its cells."""

    model: PreparedModel
    clean_pred: torch.Tensor
    clean_features: torch.Tensor | None
    x_adv: dict[tuple[str, float], torch.Tensor] = field(default_factory=dict)  # (attack, ε) → worst case
    rows: list[ResultRow] = field(default_factory=list)
    grids: list[SampleGrid] = field(default_factory=list)


def run_suite(suite: Suite, *, base_dir: Path | None = None) -> RunResult:
    """Evaluate every (model, defense) of the suite under every attack and ε, then guard them.

    Rows come back sanity-checked; guarded models get their guard rows and `masking?` flags.
    """
    started = datetime.now(timezone.utc)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{content_key({'suite': dump_suite(suite)})[:6]}"
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

    cell = _CellRunner(run_id, suite, dataset, x, y, cache)
    evaluated, targets = [], []
    for model in models:
        clean_pred, clean_features = _logits_features(model, x, suite.eval_batch_size)
        state = _Evaluated(model, clean_pred.argmax(1), clean_features)
        state.grids.append(sample_grid(model, "clean", 0.0, x[None, :SAMPLE_INPUTS], y))
        log.info("model %s: clean accuracy %.2f%%", model.label, 100 * metrics.accuracy(state.clean_pred, y))
        for attack in attacks:
            for eps in attack.config.eps:
                outcome = cell.attack(state, attack, eps)
                state.rows.append(outcome.row)
                state.x_adv[(outcome.row.attack, eps)] = outcome.x_adv
                targets.extend(outcome.targets)
                if eps == max(attack.config.eps):
                    samples = outcome.samples[:SAMPLE_DRAWS, :SAMPLE_INPUTS]
                    state.grids.append(sample_grid(model, outcome.row.attack, eps, samples, y))
        evaluated.append(state)
    rows = [row for state in evaluated for row in guarded_rows(cell, state, evaluated, suite.guard)]
    finished = datetime.now(timezone.utc)
    info = RunInfo(
        run_id=run_id, suite=suite.name, seed=suite.seed, device=str(device),
        started=started.isoformat(timespec="seconds"), finished=finished.isoformat(timespec="seconds"),
        dataset=dataset.name, dataset_fingerprint=dataset.fingerprint, n_eval=len(y), versions=versions(),
    )
    grids = [grid for state in evaluated for grid in state.grids]
    return RunResult(info, check_rows(rows), targets, grids)


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


@dataclass(frozen=True)
class _CellOutcome:
    row: ResultRow
    targets: list[TargetCell]
    x_adv: torch.Tensor  # the worst case per input
    samples: torch.Tensor  # every candidate, (k, N, C, H, W)


@dataclass(frozen=True)
class _CellRunner:
    """Runs one attack at one ε on one model and turns the outcome into a row."""

    run_id: str
    suite: Suite
    dataset: Dataset
    x: torch.Tensor
    y: torch.Tensor
    cache: Path

    def attack(self, state: _Evaluated, attack: Attack, eps: float, *, n: int | None = None,
               label: str | None = None) -> _CellOutcome:
        """Attack the first `n` inputs (all by default): the row, target cells, worst cases and candidates."""
        model, config = state.model, attack.config
        label = label or config.display_name
        seed = derive_seed(self.suite.seed, model.name, model.defense, label, eps)
        context = AttackContext(
            x_train=self.dataset.x_train, y_train=self.dataset.y_train, num_classes=self.dataset.num_classes,
            model_name=model.label, model_fingerprint=model.fingerprint,
            dataset_fingerprint=self.dataset.fingerprint, cache_dir=self.cache,
        )
        x, y = self.x[:n], self.y[:n]
        output = attack.run(model.module, x, y, eps, seed=seed, context=context)
        k = output.samples.shape[0]
        sample_pred, sample_features = _candidates_view(model, output.samples, self.suite.eval_batch_size)
        row = self.row(
            state, label, config.row_config(eps, seed), eps, output.x_adv, n=n, seconds=output.seconds,
            train_seconds=output.train_seconds, samples_per_input=k,
            candidate_success=metrics.candidate_success(state.clean_pred[:n], sample_pred, y),
            diversity_cos=metrics.pairwise_cosine(sample_features) if sample_features is not None else math.nan,
            diversity_l2=metrics.pairwise_l2(output.samples),
            target_success=metrics.target_success(sample_pred, output.targets)
            if output.targets is not None else math.nan,
        )
        cells = _target_cells(row, y, sample_pred, output.targets, self.dataset.num_classes)
        return _CellOutcome(row, cells, output.x_adv, output.samples)

    def row(self, state: _Evaluated, label: str, config: dict[str, Any], eps: float, x_adv: torch.Tensor, *,
            n: int | None = None, seconds: float = 0.0, **extra: Any) -> ResultRow:
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
            run_id=self.run_id, dataset=self.dataset.name, model=model.name, defense=model.defense, attack=label,
            norm=str(config.get("norm", "linf")), eps=eps, n=len(y),
            clean_acc=metrics.accuracy(clean_pred, y),
            robust_acc=metrics.robust_accuracy(clean_pred, adv_pred, y),
            success_rate=metrics.success_rate(clean_pred, adv_pred, y),
            mean_linf=float(linf.mean()), max_linf=float(linf.max()),
            mean_l2=float(l2.mean()), max_l2=float(l2.max()),
            seconds=seconds,
            samples_per_s=extra.get("samples_per_input", 1) * len(y) / seconds if seconds > 0 else math.inf,
            feature_consistency=consistency, flags=(), config=config, seed=int(config.get("seed", 0)),
            model_fingerprint=model.fingerprint, dataset_fingerprint=self.dataset.fingerprint,
            model_source=model.source, model_train_seconds=model.train_seconds,
            **{**defaults, **extra},
        )
        log.info("model %s | %s ε=%g: robust %.2f%%, success %.2f%%, feature consistency %.3f (%.1fs)", model.label,
                 row.attack, eps, 100 * row.robust_acc, 100 * row.success_rate, row.feature_consistency, row.seconds)
        return row


def guarded_rows(
    cell: _CellRunner, state: _Evaluated, everyone: list[_Evaluated], config: GuardConfig
) -> list[ResultRow]:
    """The model's rows, plus the guard's rows and `masking?` flags when the guard applies to it."""
    rows = list(state.rows)
    if not config.applies_to(state.model.defense):
        return rows
    pgd_rows = [r for r in rows if r.config.get("name") == "pgd" and r.norm == Norm.linf.value]
    if not pgd_rows:
        log.warning("guard: model %s has no Linf PGD rows to check; skipped", state.model.label)
        return rows
    reference = max(pgd_rows, key=lambda r: r.eps)  # the suite's PGD at its largest ε
    suite_pgd = next(a for a in cell.suite.attacks if a.display_name == reference.attack)
    assert isinstance(suite_pgd, PgdConfig)
    strong_config = suite_pgd.model_copy(update={
        "eps": [reference.eps], "label": f"{reference.attack}-guard", "steps": suite_pgd.steps * config.steps_factor,
        "restarts": config.restarts, "random_start": True,
    })
    n = min(config.n, len(cell.y))
    strong = cell.attack(state, Pgd(strong_config), reference.eps, n=n, label=strong_config.display_name)
    strong_row, strong_adv = strong.row, strong.x_adv
    survived = _robust_mask(state, state.x_adv[(reference.attack, reference.eps)], cell.y)[:n]
    survived_strong = survived & _robust_mask(state, strong_adv, cell.y[:n])
    evidence_others = {
        r.attack: r.robust_acc for r in rows
        if r.eps == reference.eps and r.config.get("name") not in ("pgd", "fgsm")
    }
    extra_rows = [strong_row]
    surrogate = _surrogate(state, everyone) if config.transfer else None
    if surrogate is not None and (reference.attack, reference.eps) in surrogate.x_adv:
        transfer_config = {**reference.config, "name": "transfer", "surrogate": surrogate.model.label}
        transfer_row = cell.row(state, f"{reference.attack}-transfer", transfer_config, reference.eps,
                                surrogate.x_adv[(reference.attack, reference.eps)])
        extra_rows.append(transfer_row)
        evidence_others[transfer_row.attack] = transfer_row.robust_acc
    evidence = GuardEvidence(
        eps=reference.eps, pgd_acc=reference.robust_acc, pgd_acc_subset=float(survived.double().mean()),
        strong_acc_subset=float(survived_strong.double().mean()),
        fgsm_vs_pgd=_fgsm_vs_pgd(rows, reference.attack), others=evidence_others,
    )
    findings = masking_findings(evidence, config)
    for finding in findings:
        log.warning("guard: model %s: %s", state.model.label, finding)
    flag = (Flag.masking.value,) if findings else ()
    guard_config = {**strong_row.config, "findings": findings, "evidence": asdict(evidence)}
    extra_rows[0] = replace(strong_row, config=guard_config, flags=flag)
    return [replace(r, flags=r.flags + flag) if r is reference else r for r in rows] + extra_rows


def _robust_mask(state: _Evaluated, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per input (the first len(y)): classified correctly both clean and adversarially."""
    adv_pred = predict_logits(state.model.module, x_adv).argmax(1)
    return (state.clean_pred[: len(y)] == y) & (adv_pred == y)


def _fgsm_vs_pgd(rows: list[ResultRow], pgd_label: str) -> dict[float, tuple[float, float]]:
    fgsm: dict[float, float] = {}
    for r in rows:
        if r.config.get("name") == "fgsm" and r.norm == Norm.linf.value:
            fgsm[r.eps] = min(fgsm.get(r.eps, 1.0), r.robust_acc)
    return {r.eps: (fgsm[r.eps], r.robust_acc) for r in rows if r.attack == pgd_label and r.eps in fgsm}


def _surrogate(state: _Evaluated, everyone: list[_Evaluated]) -> _Evaluated | None:
    """Where transfer examples come from: the entry's own standard model, else the first other standard one."""
    standard = [e for e in everyone if e is not state and e.model.defense == "standard"]
    same_entry = [e for e in standard if e.model.name == state.model.name]
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
    for package in ("robustinv", "torch", "adversarial-robustness-toolbox", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found
