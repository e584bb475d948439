"""One function per cell kind: a spec and its dependencies' results in, a result out.

Cells run wherever an executor puts them (this process, a worker process, a Ray task): they
read only their spec, the run setting and the results of the cells they depend on, and write
nothing but the content-keyed model and generator caches. The driver stores what they return.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Union

import numpy as np
import torch

from robustinv import metrics
from robustinv.attacks import AttackContext, AttackOutput
from robustinv.judge.sanity import Flag
from robustinv.measures import CellView, measure_cell
from robustinv.models import PreparedModel
from robustinv.models.checked import CheckedModel
from robustinv.models.features import logits_and_features
from robustinv.errors import ModelError
from robustinv.records import CLEAN, AttentionResult, CellKind, CellResult, ResultRow, SampleGrid, TargetCell
from robustinv.run import explaining
from robustinv.run import setting as workspace
from robustinv.run.plan import CellSpec, cell_seed
from robustinv.run.setting import RunSetting
from robustinv.runtime import model_device, predict_logits
from robustinv.store import ModelRecord

log = logging.getLogger(__name__)

SAMPLE_INPUTS = 8  # inputs shown per sample grid (the first of the eval set, the same for every grid)
SAMPLE_DRAWS = 8  # candidates shown per input for attacks that make several

ROW_FIELDS = frozenset(f.name for f in fields(ResultRow))  # measured columns beyond these go to `ResultRow.measures`
Events = Callable[[str, int, int], None]  # (cell key, step, steps): progress inside a cell


@dataclass(frozen=True)
class Prepared:
    """A prepare cell's result: where the model came from, which eval inputs it gets right, its clean grid."""

    record: ModelRecord
    clean_correct: np.ndarray
    grid: SampleGrid


@dataclass(frozen=True)
class Trained:
    """A train cell's result: the seconds the attack's training took (when it was trained, maybe earlier)."""

    seconds: float


Value = Union[Prepared, Trained, CellResult, AttentionResult]


@dataclass(frozen=True)
class Done:
    """A finished cell as a worker returns it: its value, who ran it and how long it took."""

    key: str
    value: Value
    worker: str
    seconds: float


def execute(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], events: Events | None = None) -> Done:
    """Run one cell; `inputs` maps dependency keys to their values (only those a cell reads)."""
    start = time.perf_counter()
    value = CELLS[spec.kind](setting, spec, inputs, events)
    return Done(spec.key, value, worker_name(), time.perf_counter() - start)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def prepare(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], events: Events | None) -> Prepared:
    """Train (or load from the cache) the model and look at the clean eval inputs through it."""
    ref = spec.model
    recipe = _recipe(setting, spec)
    on_epoch = None if events is None or recipe is None else (lambda epoch, _: events(spec.key, epoch, recipe.epochs))
    model = workspace.model(setting, ref.entry, ref.defense, ref.fingerprint, on_epoch=on_epoch)
    x, y = workspace.eval_set(setting)
    clean = workspace.clean_view(setting, ref.entry, ref.defense, ref.fingerprint)
    log.info("model %s: clean accuracy %.2f%%", model.label, 100 * metrics.accuracy(clean.pred, y))
    record = ModelRecord(model.name, model.defense, model.fingerprint, model.source, model.train_seconds)
    return Prepared(record, (clean.pred == y).numpy(), sample_grid(model, CLEAN, 0.0, x[None, :SAMPLE_INPUTS], y))


def train(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], events: Events | None) -> Trained:
    """Train what a learning attack needs (a generator) into the cache; the attack cell then loads it."""
    model = _model(setting, spec)
    attack = spec.attack_object()
    attack.prepare(model.module, spec.eps, seed=spec.seed, context=_context(setting, model))
    return Trained(attack.trained_seconds)


def attack(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], events: Events | None) -> CellResult:
    """A suite attack (or one of the guard's) at one ε on its range of the eval inputs, measured into a row."""
    assert spec.attack is not None
    model = _model(setting, spec)
    attack = spec.attack_object()
    x, y = spec.inputs.take(*workspace.eval_set(setting))
    learned_from = cell_seed(setting.suite.seed, spec.model.name, spec.model.defense, spec.label, spec.eps)
    with _counting(model) as passes:
        output = attack.run(model.module, x, y, spec.eps, seed=spec.seed, context=_context(setting, model),
                            prepare_seed=learned_from)
    spent = passes(len(y))
    config = {**spec.attack.row_config(spec.eps, spec.seed), "capabilities": attack.capabilities()}
    if output.diagnostics:
        config["diagnostics"] = output.diagnostics
    row, robust, view = _measured(setting, spec, model, config, output.x_adv, output, spent)
    samples = output.samples[:SAMPLE_DRAWS, :SAMPLE_INPUTS]
    return CellResult(
        row, robust.numpy(), tuple(_target_cells(row, y, view.sample_pred, output.targets, _num_classes(setting))),
        sample_grid(model, spec.label, spec.eps, samples, y) if spec.grid else None, output.x_adv.numpy(),
    )


def transfer(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], events: Events | None) -> CellResult:
    """The surrogate's adversarial examples of the reference attack, replayed against this model."""
    crafted: CellResult = inputs[spec.deps[1]]
    assert crafted.x_adv is not None, "attack cells keep their adversarial examples"
    model = _model(setting, spec)
    assert spec.attack is not None
    config = {**spec.attack.row_config(spec.eps, spec.seed), "name": "transfer", "surrogate": spec.surrogate}
    x_adv = torch.from_numpy(np.array(crafted.x_adv))
    row, robust, _ = _measured(setting, spec, model, config, x_adv, None, (math.nan, math.nan))
    return CellResult(row, robust.numpy(), x_adv=crafted.x_adv)


def explain(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], events: Events | None) -> AttentionResult:
    """Where the examples of the attack cell this explains moved the model's attention, over `spec.explained` inputs."""
    attacked: CellResult = inputs[spec.deps[1]]
    assert attacked.x_adv is not None, "attack cells keep their adversarial examples"
    return explaining.attention(setting, spec, _model(setting, spec), torch.from_numpy(np.array(attacked.x_adv)),
                                SAMPLE_INPUTS)


CELLS: dict[CellKind, Callable[[RunSetting, CellSpec, Mapping[str, Any], Events | None], Value]] = {
    CellKind.prepare: prepare, CellKind.train: train, CellKind.attack: attack, CellKind.guard: attack,
    CellKind.transfer: transfer, CellKind.explain: explain,
}


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
        images=(samples.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
    )


@contextmanager
def _counting(model: PreparedModel) -> Iterator[Callable[[int], tuple[float, float]]]:
    """Inside the block the checked model counts its passes; yields their per-input reading (NaN unchecked)."""
    module = model.module
    if not isinstance(module, CheckedModel):
        yield lambda n: (math.nan, math.nan)
        return
    with module.counting() as meter:
        yield lambda n: meter.count.per_input(n)


def _model(setting: RunSetting, spec: CellSpec) -> PreparedModel:
    ref = spec.model
    return workspace.model(setting, ref.entry, ref.defense, ref.fingerprint)


def _recipe(setting: RunSetting, spec: CellSpec) -> Any:
    entry = setting.suite.models[spec.model.entry]
    return entry.train if spec.model.defense == "standard" else entry.adversarial


def _num_classes(setting: RunSetting) -> int:
    return workspace.dataset(setting).num_classes


def _context(setting: RunSetting, model: PreparedModel) -> AttackContext:
    data = workspace.dataset(setting)
    return AttackContext(
        x_train=data.x_train, y_train=data.y_train, num_classes=data.num_classes, model_name=model.label,
        model_fingerprint=model.fingerprint, dataset_fingerprint=data.fingerprint, cache_dir=setting.cache,
    )


def _measured(setting: RunSetting, spec: CellSpec, model: PreparedModel, config: dict[str, Any],
              x_adv: torch.Tensor, output: AttackOutput | None, passes: tuple[float, float],
              ) -> tuple[ResultRow, torch.Tensor, CellView]:
    """The result row of adversarial examples for the cell's inputs, and which of them stayed correct."""
    batch = setting.suite.eval_batch_size
    taken = spec.inputs
    x, y = taken.take(*workspace.eval_set(setting))
    clean = workspace.clean_view(setting, spec.model.entry, spec.model.defense, spec.model.fingerprint)
    (clean_pred,) = taken.take(clean.pred)
    clean_features = None if clean.features is None else taken.take(clean.features)[0]
    adv_logits, adv_features = workspace.logits_features(model, x_adv, batch)
    adv_pred = adv_logits.argmax(1)
    samples = output.samples if output is not None else x_adv[None]
    sample_pred, sample_features = _candidates_view(model, samples, batch) if output is not None \
        else (adv_pred[None], None)
    view = CellView(x, y, x_adv, clean_pred, adv_pred, clean_features, adv_features, samples, sample_pred,
                    sample_features, output.targets if output is not None else None,
                    output.grad_evals if output is not None else math.nan, *passes)
    seconds = output.seconds if output is not None else 0.0
    measured = measure_cell(view)
    extra = {name: float(measured.pop(name)) for name in list(measured) if name not in ROW_FIELDS}
    data = workspace.dataset(setting)
    n = len(y)
    row = ResultRow(
        run_id=setting.run_id, dataset=data.name, model=model.name, defense=model.defense,
        attack=spec.label, norm=spec.attack.norm.value if spec.attack is not None else "linf", eps=spec.eps, n=n,
        clean_acc=metrics.accuracy(clean_pred, y),
        robust_acc=metrics.robust_accuracy(clean_pred, adv_pred, y),
        success_rate=metrics.success_rate(clean_pred, adv_pred, y),
        seconds=seconds, samples_per_s=workspace.seconds_per(int(measured["samples_per_input"]) * n, seconds),
        train_seconds=output.train_seconds if output is not None else 0.0,
        flags=(Flag.randomized.value,) if spec.model.randomized else (), config=config, seed=spec.seed,
        model_fingerprint=model.fingerprint, dataset_fingerprint=data.fingerprint,
        model_source="", model_train_seconds=0.0,  # the driver fills in the run's first provenance
        measures=extra, **measured,
    )
    log.info("model %s | %s ε=%g%s: robust %.2f%%, success %.2f%%, feature consistency %.3f (%.1fs)", model.label,
             row.attack, row.eps, "" if spec.inputs.start == 0 and spec.batch == 0 else f" {taken.describe()}",
             100 * row.robust_acc, 100 * row.success_rate, row.feature_consistency, row.seconds)
    return row, (clean_pred == y) & (adv_pred == y), view


@torch.no_grad()
def _candidates_view(model: PreparedModel, samples: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
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


def _target_cells(row: ResultRow, y: torch.Tensor, pred: torch.Tensor, targets: torch.Tensor | None,
                  num_classes: int) -> list[TargetCell]:
    if targets is None:
        return []
    counts, rates = metrics.target_matrix(y, pred, targets, num_classes)
    return [
        TargetCell(row.model, row.defense, row.attack, row.eps, true, target, int(counts[true, target]),
                   float(rates[true, target]))
        for true in range(num_classes) for target in range(num_classes) if counts[true, target] > 0
    ]
