"""The measure registry and what every measure reads: one attack cell seen through the model.

A measure declares its columns beside its function (`robustinv.records.columns.Column`: type,
bounds, how input ranges combine); a bare name declares a float column without bounds. Attack
measures read an attack cell's `CellView`; attention measures (`attention=True`) read the
explained inputs of an attention cell, which runs after the attack cell it explains, so that
explaining more inputs never recomputes an attack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from robustinv.interpret.explained import ExplainedPair
from robustinv.records.columns import Column
from robustinv.registry import Registry


@dataclass(frozen=True)
class CellView:
    """One cell's inputs and outputs on the CPU; features are None for models that expose none.

    `samples` holds all k candidates (k, N, C, H, W) with their predictions (k, N) and, when
    k > 1, penultimate features (k, N, d); `targets` (k, N) when the attack aimed at classes.
    `grad_evals` is the attack's nominal gradient budget per input (NaN when unknown, as for
    replayed transfer examples); `forward_passes` and `backward_passes` what it cost, counted:
    images through the model (and back) per input.
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
    grad_evals: float = math.nan
    forward_passes: float = math.nan
    backward_passes: float = math.nan


@dataclass(frozen=True)
class Measure:
    """Named columns computed from a `CellView` (or, for attention measures, an `ExplainedPair`); NaN when not computable."""

    name: str
    columns: tuple[Column, ...]
    compute: Callable[[Any], dict[str, float]]
    attention: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


MEASURES: Registry[Measure] = Registry("measure")


def register_measure(name: str, *, columns: tuple[str | Column, ...], attention: bool = False
                     ) -> Callable[[Callable[[Any], dict[str, float]]], Measure]:
    """Register `compute` under `name`; it must return exactly `columns`.

    Registering the same function again (a module imported twice) is a no-op; another function
    under a taken name raises.
    """
    declared = tuple(c if isinstance(c, Column) else Column(c) for c in columns)

    def add(compute: Callable[[Any], dict[str, float]]) -> Measure:
        measure = Measure(name, declared, compute, attention)
        if name in MEASURES:
            existing = MEASURES.get(name)
            if _same_function(existing.compute, compute) and existing.columns == declared:
                return existing
        return MEASURES.register(name)(measure)

    return add


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == \
        (getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def schema() -> dict[str, Column]:
    """Every registered measure's column declarations, by column name."""
    return {column.name: column for name in MEASURES.names() for column in MEASURES.get(name).columns}


def measure_cell(view: CellView) -> dict[str, Any]:
    """Every attack measure's columns for one cell (attention measures come from attention cells)."""
    return _measured(view, attention=False)


def measure_attention(pair: ExplainedPair | None) -> dict[str, Any]:
    """Every attention measure's columns for the explained inputs of one cell; NaN when nothing was explained."""
    return _measured(pair, attention=True)


def attention_columns() -> tuple[str, ...]:
    return tuple(c for name in MEASURES.names() if MEASURES.get(name).attention for c in MEASURES.get(name).names)


def _measured(subject: Any, *, attention: bool) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in MEASURES.names():
        measure = MEASURES.get(name)
        if measure.attention != attention:
            continue
        values = measure.compute(subject)
        if set(values) != set(measure.names):
            raise ValueError(f"measure {name!r} returned {sorted(values)}, not its columns {sorted(measure.names)}")
        found.update(values)
    return found


NAN = math.nan
