"""The explain cell: which of an attack cell's inputs are explained, and what attention measures and the report get.

Every explain cell explains the same seeded subset of the eval inputs (`n_explain` of them,
among those its attack cell attacked): Grad-CAM of the true class at every conv layer, clean and
adversarial, and the last conv layer's neurons. The clean side depends only on the model, so a
process computes it once per model and subset.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from robustinv.interpret import Explained, ExplainedPair, conv_layers, explain
from robustinv.interpret.agreement import attribution_drift
from robustinv.measures import measure_attention
from robustinv.models import PreparedModel
from robustinv.records import AttentionResult, Explanation
from robustinv.run import setting as workspace
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.runtime import derive_seed


def explain_indices(n_eval: int, start: int, stop: int, n_explain: int, seed: int) -> torch.Tensor:
    """Sorted indices (in [start, stop)) of a seeded subset of the eval inputs: the same for every cell of equal range."""
    order = torch.randperm(n_eval, generator=torch.Generator().manual_seed(derive_seed(seed, "explain")))
    return order[(order >= start) & (order < stop)][:n_explain].sort().values


def attention(setting: RunSetting, spec: CellSpec, model: PreparedModel, x_adv: torch.Tensor,
              shown: int) -> AttentionResult:
    """The attention measures of the cell's explained inputs, and for grid cells the first `shown` of them."""
    pair, indices = _explained_pair(setting, spec, model, x_adv)
    measures = {name: float(value) for name, value in measure_attention(pair).items()}
    if pair is None or not spec.grid:
        return AttentionResult(measures)
    return AttentionResult(measures, _explanation(setting, spec, pair, indices, x_adv, shown))


def _explained_pair(setting: RunSetting, spec: CellSpec, model: PreparedModel, x_adv: torch.Tensor
                    ) -> tuple[ExplainedPair | None, torch.Tensor]:
    """The explained subset of the cell's inputs, clean and adversarial; None without conv layers."""
    x, y = workspace.eval_set(setting)
    indices = explain_indices(len(y), spec.inputs.start, spec.inputs.stop, spec.explained, setting.suite.seed)
    layers = conv_layers(model.module, tuple(x.shape[1:]))  # type: ignore[arg-type]
    if not layers or not len(indices):
        return None, indices
    ref = spec.model
    clean = _clean(setting, ref.entry, ref.defense, ref.fingerprint, tuple(indices.tolist()))
    adversarial = explain(model.module, x_adv[indices - spec.inputs.start], y[indices], layers,
                          batch_size=setting.suite.eval_batch_size)
    return ExplainedPair(y[indices], clean, adversarial), indices


def _explanation(setting: RunSetting, spec: CellSpec, pair: ExplainedPair, indices: torch.Tensor,
                 x_adv: torch.Tensor, shown: int) -> Explanation:
    """What the report shows of a cell's attention: drift per conv layer, and the first `shown` explained inputs."""
    x, y = workspace.eval_set(setting)
    first = indices[:shown]
    drift = attribution_drift(pair.clean.layer_maps, pair.adversarial.layer_maps).mean(1)
    images = torch.stack([x[first], x_adv[first - spec.inputs.start]])
    maps = torch.stack([pair.clean.final[:shown], pair.adversarial.final[:shown]])
    ref = spec.model
    return Explanation(
        model=ref.name, defense=ref.defense, attack=spec.label, eps=spec.eps,
        layer_drift=tuple(float(d) for d in drift), true_labels=tuple(int(v) for v in y[first]),
        images=_bytes(images), maps=_bytes(maps),
    )


def _bytes(values: torch.Tensor) -> np.ndarray:
    return (values.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@lru_cache(maxsize=4)
def _clean(setting: RunSetting, entry: int, defense: str, fingerprint: str, indices: tuple[int, ...]) -> Explained:
    x, y = workspace.eval_set(setting)
    model = workspace.model(setting, entry, defense, fingerprint)
    chosen = torch.tensor(indices, dtype=torch.long)
    layers = conv_layers(model.module, tuple(x.shape[1:]))  # type: ignore[arg-type]
    return explain(model.module, x[chosen], y[chosen], layers, batch_size=setting.suite.eval_batch_size)
