"""Tidy CSV outputs rendered from result records: results.csv and inversion_targets.csv."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd

from robustinv.checkpoints import atomic_write
from robustinv.records import COLUMNS, ResultRow, TargetCell, row_record


def rows_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """One row per record, stable column order (Wilson bounds beside the accuracies); flags as `a;b`, config as JSON."""
    records = []
    for row in rows:
        record = row_record(row)
        record["flags"] = ";".join(row.flags)
        record["config"] = json.dumps(row.config, sort_keys=True)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def write_csv(rows: list[ResultRow], path: Path) -> None:
    frame = rows_frame(rows)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def write_targets_csv(cells: list[TargetCell], path: Path) -> None:
    """The targeted attacks' (true × target) success matrices, one line per cell (tidy form)."""
    frame = pd.DataFrame.from_records([asdict(cell) for cell in cells], columns=[f.name for f in fields(TargetCell)])
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))
