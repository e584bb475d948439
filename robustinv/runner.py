"""Run a suite: load the data, prepare every model, attack every (model, attack, ε) cell.

Everything that can fail on bad input (data, models, shapes, ε ranges) is checked before the
first attack runs, so a broken suite fails fast and leaves nothing behind.
"""

from __future__ import annotations

import logging
import math
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from robustinv import metrics
from robustinv.attacks import ATTACKS, Attack, AttackConfig, AttackContext, Norm
from robustinv.checkpoints import content_key
from robustinv.data import Dataset, load_dataset
from robustinv.errors import ModelError, RobustinvError
from robustinv.models import PreparedModel, prepare_model
from robustinv.paths import cache_dir
from robustinv.models.features import logits_and_features
from robustinv.records import ResultRow, TargetCell
from robustinv.runtime import derive_seed, model_device, predict_logits, resolve_device
from robustinv.sanity import check_rows
from robustinv.suite import Suite, dump_suite

log = logging.getLogger(__name__)


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


def run_suite(suite: Suite, *, base_dir: Path | None = None) -> RunResult:
    """Evaluate every model of the suite under every attack and ε; rows come back sanity-checked."""
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
        prepare_model(spec, dataset, seed=suite.seed, device=device, cache_dir=cache, base_dir=base_dir)
        for spec in suite.models
    ]
    attacks = [ATTACKS.get(config.name)(config) for config in suite.attacks]
    for model in models:
        for attack in attacks:
            attack.validate(model.module, dataset.input_shape, model_name=model.name)

    rows, targets = [], []
    for model in models:
        clean_pred = predict_logits(model.module, x, batch_size=suite.eval_batch_size).argmax(1)
        log.info("model %s: clean accuracy %.2f%%", model.name, 100 * metrics.accuracy(clean_pred, y))
        for attack in attacks:
            for eps in attack.config.eps:
                row, cells = _run_cell(run_id, suite, dataset, model, attack, eps, x, y, clean_pred, cache)
                rows.append(row)
                targets.extend(cells)
    finished = datetime.now(timezone.utc)
    info = RunInfo(
        run_id=run_id, suite=suite.name, seed=suite.seed, device=str(device),
        started=started.isoformat(timespec="seconds"), finished=finished.isoformat(timespec="seconds"),
        dataset=dataset.name, dataset_fingerprint=dataset.fingerprint, n_eval=len(y), versions=versions(),
    )
    return RunResult(info, check_rows(rows), targets)


def _run_cell(
    run_id: str, suite: Suite, dataset: Dataset, model: PreparedModel, attack: Attack, eps: float,
    x: torch.Tensor, y: torch.Tensor, clean_pred: torch.Tensor, cache: Path,
) -> tuple[ResultRow, list[TargetCell]]:
    config = attack.config
    seed = derive_seed(suite.seed, model.name, config.display_name, eps)
    context = AttackContext(
        x_train=dataset.x_train, y_train=dataset.y_train, num_classes=dataset.num_classes, model_name=model.name,
        model_fingerprint=model.fingerprint, dataset_fingerprint=dataset.fingerprint, cache_dir=cache,
    )
    output = attack.run(model.module, x, y, eps, seed=seed, context=context)
    adv_pred = predict_logits(model.module, output.x_adv, batch_size=suite.eval_batch_size).argmax(1)
    k = output.samples.shape[0]
    sample_pred, sample_features = _candidates_view(model, output.samples, suite.eval_batch_size)
    linf, l2 = metrics.linf_norms(x, output.x_adv), metrics.l2_norms(x, output.x_adv)
    row = ResultRow(
        run_id=run_id, dataset=dataset.name, model=model.name, attack=config.display_name,
        norm=config.norm.value, eps=eps, n=len(y),
        clean_acc=metrics.accuracy(clean_pred, y),
        robust_acc=metrics.robust_accuracy(clean_pred, adv_pred, y),
        success_rate=metrics.success_rate(clean_pred, adv_pred, y),
        mean_linf=float(linf.mean()), max_linf=float(linf.max()),
        mean_l2=float(l2.mean()), max_l2=float(l2.max()),
        seconds=output.seconds, samples_per_s=k * len(y) / output.seconds if output.seconds > 0 else math.inf,
        train_seconds=output.train_seconds, samples_per_input=k,
        candidate_success=metrics.candidate_success(clean_pred, sample_pred, y),
        diversity_cos=metrics.pairwise_cosine(sample_features) if sample_features is not None else math.nan,
        diversity_l2=metrics.pairwise_l2(output.samples),
        target_success=metrics.target_success(sample_pred, output.targets) if output.targets is not None else math.nan,
        flags=(), config=config.row_config(eps, seed), seed=seed,
        model_fingerprint=model.fingerprint, dataset_fingerprint=dataset.fingerprint,
        model_source=model.source, model_train_seconds=model.train_seconds,
    )
    log.info("model %s | %s ε=%g: robust %.2f%%, success %.2f%% (%.1fs)", model.name, row.attack, eps,
             100 * row.robust_acc, 100 * row.success_rate, row.seconds)
    return row, _target_cells(row, y, sample_pred, output.targets, dataset.num_classes)


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
        TargetCell(row.model, row.attack, row.eps, true, target, int(counts[true, target]), float(rates[true, target]))
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
