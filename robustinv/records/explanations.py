"""Explanations: what an attack changed in a model's attention, for the report."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from robustinv.records.parsing import RecordError


@dataclass(frozen=True, eq=False)
class Explanation:
    """One (model, defense, attack, ε): how far the attack moved Grad-CAM at each conv layer, and examples.

    `layer_drift` is the mean attribution drift (1 − Spearman's ρ of clean and adversarial maps)
    per conv layer, shallowest first. `images` (2, inputs, C, H, W) holds the same inputs clean
    and adversarial, `maps` (2, inputs, H, W) their final cumulative Grad-CAM map of the true
    class; both uint8 (maps scaled to 0–255).
    """

    model: str
    defense: str
    attack: str
    eps: float
    layer_drift: tuple[float, ...]
    true_labels: tuple[int, ...]
    images: npt.NDArray[np.uint8]
    maps: npt.NDArray[np.uint8]

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays, for JSON (the arrays go to safetensors)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("images", "maps")}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], images: npt.NDArray[Any], maps: npt.NDArray[Any]) -> Explanation:
        """An explanation from its JSON form and arrays, checked against each other (RecordError when they disagree)."""
        expected = {f.name for f in fields(cls)} - {"images", "maps"}
        if set(meta) != expected:
            raise RecordError(f"an explanation needs exactly the keys {', '.join(sorted(expected))}")
        for name, array, ndim in (("images", images, 5), ("maps", maps, 4)):
            if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != ndim or len(array) != 2:
                raise RecordError(f"{name} must be a uint8 array of {ndim} dimensions, clean and adversarial")
        inputs = images.shape[1]
        if maps.shape != (2, inputs, *images.shape[-2:]):
            raise RecordError(f"maps {tuple(maps.shape)} do not fit images {tuple(images.shape)}")
        texts = [meta[k] for k in ("model", "defense", "attack")]
        drift, labels, eps = meta["layer_drift"], meta["true_labels"], meta["eps"]
        if not all(isinstance(t, str) for t in texts):
            raise RecordError("model, defense and attack must be strings")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1e6:
            raise RecordError(f"eps must be a non-negative number, got {eps!r}")
        if not (isinstance(drift, list) and drift and all(_drift_value(d) for d in drift)):
            raise RecordError("layer_drift must be a list of numbers in [0, 2], one per conv layer")
        if not (isinstance(labels, list) and len(labels) == inputs
                and all(isinstance(v, int) and not isinstance(v, bool) for v in labels)):
            raise RecordError(f"true_labels must be {inputs} integers, one per input")
        return cls(texts[0], texts[1], texts[2], float(eps), tuple(float(d) for d in drift), tuple(labels),
                   images, maps)


def _drift_value(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 2
