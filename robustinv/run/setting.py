"""What every cell of a run shares, and what a worker process keeps of it between cells.

A `RunSetting` is small and serializable (the suite, a few paths and names): it travels to
worker processes and Ray tasks with each cell. From it a worker rebuilds what cells need — the
dataset, the eval subset, prepared models and their clean view — once per process, so a worker
that runs ten cells of one model loads it once. Models come from the content-keyed cache that
their prepare cell filled; nothing a cell reads comes from another cell's memory.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from robustinv.data import Dataset, load_dataset
from robustinv.errors import DataError, ModelError, RobustinvError
from robustinv.models import PreparedModel
from robustinv.training import prepare_model
from robustinv.models.features import logits_and_features
from robustinv.training.loop import EpochMonitor
from robustinv.runtime import model_device, predict_logits, resolve_device, set_threads
from robustinv.paths import cache_dir
from robustinv.suite import Suite, suite_key


@dataclass(frozen=True, eq=False)
class RunSetting:
    """The suite a run evaluates and where its files are; `threads` is torch's thread count in every cell.

    Settings compare (and hash) by `suite_key`, the content key of the resolved suite, and the rest.
    """

    suite: Suite
    suite_key: str
    run_id: str
    cache: Path
    base_dir: Path | None
    threads: int
    dataset_fingerprint: str | None = None  # what the driver loaded; a worker that loads other data refuses it

    def _identity(self) -> tuple[object, ...]:
        return self.suite_key, self.run_id, self.cache, self.base_dir, self.threads, self.dataset_fingerprint

    def __hash__(self) -> int:
        return hash(self._identity())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunSetting) and self._identity() == other._identity()


def job_setting(suite: Suite, base_dir: Path | None) -> RunSetting:
    """The setting of a job outside a run (`robustinv generate`, `invert`): the suite's cache and threads."""
    return RunSetting(suite, suite_key(suite), "job", suite.cache_dir or cache_dir(),
                      base_dir, suite.threads)


def job_model(suite: Suite, model_name: str, defense: str, base_dir: Path | None
              ) -> tuple[RunSetting, Dataset, PreparedModel]:
    """A job's setting, the dataset and the prepared (model, defense), as `robustinv run` prepares them for cells."""
    names = [m.name for m in suite.models]
    if model_name not in names:
        raise RobustinvError(f"suite {suite.name!r} has no model {model_name!r}; its models: {', '.join(names)}")
    entry = names.index(model_name)
    defenses = suite.models[entry].defenses
    if defense not in defenses:
        raise RobustinvError(f"model {model_name!r} of suite {suite.name!r} has no defense {defense!r}; "
                             f"its defenses: {', '.join(defenses)}")
    setting = job_setting(suite, base_dir)
    return setting, dataset(setting), model(setting, entry, defense)


@dataclass(frozen=True)
class CleanView:
    """A model's logits-derived view of the clean eval inputs."""

    pred: torch.Tensor
    features: torch.Tensor | None


@lru_cache(maxsize=2)
def _dataset(setting: RunSetting) -> Dataset:
    spec = setting.suite.dataset
    return load_dataset(spec.name, spec.root, download=spec.download)


def dataset(setting: RunSetting) -> Dataset:
    set_threads(setting.threads)
    found = _dataset(setting)
    if setting.dataset_fingerprint is not None and found.fingerprint != setting.dataset_fingerprint:
        raise DataError(f"dataset {found.name}: this worker ({socket.gethostname()}) reads data with fingerprint "
                        f"{found.fingerprint}, not the driver's {setting.dataset_fingerprint}; give every node "
                        "the same files")
    return found


def eval_set(setting: RunSetting) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset(setting).eval_subset(setting.suite.dataset.n_eval, setting.suite.seed)


def device(setting: RunSetting) -> torch.device:
    return resolve_device(setting.suite.device.value)


_MODELS: dict[tuple[RunSetting, int, str, str | None], PreparedModel] = {}
_KEEP_MODELS = 4  # prepared models a worker keeps between cells


def model(setting: RunSetting, entry: int, defense: str, fingerprint: str | None = None, *,
          on_epoch: EpochMonitor | None = None) -> PreparedModel:
    """The prepared model (trained here, or loaded from the cache its prepare cell filled), as the run planned it."""
    set_threads(setting.threads)
    key = (setting, entry, defense, fingerprint)
    prepared = _MODELS.get(key)
    if prepared is None:
        prepared = prepare_model(setting.suite.models[entry], dataset(setting), seed=setting.suite.seed,
                                 device=device(setting), cache_dir=setting.cache, base_dir=setting.base_dir,
                                 defense=defense, on_epoch=on_epoch)
        while len(_MODELS) >= _KEEP_MODELS:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = prepared
    if fingerprint is not None and prepared.fingerprint != fingerprint:
        raise RobustinvError(f"model {prepared.label}: fingerprint {prepared.fingerprint} is not the planned "
                             f"{fingerprint}; its files changed during the run")
    return prepared


@lru_cache(maxsize=4)
def _clean(setting: RunSetting, entry: int, defense: str, fingerprint: str) -> CleanView:
    x, _ = eval_set(setting)
    logits, features = logits_features(model(setting, entry, defense, fingerprint), x, setting.suite.eval_batch_size)
    return CleanView(logits.argmax(1), features)


def clean_view(setting: RunSetting, entry: int, defense: str, fingerprint: str) -> CleanView:
    """The model's predictions (and features) on the clean eval inputs."""
    return _clean(setting, entry, defense, fingerprint)


@torch.no_grad()
def logits_features(model: PreparedModel, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
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


def seconds_per(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf
