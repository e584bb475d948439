"""The job behind `robustinv explain`: train explainer GANs on a suite model's maps and measure them.

Training images are a seeded subset of the training split, each clean and under the suite's
first iterated Linf attack (PGD); the held-out images are the suite's eval subset of the test
split, clean and attacked the same way. Maps explain the class the model predicts. Every GAN
is scored against the true maps and against baselines that need no training, per input kind.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from robustinv.attacks import ATTACKS, AttackConfig, AttackContext, Norm
from robustinv.errors import RobustinvError
from robustinv.interpret.cached import ExplainerSource, cached_explainer
from robustinv.interpret.gan import (
    BestAffineMap, ExplainerGenerator, ExplainerRecipe, ExplainMode, MeanMap, PixelLeastSquares, ablation, mae,
    mean_ssim, predict_maps,
)
from robustinv.interpret.layers import conv_layers
from robustinv.interpret.mapsets import MapSet, condition_depths, map_set
from robustinv.models import PreparedModel
from robustinv.records.explainer import DepthAblation, ExplainerOutcome, HeldOut, ModeOutcome, Score
from robustinv.run.setting import eval_set, job_model
from robustinv.run.plan import cell_seed
from robustinv.runtime import predict_logits
from robustinv.suite import Suite

log = logging.getLogger(__name__)

EXPLAINER_SEED = 3  # every explainer GAN trains from this seed
DEVIATIONS = [
    "Grad-CAM explains the class the model predicts (the reference code always explained class 0)",
    "maps stay float tensors in [0, 1] (the reference code went through a jet colour map, JPEG and back to grey)",
    "the discriminator returns a raw logit scored with BCE-with-logits (a softmax over one unit made it constant)",
    "the generator's update shows the discriminator (image, fake map), not (real map, fake map)",
    "LSFT takes any batch size (the reference code hard-coded it)",
]


@dataclass(frozen=True)
class ExplainRequest:
    suite: Suite
    model_name: str
    defense: str
    modes: tuple[ExplainMode, ...]
    eps: float | None
    n_train: int
    recipe: ExplainerRecipe
    base_dir: Path | None


@dataclass(frozen=True)
class ExplainerRun:
    """The job's outcome, and the held-out maps (true and GAN-made) for the figures."""

    outcome: ExplainerOutcome
    heldout: dict[str, MapSet]  # "clean", "adversarial"
    labels: torch.Tensor  # the held-out inputs' true labels
    predicted: dict[str, dict[str, torch.Tensor]]  # mode → side → (N, 1, H, W) GAN maps


def reference_attack(suite: Suite) -> AttackConfig:
    """The suite's first iterated Linf attack (PGD): what makes the adversarial half of the maps."""
    for config in suite.attacks:
        if ATTACKS.get(config.name).iterated and config.norm is Norm.linf:
            return config
    raise RobustinvError(f"suite {suite.name!r} has no iterated Linf attack (e.g. pgd) to make adversarial inputs "
                         "with; add one to its [[attacks]]")


def explain_model(request: ExplainRequest, *, on_epoch: Callable[[str, int, int], None] | None = None) -> ExplainerRun:
    """Train (or load) the request's explainer GANs on the model's maps and score them on the held-out inputs.

    `on_epoch(mode, epoch, epochs)` reports training progress. Bad input is a `RobustinvError`.
    """
    suite = request.suite
    if request.n_train < 2:
        raise RobustinvError(f"--n-train must be at least 2, got {request.n_train}")
    setting, dataset, model = job_model(suite, request.model_name, request.defense, request.base_dir)
    n_train = min(request.n_train, len(dataset.y_train))  # what is used is what is reported and keyed
    if n_train < request.n_train:
        log.warning("explain: --n-train %d exceeds the %d training images of %s; using all of them",
                    request.n_train, n_train, dataset.name)
    layers = conv_layers(model.module, dataset.input_shape)
    if len(layers) < 2:
        raise RobustinvError(f"model {model.label} has {len(layers)} conv layers; the explainer needs at least 2 "
                             "(the shallowest is its target, the deeper ones condition it)")
    config = reference_attack(suite)
    eps = statistics.median(config.eps) if request.eps is None else request.eps
    if not 0 < eps <= 1:
        raise RobustinvError(f"ε must lie in (0, 1], got {eps}")
    attack = ATTACKS.get(config.name)(config)
    seed = cell_seed(suite.seed, model.name, model.defense, "explain", eps)
    context = AttackContext(dataset.x_train, dataset.y_train, dataset.num_classes, model.name, model.fingerprint,
                            dataset.fingerprint, setting.cache)
    batch = suite.eval_batch_size

    def maps_of(x: torch.Tensor, y: torch.Tensor) -> tuple[MapSet, MapSet, torch.Tensor]:
        x_adv = attack.run(model.module, x, y, eps, seed=seed, context=context).x_adv
        clean_pred, adv_pred = (predict_logits(model.module, t, batch_size=batch).argmax(1) for t in (x, x_adv))
        return (map_set(model.module, x, clean_pred, layers, batch_size=batch),
                map_set(model.module, x_adv, adv_pred, layers, batch_size=batch), adv_pred != clean_pred)

    x_test, y_test = eval_set(setting)
    clean, adversarial, fooled = maps_of(x_test, y_test)
    captum_rate = _captum_rate(model, x_test, layers, batch)
    heldout = {"clean": clean, "adversarial": adversarial}

    train_cache: list[MapSet] = []

    def train_set() -> MapSet:  # attacked and explained only when some explainer must be trained
        if not train_cache:
            order = torch.randperm(len(dataset.x_train), generator=torch.Generator().manual_seed(seed))
            chosen = order[:n_train]
            train_cache.append(MapSet.joined(*maps_of(dataset.x_train[chosen], dataset.y_train[chosen])[:2]))
        return train_cache[0]

    depths = condition_depths(len(layers))
    outcomes, predicted = [], {}
    for mode in request.modes:
        source = ExplainerSource(mode, model.fingerprint, dataset.fingerprint, config.row_config(eps, seed), eps,
                                 n_train, seed, EXPLAINER_SEED, dataset.input_shape[0], len(depths),
                                 request.recipe)
        cached = cached_explainer(source, train_set, cache_dir=setting.cache, on_epoch=_epochs(on_epoch, mode))
        predicted[mode.value] = {side: predict_maps(cached.generator, maps.images, maps.inputs(mode), batch_size=batch)
                                 for side, maps in heldout.items()}
        outcomes.append(_mode_outcome(mode, cached.generator, cached.seconds, cached.trained_now, cached.history,
                                      train_set, heldout, predicted[mode.value],
                                      depths, len(layers), batch))
    outcome = ExplainerOutcome(
        suite=suite.name, model=model.name, defense=model.defense, dataset=dataset.name,
        model_fingerprint=model.fingerprint, dataset_fingerprint=dataset.fingerprint,
        attack=config.row_config(eps, seed), eps=eps, seed=EXPLAINER_SEED, n_train=n_train,
        n_heldout=len(x_test), explained_class="predicted", conv_layers=len(layers), condition_layers=depths,
        adversarial_success=float(fooled.double().mean()), captum_maps_per_s=captum_rate, modes=outcomes,
        deviations=DEVIATIONS,
    )
    return ExplainerRun(outcome, heldout, y_test, predicted)


def _epochs(on_epoch: Callable[[str, int, int], None] | None, mode: ExplainMode) -> Callable[[int, int], None] | None:
    return None if on_epoch is None else (lambda epoch, epochs: on_epoch(mode.value, epoch, epochs))


def _captum_rate(model: PreparedModel, x: torch.Tensor, layers: list[torch.nn.Conv2d], batch: int) -> float:
    """Maps per second of computing every layer's Grad-CAM with captum and accumulating it (what a GAN replaces)."""
    classes = predict_logits(model.module, x, batch_size=batch).argmax(1)
    return _rate(lambda: map_set(model.module, x, classes, layers, batch_size=batch), len(x))


def _rate(work: Callable[[], object], count: int, repeats: int = 3) -> float:
    """`count` over the fastest of `repeats` timings of `work` (the least disturbed by other load)."""
    fastest = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        fastest = min(fastest, time.perf_counter() - start)
    return count / fastest


def _mode_outcome(mode: ExplainMode, generator: ExplainerGenerator, seconds: float, trained_now: bool,
                  history: list[dict[str, float]], train_set: Callable[[], MapSet],
                  heldout: dict[str, MapSet], predicted: dict[str, torch.Tensor], depths: list[int], layers: int,
                  batch: int) -> ModeOutcome:
    def held(predict: Callable[[MapSet], torch.Tensor]) -> HeldOut:
        scores = {side: _score(predict(maps), maps.target(mode)) for side, maps in heldout.items()}
        return HeldOut(scores["clean"], scores["adversarial"])

    gan = HeldOut(*(_score(predicted[side], heldout[side].target(mode)) for side in ("clean", "adversarial")))
    train = train_set()
    mean = MeanMap.fit(train.conditions, train.target(mode))
    baselines = {"dataset mean map": held(lambda m: mean.predict(m.images))}
    drops: list[DepthAblation] = []
    if mode.uses_conditions:
        affine = BestAffineMap.fit(train.conditions, train.target(mode))
        pixels = PixelLeastSquares.fit(train.conditions, train.target(mode))
        baselines[f"best single map (c{depths[affine.index] + 1}, affine)"] = held(lambda m: affine.predict(m.conditions))
        baselines["per-pixel least squares"] = held(lambda m: pixels.predict(m.conditions))
        per_side = {side: ablation(generator, maps.images, maps.conditions, maps.target(mode))
                    for side, maps in heldout.items()}
        drops = [DepthAblation(d + 1, layers, per_side["clean"][i], per_side["adversarial"][i])
                 for i, d in enumerate(depths)]
    images, conditions = heldout["clean"].images, heldout["clean"].inputs(mode)
    rate = _rate(lambda: predict_maps(generator, images, conditions, batch_size=batch), len(images))
    return ModeOutcome(mode.value, "shallowest layer's Grad-CAM" if mode.uses_conditions else "final cumulative map",
                       seconds, trained_now, history, gan, baselines, drops, rate)


def _score(predicted: torch.Tensor, target: torch.Tensor) -> Score:
    return Score(mae(predicted, target), mean_ssim(predicted, target))
