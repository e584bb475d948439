"""Per-input outcomes of result rows: which of a row's inputs stayed correctly classified.

A row covers the first `n` eval inputs; its outcome is a bool array of length `n`. The run has
them for every row (the store keeps them with each cell); results.json does not, so checks that
need them work on a file only where rows cover the same inputs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from robustinv.records import ResultRow

RowKey = tuple[str, str, str, str, float]  # model, defense, attack, norm, ε
Outcomes = dict[RowKey, npt.NDArray[np.bool_]]


def row_key(row: ResultRow) -> RowKey:
    return (row.model, row.defense, row.attack, row.norm, row.eps)
