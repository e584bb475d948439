"""Explainer generators cached as safetensors + JSON, keyed by everything that determines them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from robustinv.checkpoints import checkpoint_files, content_key, load_checkpoint, save_checkpoint
from robustinv.interpret.gan import ExplainerGenerator, ExplainerRecipe, ExplainMode, build_generator, train_explainer
from robustinv.interpret.mapsets import MapSet
from robustinv.runtime import kernel_profile

log = logging.getLogger(__name__)

EXPLAINER_FORMAT = 1


@dataclass(frozen=True)
class ExplainerSource:
    """What an explainer is trained on: the model and data, the attack that made its adversarial half, how."""

    mode: ExplainMode
    model_fingerprint: str
    dataset_fingerprint: str
    attack: dict[str, Any]
    eps: float
    n_train: int
    data_seed: int
    seed: int
    image_channels: int
    n_conditions: int
    recipe: ExplainerRecipe

    @property
    def key(self) -> str:
        # The networks' parameter names and shapes are part of the key, so weights of an older
        # architecture are never loaded into a newer one.
        layout = [(name, list(t.shape)) for name, t in self.build().state_dict().items()]
        return content_key({**asdict(self), "mode": self.mode.value, "recipe": self.recipe.model_dump(mode="json"),
                            "format": EXPLAINER_FORMAT, "layout": layout})

    def build(self) -> ExplainerGenerator:
        return build_generator(self.mode, image_channels=self.image_channels, n_conditions=self.n_conditions,
                               width=self.recipe.width)


@dataclass(frozen=True)
class CachedExplainer:
    generator: ExplainerGenerator
    seconds: float
    history: list[dict[str, float]]
    trained_now: bool


def cached_explainer(source: ExplainerSource, train_set: Callable[[], MapSet], *, cache_dir: Path,
                     on_epoch: Callable[[int, int], None] | None = None) -> CachedExplainer:
    """The cached explainer for `source`, or one trained on `train_set()` (built only when needed), then cached."""
    stem = cache_dir / "explainers" / f"{source.mode.value}-{source.key}-{kernel_profile(torch.device('cpu'))}"
    cached = load_checkpoint(stem)
    if cached is not None:
        state, meta = cached
        generator = source.build()
        generator.load_state_dict(state)
        log.info("explainer %s: cached %s", source.mode.value, checkpoint_files(stem)[0].name)
        return CachedExplainer(generator.eval(), float(meta["train_seconds"]), list(meta["history"]), False)
    data = train_set()
    log.info("explainer %s: training on %d maps (%d epochs)", source.mode.value, len(data), source.recipe.epochs)
    trained = train_explainer(source.mode, data.images, data.inputs(source.mode), data.target(source.mode),
                              recipe=source.recipe, seed=source.seed, on_epoch=on_epoch)
    history = [asdict(record) for record in trained.history]
    save_checkpoint(stem, trained.generator.state_dict(), {
        **asdict(source), "mode": source.mode.value, "recipe": source.recipe.model_dump(mode="json"),
        "train_seconds": trained.seconds, "history": history,
    })
    return CachedExplainer(trained.generator, trained.seconds, history, True)
