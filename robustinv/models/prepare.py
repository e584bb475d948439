"""Turn a ModelSpec into a ready, evaluated-mode module: build, load or train (cached), check fit."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustinv.checkpoints import checkpoint_files, content_key, load_checkpoint, load_state_file, save_checkpoint, state_fingerprint
from robustinv.data import Dataset
from robustinv.errors import ModelError
from robustinv.models.spec import ModelSpec
from robustinv.models.zoo import MODELS
from robustinv.runtime import model_device, seed_everything
from robustinv.training import TrainRecipe, train
from robustinv.training.loop import EpochMonitor

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to attack, with where it came from and how long training took."""

    name: str
    module: nn.Module
    fingerprint: str
    source: str  # "trained", "cache", "weights" or "torchscript"
    train_seconds: float
    defense: str = "standard"

    @property
    def label(self) -> str:
        return self.name if self.defense == "standard" else f"{self.name}[{self.defense}]"


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
    """Build, load or train (cached by content hash) one defense of the entry; `on_epoch` sees training."""
    if spec.torchscript is not None:
        module = _load_torchscript(spec.torchscript)
        check_fits(module, dataset, spec.name)
        prepared = PreparedModel(spec.name, module, state_fingerprint(module.state_dict()), "torchscript", 0.0)
    else:
        assert spec.arch is not None  # the spec's validator fills it
        seed_everything(seed)  # the initial weights are part of what the seed determines
        module = build_arch(spec.arch, spec.arch_kwargs, dataset, base_dir=base_dir)
        check_fits(module, dataset, spec.name)  # before training: a misfit should not cost an epoch
        if defense != "standard":
            prepared = _train_cached(spec, module, dataset, spec.adversarial, defense,
                                     seed=seed, device=device, cache_dir=cache_dir, on_epoch=on_epoch)
        elif spec.weights is not None:
            _load_into(module, load_state_file(spec.weights), spec.weights)
            prepared = PreparedModel(spec.name, module, state_fingerprint(module.state_dict()), "weights", 0.0)
        else:
            assert spec.train is not None
            prepared = _train_cached(spec, module, dataset, spec.train, defense,
                                     seed=seed, device=device, cache_dir=cache_dir, on_epoch=on_epoch)
    prepared.module.to(device).eval()
    return prepared


def build_arch(arch: str, kwargs: dict[str, Any], dataset: Dataset, *, base_dir: Path | None = None) -> nn.Module:
    """A registered architecture sized for the dataset, or `module:callable(**kwargs)`."""
    if ":" not in arch:
        return MODELS.get(arch)(dataset.input_shape, dataset.num_classes)
    factory = _import_callable(arch, base_dir)
    try:
        module = factory(**kwargs)
    except Exception as exc:  # user code may raise anything
        raise ModelError(f"calling {arch} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"{arch} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def _import_callable(arch: str, base_dir: Path | None) -> Any:
    module_name, _, attr = arch.partition(":")
    local = base_dir is not None and _defined_in(module_name, base_dir)
    if local:
        # A module beside the suite wins over a same-named one imported earlier in this process.
        top = module_name.split(".")[0]
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(f"cannot import {module_name!r} for arch {arch!r}: {type(exc).__name__}: {exc}") from None
    finally:
        if local:
            sys.path.remove(str(base_dir))
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"arch {arch!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def _defined_in(module_name: str, folder: Path) -> bool:
    relative = Path(*module_name.split("."))
    return (folder / relative.with_suffix(".py")).is_file() or (folder / relative / "__init__.py").is_file()


def _source_hash(arch: str) -> str:
    """Hash of a user architecture's module source, so editing it invalidates cached weights."""
    if ":" not in arch:
        return ""
    module = sys.modules.get(arch.partition(":")[0])
    try:
        return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:16] if module else ""
    except (OSError, TypeError):
        return ""


def _train_cached(
    spec: ModelSpec, module: nn.Module, dataset: Dataset, recipe: TrainRecipe, defense: str, *, seed: int,
    device: torch.device, cache_dir: Path, on_epoch: EpochMonitor | None = None,
) -> PreparedModel:
    assert spec.arch is not None
    described = {
        "kind": "model", "format": CHECKPOINT_FORMAT, "arch": spec.arch, "arch_kwargs": spec.arch_kwargs,
        "arch_source": _source_hash(spec.arch), "dataset": dataset.fingerprint,
        "input_shape": dataset.input_shape, "num_classes": dataset.num_classes,
        "recipe": recipe.model_dump(mode="json"), "seed": seed,
        "device": device.type,  # CPU and CUDA kernels train slightly different weights
    }
    if defense != "standard":
        described["defense"] = defense
    key = content_key(described)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", spec.arch if defense == "standard" else f"{spec.arch}-{defense}")
    stem = cache_dir / "models" / f"{prefix}-{key}"
    label = spec.name if defense == "standard" else f"{spec.name}[{defense}]"
    cached = load_checkpoint(stem)
    if cached is not None:
        state, meta = cached
        _load_into(module, state, checkpoint_files(stem)[0])
        log.info("model %s: cached weights %s", label, stem.name)
        return PreparedModel(spec.name, module, key, "cache", float(meta.get("train_seconds", 0.0)), defense)
    log.info("model %s: training %s (%s) on %s (%d images)", label, spec.arch, defense, dataset.name,
             len(dataset.y_train))
    module.to(device)
    seconds = train(module, dataset.x_train, dataset.y_train, recipe, defense=defense, seed=seed, label=label,
                    on_epoch=on_epoch)
    save_checkpoint(stem, module.state_dict(), {
        "arch": spec.arch, "arch_kwargs": spec.arch_kwargs, "dataset": dataset.name, "defense": defense,
        "dataset_fingerprint": dataset.fingerprint, "recipe": recipe.model_dump(mode="json"),
        "seed": seed, "train_seconds": seconds,
    })
    return PreparedModel(spec.name, module, key, "trained", seconds, defense)


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ModelError(f"weights {path} do not fit the architecture: {detail[:300]}") from None


def _load_torchscript(path: Path) -> nn.Module:
    if not path.is_file():
        raise ModelError(f"TorchScript file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated upstream, still supported
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch.jit raises RuntimeError and friends for bad archives
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load TorchScript file {path}: {first}") from None


def check_fits(module: nn.Module, dataset: Dataset, name: str) -> None:
    """Fail early, with the shapes, when the model cannot take this dataset's images."""
    module.eval()
    probe = dataset.x_test[:2].to(model_device(module))
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as exc:  # shape errors surface as RuntimeError, user models may raise others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model {name!r} does not accept {dataset.name} images of shape {dataset.input_shape}: {first}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.shape != (len(probe), dataset.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"model {name!r} returns {shape} for {len(probe)} images; "
            f"expected ({len(probe)}, {dataset.num_classes}) logits for {dataset.name}'s {dataset.num_classes} classes"
        )
    if not torch.isfinite(out).all():
        raise ModelError(f"model {name!r} returns NaN or infinite logits on {dataset.name} images")
