"""Cells: the kinds of work a run is split into, and what a finished cell hands on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from robustinv.records.explanations import Explanation
from robustinv.records.grids import SampleGrid
from robustinv.records.rows import ResultRow, TargetCell


class CellKind(str, Enum):
    """What a cell of a run computes; only the `STORED_KINDS` are committed to the results store."""

    attack = "attack"  # a suite attack at one ε
    guard = "guard"  # the guard's stronger PGD
    transfer = "transfer"  # the guard's transfer attack from a standard surrogate
    explain = "explain"  # where an attack cell's examples moved the model's attention
    prepare = "prepare"  # prepare (load or train) a model
    train = "train"  # train an attack's generator


# The kinds the results store keeps (its `cells.kind` CHECK constraint lists exactly these).
STORED_KINDS: frozenset[CellKind] = frozenset({CellKind.attack, CellKind.guard, CellKind.transfer})


@dataclass(frozen=True, eq=False)
class CellResult:
    """Everything later steps need from a finished cell.

    `row` carries no run-level flags (sanity checks and the guard add them over all rows);
    `robust` (bool, one per evaluated input) says whether the model stayed correct, what the
    worst case combines; `x_adv` (float32) holds the adversarial examples, which the guard's
    transfer cells replay and the explain cells explain.
    """

    row: ResultRow
    robust: npt.NDArray[np.bool_]
    targets: tuple[TargetCell, ...] = ()
    grid: SampleGrid | None = None
    x_adv: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True, eq=False)
class AttentionResult:
    """An explain cell's result: the attention measures of the cell it explains, and (grid cells) what the report shows."""

    measures: dict[str, float]
    explanation: Explanation | None = None
