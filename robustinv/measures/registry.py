"""The measure registry and what every measure reads: one attack cell seen through the model."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from robustinv.interpret.explained import ExplainedPair
from robustinv.registry import Registry


@dataclass(frozen=True)
class CellView:
    """One cell's inputs and outputs on the CPU; features are None for models that expose none.

    `samples` holds all k candidates (k, N, C, H, W) with their predictions (k, N) and, when
    k > 1, penultimate features (k, N, d); `targets` (k, N) when the attack aimed at classes.
    `explained` holds the attention of a seeded subset of the inputs, clean and adversarial
    (None for models without conv layers, or when the suite's `n_explain` is 0). `grad_evals` is
    the attack's gradient budget per input (NaN when unknown, as for replayed transfer examples).
    """

    x: torch.Tensor
    y: torch.Tensor
    x_adv: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    clean_features: torch.Tensor | None
    adv_features: torch.Tensor | None
    samples: torch.Tensor
    sample_pred: torch.Tensor
    sample_features: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    explained: ExplainedPair | None = None
    grad_evals: float = math.nan


@dataclass(frozen=True)
class Measure:
    """Named columns computed from a `CellView`; a column it cannot compute is NaN."""

    name: str
    columns: tuple[str, ...]
    compute: Callable[[CellView], dict[str, float]]


MEASURES: Registry[Measure] = Registry("measure")


def register_measure(name: str, *, columns: tuple[str, ...]) -> Callable[[Callable[[CellView], dict[str, float]]], Measure]:
    """Register `compute` under `name`; it must return exactly `columns`."""
    def add(compute: Callable[[CellView], dict[str, float]]) -> Measure:
        return MEASURES.register(name)(Measure(name, columns, compute))

    return add


def measure_cell(view: CellView) -> dict[str, Any]:
    """Every registered measure's columns for one cell."""
    found: dict[str, Any] = {}
    for name in MEASURES.names():
        measure = MEASURES.get(name)
        values = measure.compute(view)
        if set(values) != set(measure.columns):
            raise ValueError(f"measure {name!r} returned {sorted(values)}, not its columns {sorted(measure.columns)}")
        found.update(values)
    return found


NAN = math.nan
