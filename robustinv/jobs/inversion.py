"""The inversion jobs behind `robustinv generate` and `robustinv invert`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from robustinv.attacks.base import AttackContext
from robustinv.attacks.inversion import Inversion, InversionConfig
from robustinv.files import atomic_write
from robustinv.data import Dataset
from robustinv.errors import RobustinvError
from robustinv.inversion.cached import GeneratorSource, cached_generator
from robustinv.inversion.free import invert_classes
from robustinv.inversion.generator import FreeGenerator, check_shape
from robustinv.inversion.production import Produced, ProductionRequest, check_out_dir, produce
from robustinv.inversion.recipe import GeneratorRecipe
from robustinv.models import PreparedModel
from robustinv.run.plan import cell_seed
from robustinv.run.setting import job_model
from robustinv.suite import Suite

log = logging.getLogger(__name__)


def _model_and_data(suite: Suite, model_name: str, defense: str, base_dir: Path | None
                    ) -> tuple[Dataset, PreparedModel, Path]:
    """The dataset and the prepared (model, defense), exactly as `robustinv run` prepares them for its cells."""
    setting, dataset, model = job_model(suite, model_name, defense, base_dir)
    check_shape(dataset.input_shape)
    return dataset, model, setting.cache


def inversion_config(suite: Suite, label: str | None) -> InversionConfig:
    """The suite's inversion attack named `label`, or its only/first one."""
    found = [a for a in suite.attacks if isinstance(a, InversionConfig)]
    if label is not None:
        found = [a for a in found if a.display_name == label]
    if not found:
        which = f" labelled {label!r}" if label else ""
        raise RobustinvError(f"suite {suite.name!r} has no inversion attack{which}; add an [[attacks]] entry "
                             'with name = "inversion"')
    return found[0]


def generate_samples(
    suite: Suite, *, model_name: str, n: int, out_dir: Path, attack_label: str | None = None,
    eps: float | None = None, shard_size: int = 1000, base_dir: Path | None = None, defense: str = "standard",
    on_shard: Callable[[int, bool], None] | None = None,
) -> tuple[ProductionRequest, Produced]:
    """Stream `n` verified adversarial samples of the suite's inversion attack on (model, defense) into `out_dir`.

    The generator is the one `robustinv run` trains for the same cell (same seed, same cache key),
    so after a run this loads it instead of training it again.
    """
    if n < 1 or shard_size < 1:
        raise RobustinvError(f"--n and --shard-size must be at least 1, got {n} and {shard_size}")
    check_out_dir(out_dir)  # a damaged folder is refused before the generator trains
    config = inversion_config(suite, attack_label)
    eps = max(config.eps) if eps is None else eps
    if not 0 < eps <= 1:
        raise RobustinvError(f"ε must lie in (0, 1], got {eps}")
    dataset, model, cache = _model_and_data(suite, model_name, defense, base_dir)
    seed = cell_seed(suite.seed, model.name, model.defense, config.display_name, eps)  # the generator `run` trains
    attack = Inversion(config)
    context = AttackContext(dataset.x_train, dataset.y_train, dataset.num_classes, model.name, model.fingerprint,
                            dataset.fingerprint, cache)
    attack.prepare(model.module, eps, seed=seed, context=context)
    source = attack.source(context, eps, seed)
    request = ProductionRequest(
        suite=suite.name, model=model.name, model_fingerprint=model.fingerprint, attack=config.display_name,
        generator_key=source.key, eps=eps, targeted=config.targeted, n=n, shard_size=shard_size, seed=seed,
        refine_steps=config.refine_steps, refine_step_size=config.step_size(eps) if config.refine_steps else 0.0,
        refine_aimed=config.refine_loss == "aimed", refine_jitter=config.refine_jitter,
    )
    produced = produce(request, attack.generator, model.module, dataset.x_test, dataset.y_test, out_dir,
                       tau=config.train.tau, batch_size=config.batch_size, on_shard=on_shard)
    return request, produced


@dataclass(frozen=True)
class ClassReport:
    label: int
    hit_rate: float
    image: str


def invert_model(
    suite: Suite, *, model_name: str, out_dir: Path, per_class: int = 16, steps: int = 1000,
    base_dir: Path | None = None, save_grid: Callable[[torch.Tensor, Path], None],
) -> list[ClassReport]:
    """Train (or load) a free generator for the model and write one image grid per class."""
    if per_class < 1:
        raise RobustinvError(f"--per-class must be at least 1, got {per_class}")
    dataset, model, cache = _model_and_data(suite, model_name, "standard", base_dir)
    recipe = GeneratorRecipe(steps=steps, eval_every=max(1, steps // 4))
    seed = cell_seed(suite.seed, model.name, model.defense, "free-inversion", 0.0)
    source = GeneratorSource("free", model.fingerprint, dataset.fingerprint, dataset.input_shape,
                             dataset.num_classes, recipe, seed)
    generator, _ = cached_generator(source, model.module, dataset.x_train, dataset.y_train, cache_dir=cache,
                                    label=f"{model.name}/free")
    assert isinstance(generator, FreeGenerator)
    images, pred = invert_classes(generator, model.module, per_class=per_class, tau=recipe.tau, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for label in range(dataset.num_classes):
        path = out_dir / f"class-{label:02d}.png"
        save_grid(images[label], path)
        reports.append(ClassReport(label, float((pred[label] == label).double().mean()), path.name))
    summary = {"model": model.name, "dataset": dataset.name, "per_class": per_class, "steps": steps,
               "hit_rate": float((pred == torch.arange(dataset.num_classes)[:, None]).double().mean()),
               "classes": [r.__dict__ for r in reports]}
    atomic_write(out_dir / "inversion.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    return reports
