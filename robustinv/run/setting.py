"""What every cell of a run shares, and what a process keeps of it between cells.

A `RunSetting` is small and serializable (the suite, a few paths and names): it travels to
worker processes and Ray tasks with each cell. From it a process derives what cells need — the
dataset, the eval inputs, prepared models and their clean view — once, so a worker that runs
ten cells of one model loads it once. The driver hands its own dataset and model identities to
this process (`adopt`), so a serial run reads and hashes the data, and builds and probes each
model, exactly once. Models come from the content-keyed cache that their prepare cell filled;
nothing a cell reads comes from another cell's memory.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from robustinv.data import Dataset
from robustinv.errors import DataError, ModelError, RobustinvError
from robustinv.models import PreparedModel
from robustinv.models.features import logits_and_features
from robustinv.paths import cache_dir
from robustinv.runtime import model_device, predict_logits, resolve_device, set_threads
from robustinv.suite import Suite, suite_key
from robustinv.training import ModelIdentity, prepare_model, ready_model
from robustinv.training.loop import EpochMonitor


@dataclass(frozen=True, eq=False)
class RunSetting:
    """The suite a run evaluates and where its files are; `threads` is torch's thread count in every cell.

    `shuffled`: the eval inputs in their seeded order (a sequential run) rather than the test
    split's. Settings compare (and hash) by `suite_key`, the content key of the resolved suite,
    and the rest.
    """

    suite: Suite
    suite_key: str
    run_id: str
    cache: Path
    base_dir: Path | None
    threads: int
    dataset_fingerprint: str | None = None  # what the driver loaded; a worker that loads other data refuses it
    shuffled: bool = False

    def _identity(self) -> tuple[object, ...]:
        return (self.suite_key, self.run_id, self.cache, self.base_dir, self.threads, self.dataset_fingerprint,
                self.shuffled)

    def __hash__(self) -> int:
        return hash(self._identity())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunSetting) and self._identity() == other._identity()


def job_setting(suite: Suite, base_dir: Path | None) -> RunSetting:
    """The setting of a job outside a run (`robustinv generate`, `invert`, `explain`): the suite's cache and threads."""
    return RunSetting(suite, suite_key(suite), "job", suite.cache_dir or cache_dir(), base_dir, suite.threads)


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


_DATASETS: dict[str, Dataset] = {}  # suite key → the dataset this process holds
_IDENTITIES: dict[tuple[RunSetting, int, str], ModelIdentity] = {}  # what the driver built, for this process


def adopt(setting: RunSetting, data: Dataset, identities: list[tuple[int, ModelIdentity]]) -> None:
    """Let cells in this process use the dataset and model identities the driver already has."""
    _DATASETS.clear()
    _DATASETS[setting.suite_key] = data
    for entry, identity in identities:
        _IDENTITIES[(setting, entry, identity.defense)] = identity


def release(setting: RunSetting) -> None:
    """Forget what `adopt` handed over (the run is done)."""
    _DATASETS.pop(setting.suite_key, None)
    for key in [key for key in _IDENTITIES if key[0] == setting]:
        del _IDENTITIES[key]


def dataset(setting: RunSetting) -> Dataset:
    set_threads(setting.threads)
    found = _DATASETS.get(setting.suite_key)
    if found is None:
        found = setting.suite.dataset.load()
        _DATASETS.clear()  # one dataset at a time per process
        _DATASETS[setting.suite_key] = found
    if setting.dataset_fingerprint is not None and found.fingerprint != setting.dataset_fingerprint:
        raise DataError(f"dataset {found.name}: this worker ({socket.gethostname()}) reads data with fingerprint "
                        f"{found.fingerprint}, not the driver's {setting.dataset_fingerprint}; give every node "
                        "the same files")
    return found


@lru_cache(maxsize=2)
def eval_set(setting: RunSetting) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's eval inputs and labels, derived once per process."""
    return dataset(setting).eval_subset(setting.suite.dataset.n_eval, setting.suite.seed, shuffled=setting.shuffled)


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
        identity = _IDENTITIES.get((setting, entry, defense))
        if identity is not None:
            prepared = ready_model(identity, dataset(setting), device=device(setting), on_epoch=on_epoch)
        else:
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
def clean_view(setting: RunSetting, entry: int, defense: str, fingerprint: str) -> CleanView:
    """The model's predictions (and features) on the clean eval inputs, once per process."""
    x, _ = eval_set(setting)
    logits, features = logits_features(model(setting, entry, defense, fingerprint), x, setting.suite.eval_batch_size)
    return CleanView(logits.argmax(1), features)


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
