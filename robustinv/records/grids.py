"""Sample grids: the example images of one attack at one ε, and what the model said about each."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from robustinv.records.parsing import RecordError


@dataclass(frozen=True, eq=False)
class SampleGrid:
    """Example images of one (model, defense, attack, ε): `draws` rows over the same input columns.

    The attack "clean" (ε 0) holds the unperturbed inputs; every other grid shows the same
    inputs under that attack at its largest ε, one row per candidate (restart or generator draw).
    `images` is uint8, (draws, inputs, C, H, W); the rest is what the model said about each image.
    """

    model: str
    defense: str
    attack: str
    eps: float
    true_labels: tuple[int, ...]  # per input
    predictions: tuple[tuple[int, ...], ...]  # [draw][input]
    confidences: tuple[tuple[float, ...], ...]  # softmax probability of the prediction, [draw][input]
    images: npt.NDArray[np.uint8]

    def meta(self) -> dict[str, Any]:
        """Everything but the images, for JSON (the images go to safetensors)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "images"}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], images: npt.NDArray[Any]) -> SampleGrid:
        """A grid from its JSON form and its images, checked against each other (RecordError when they disagree)."""
        expected = {f.name for f in fields(cls)} - {"images"}
        if set(meta) != expected:
            raise RecordError(f"a sample grid needs exactly the keys {', '.join(sorted(expected))}")
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 5:
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, np.ndarray) else type(images).__name__
            raise RecordError(f"images must be a uint8 array (draws, inputs, C, H, W), got {got}")
        draws, inputs = images.shape[:2]
        texts = [meta[k] for k in ("model", "defense", "attack")]
        eps = meta["eps"]
        labels, predictions, confidences = meta["true_labels"], meta["predictions"], meta["confidences"]
        if not all(isinstance(t, str) for t in texts):
            raise RecordError("model, defense and attack must be strings")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1e6:
            raise RecordError(f"eps must be a non-negative number, got {eps!r}")
        if not _int_list(labels, inputs):
            raise RecordError(f"true_labels must be {inputs} integers, one per input")
        if not (isinstance(predictions, list) and len(predictions) == draws and all(_int_list(p, inputs) for p in predictions)):
            raise RecordError(f"predictions must be {draws} lists of {inputs} integers")
        if not (isinstance(confidences, list) and len(confidences) == draws
                and all(_fraction_list(c, inputs) for c in confidences)):
            raise RecordError(f"confidences must be {draws} lists of {inputs} numbers in [0, 1]")
        return cls(
            model=texts[0], defense=texts[1], attack=texts[2], eps=float(eps), true_labels=tuple(labels),
            predictions=tuple(tuple(p) for p in predictions), confidences=tuple(tuple(c) for c in confidences),
            images=images,
        )


def _int_list(values: Any, length: int) -> bool:
    return (isinstance(values, list) and len(values) == length
            and all(isinstance(v, int) and not isinstance(v, bool) for v in values))


def _fraction_list(values: Any, length: int) -> bool:
    return (isinstance(values, list) and len(values) == length
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values))
