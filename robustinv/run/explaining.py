"""The attention part of an attack cell: which inputs are explained, and what the cell keeps of them.

Every attack cell explains the same seeded subset of the eval inputs (`n_explain` of them):
Grad-CAM of the true class at every conv layer, clean and adversarial, and the last conv
layer's neurons. The clean side depends only on the model, so a worker computes it once per model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from robustinv.interpret import Explained, ExplainedPair, conv_layers, explain
from robustinv.interpret.agreement import attribution_drift
from robustinv.models import PreparedModel
from robustinv.records import Explanation
from robustinv.run import setting as workspace
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.runtime import derive_seed


def explain_indices(n_eval: int, n: int, n_explain: int, seed: int) -> torch.Tensor:
    """Sorted indices (all < n) of a seeded subset of the eval inputs: the same for every cell of equal n."""
    order = torch.randperm(n_eval, generator=torch.Generator().manual_seed(derive_seed(seed, "explain")))
    return order[order < n][:n_explain].sort().values


def explained_pair(setting: RunSetting, spec: CellSpec, model: PreparedModel, x_adv: torch.Tensor) -> ExplainedPair | None:
    """The explained subset of the cell's inputs, clean and adversarial; None without conv layers or when off."""
    if setting.suite.explained == 0:
        return None
    x, y = workspace.eval_set(setting)
    layers = conv_layers(model.module, tuple(x.shape[1:]))  # type: ignore[arg-type]
    if not layers:
        return None
    indices = explain_indices(len(y), len(x_adv), setting.suite.explained, setting.suite.seed)
    ref = spec.model
    clean = _clean(setting, ref.entry, ref.defense, ref.fingerprint, tuple(indices.tolist()))
    adversarial = explain(model.module, x_adv[indices], y[indices], layers, batch_size=setting.suite.eval_batch_size)
    return ExplainedPair(y[indices], clean, adversarial)


def explanation(setting: RunSetting, spec: CellSpec, pair: ExplainedPair, x_adv: torch.Tensor,
                shown: int) -> Explanation:
    """What the report shows of a cell's attention: drift per conv layer, and the first `shown` explained inputs."""
    x, y = workspace.eval_set(setting)
    indices = explain_indices(len(y), len(x_adv), setting.suite.explained, setting.suite.seed)[:shown]
    drift = attribution_drift(pair.clean.layer_maps, pair.adversarial.layer_maps).mean(1)
    images = torch.stack([x[indices], x_adv[indices]])
    maps = torch.stack([pair.clean.final[:shown], pair.adversarial.final[:shown]])
    ref = spec.model
    return Explanation(
        model=ref.name, defense=ref.defense, attack=spec.label, eps=spec.eps,
        layer_drift=tuple(float(d) for d in drift), true_labels=tuple(int(v) for v in y[indices]),
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
