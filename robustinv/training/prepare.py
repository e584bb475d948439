"""Turn a ModelSpec into a ready, evaluated-mode module: build, load or train (cached), check fit."""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustinv.checkpoints import (
    check_model_file, checkpoint_files, content_key, load_checkpoint, load_state_file, save_checkpoint,
    state_fingerprint,
)
from robustinv.data import Dataset
from robustinv.errors import ModelError
from robustinv.models.checked import CheckedModel, Probe, probe
from robustinv.models.prepared import PreparedModel
from robustinv.models.user import import_builder
from robustinv.models.zoo import MODELS
from robustinv.records import model_label
from robustinv.runtime import kernel_profile, model_device, seed_everything
from robustinv.training.defenses.base import recipe_key
from robustinv.training.loop import EpochMonitor, train
from robustinv.training.recipe import TrainRecipe
from robustinv.training.spec import ModelSpec

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


def prepare_models(
    spec: ModelSpec, dataset: Dataset, *, seed: int, device: torch.device, cache_dir: Path, base_dir: Path | None = None
) -> list[PreparedModel]:
    """One prepared model per defense of the entry, in the entry's order."""
    return [
        prepare_model(spec, dataset, seed=seed, device=device, cache_dir=cache_dir, base_dir=base_dir, defense=name)
        for name in spec.defenses
    ]


def prepare_model(
    spec: ModelSpec, dataset: Dataset, *, seed: int, device: torch.device, cache_dir: Path,
    base_dir: Path | None = None, defense: str = "standard", on_epoch: EpochMonitor | None = None,
) -> PreparedModel:
    """Build, load or train (cached by content hash) one defense of the entry; `on_epoch` sees training.

    The module of the result is a `CheckedModel`: every later call goes through its input copy
    and output checks. Its fingerprint covers the weights and the code of a user architecture.
    """
    identity = identify_model(spec, dataset, seed=seed, device=device, cache_dir=cache_dir, base_dir=base_dir,
                              defense=defense)
    return ready_model(identity, dataset, device=device, on_epoch=on_epoch)


def ready_model(identity: ModelIdentity, dataset: Dataset, *, device: torch.device,
                on_epoch: EpochMonitor | None = None) -> PreparedModel:
    """The identified model with its weights: as given, from the cache, or trained now (and cached)."""
    if identity.recipe is not None:
        prepared = _train_cached(identity, dataset, device=device, on_epoch=on_epoch)
    else:
        prepared = PreparedModel(identity.name, identity.module, identity.fingerprint, identity.source, 0.0,
                                 identity.defense)
    prepared = replace(prepared, randomized=identity.randomized)
    prepared.module.to(device).eval()
    return prepared


@dataclass(frozen=True)
class ModelIdentity:
    """A model before training: its built module and the fingerprint the prepared model will carry.

    Everything but training is done: the architecture is built and probed, and given weights
    are loaded. A model to train (or load from the cache) has its `recipe` and cache `stem`.
    """

    name: str
    defense: str
    module: CheckedModel
    fingerprint: str
    source: str  # "weights" or "torchscript"; "trained" for a model to train or load
    randomized: bool
    recipe: TrainRecipe | None = None
    stem: Path | None = None
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # what the checkpoint's JSON records

    @property
    def label(self) -> str:
        return model_label(self.name, self.defense)


def identify_model(
    spec: ModelSpec, dataset: Dataset, *, seed: int, device: torch.device, cache_dir: Path,
    base_dir: Path | None = None, defense: str = "standard",
) -> ModelIdentity:
    """Build (and probe) one defense of the entry and work out its fingerprint, without training it.

    A bad architecture, weights file or misfit with the data fails here, before anything runs.
    """
    if spec.torchscript is not None:
        module = _load_torchscript(spec.torchscript)
        checked, found = _checked(module, spec.name, dataset)
        fingerprint = _file_fingerprint(spec.torchscript)  # the archive holds the code and the weights
        return ModelIdentity(spec.name, defense, checked, fingerprint, "torchscript", found.randomized)
    assert spec.arch is not None  # the spec's validator fills it
    seed_everything(seed)  # the initial weights are part of what the seed determines
    module, code = build_arch(spec.arch, spec.arch_kwargs, dataset, base_dir=base_dir)
    checked, found = _checked(module, spec.name, dataset)  # before training: a misfit should not cost an epoch
    if defense == "standard" and spec.weights is not None:
        _load_into(module, load_state_file(spec.weights), spec.weights)
        fingerprint = content_key({"weights": state_fingerprint(module.state_dict()), "arch": spec.arch,
                                   "arch_kwargs": spec.arch_kwargs, "code": code})[:16]
        return ModelIdentity(spec.name, defense, checked, fingerprint, "weights", found.randomized)
    recipe = spec.train if defense == "standard" else spec.adversarial
    assert recipe is not None
    described = {
        "kind": "model", "format": CHECKPOINT_FORMAT, "arch": spec.arch, "arch_kwargs": spec.arch_kwargs,
        "arch_source": code, "dataset": dataset.fingerprint,
        "input_shape": dataset.input_shape, "num_classes": dataset.num_classes,
        "recipe": recipe_key(defense, recipe), "seed": seed,
        "kernels": kernel_profile(device),  # CPU and CUDA kernels, and CPU thread counts, train different weights
    }
    if defense != "standard":
        described["defense"] = defense
    key = content_key(described)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", spec.arch if defense == "standard" else f"{spec.arch}-{defense}")
    meta = {"arch": spec.arch, "arch_kwargs": spec.arch_kwargs, "dataset": dataset.name, "defense": defense,
            "dataset_fingerprint": dataset.fingerprint, "recipe": recipe.model_dump(mode="json"), "seed": seed}
    return ModelIdentity(spec.name, defense, checked, key, "trained", found.randomized, recipe,
                         cache_dir / "models" / f"{prefix}-{key}", seed, meta)


def build_arch(
    arch: str, kwargs: dict[str, Any], dataset: Dataset, *, base_dir: Path | None = None
) -> tuple[nn.Module, str]:
    """A registered architecture sized for the dataset, or `module:callable(**kwargs)`; and its code's fingerprint.

    Zoo architectures are robustinv's own code (their fingerprint is empty; the package version
    covers them).
    """
    if ":" not in arch:
        return MODELS.get(arch)(dataset.input_shape, dataset.num_classes), ""
    builder = import_builder(arch, base_dir)
    return builder.build(kwargs), builder.code


def _checked(module: nn.Module, name: str, dataset: Dataset) -> tuple[CheckedModel, Probe]:
    checked = CheckedModel(module, name, dataset.num_classes)
    found = probe(checked, dataset.x_test[:2].to(model_device(module)), dataset=dataset.name)
    if found.randomized:
        log.warning("model %s: two identical forward passes in eval mode gave different outputs (dropout left "
                    "on, or a randomized model): its numbers are not repeatable and its rows are flagged", name)
    return checked, found


def _file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _train_cached(
    identity: ModelIdentity, dataset: Dataset, *, device: torch.device, on_epoch: EpochMonitor | None = None,
) -> PreparedModel:
    assert identity.stem is not None and identity.recipe is not None
    module, stem, label = identity.module, identity.stem, identity.label
    cached = load_checkpoint(stem)
    if cached is not None:
        state, meta = cached
        _load_into(module.model, state, checkpoint_files(stem)[0])
        log.info("model %s: cached weights %s", label, stem.name)
        return PreparedModel(identity.name, module, identity.fingerprint, "cache", float(meta.get("train_seconds", 0.0)),
                             identity.defense)
    log.info("model %s: training %s on %s (%d images)", label, identity.defense, dataset.name, len(dataset.y_train))
    module.to(device)
    seconds = train(module, dataset.x_train, dataset.y_train, identity.recipe, defense=identity.defense,
                    seed=identity.seed, label=label, on_epoch=on_epoch)
    save_checkpoint(stem, module.model.state_dict(), {**identity.meta, "train_seconds": seconds})
    return PreparedModel(identity.name, module, identity.fingerprint, "trained", seconds, identity.defense)


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load `state` into `module`; a tensor whose kind (floating or integer) differs from the model's is refused.

    `load_state_dict` would cast int8 or bool tensors into float parameters without a word.
    """
    own = module.state_dict()
    for name, tensor in state.items():
        if name in own and tensor.is_floating_point() != own[name].is_floating_point():
            raise ModelError(f"weights {path}: {name!r} is {tensor.dtype} but the model's {name!r} is "
                             f"{own[name].dtype}; save the weights in the model's own dtypes")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ModelError(f"weights {path} do not fit the architecture: {detail[:300]}") from None


def _load_torchscript(path: Path) -> nn.Module:
    check_model_file(path, "TorchScript")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated upstream, still supported
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch.jit raises RuntimeError and friends for bad archives
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load TorchScript file {path}: {first}") from None
