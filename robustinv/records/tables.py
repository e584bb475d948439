"""Tidy tables of result records: results.csv and inversion_targets.csv (pandas, no torch)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import pandas as pd

from robustinv.records.rows import COLUMNS, ResultRow, TargetCell, row_record


def rows_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """One row per record, stable column order (Wilson bounds beside the accuracies); flags as `a;b`, config as JSON.

    The columns of registered measures that are not fixed fields follow the fixed columns, by name.
    """
    records = []
    for row in rows:
        record = row_record(row)
        record["flags"] = ";".join(row.flags)
        record["config"] = json.dumps(row.config, sort_keys=True)
        record.update(record.pop("measures"))
        records.append(record)
    measures = sorted({name for row in rows for name in row.measures})
    return pd.DataFrame.from_records(records, columns=[c for c in COLUMNS if c != "measures"] + measures)


def targets_frame(cells: list[TargetCell]) -> pd.DataFrame:
    """The targeted attacks' (true × target) success matrices, one line per cell (tidy form)."""
    return pd.DataFrame.from_records([asdict(cell) for cell in cells], columns=[f.name for f in fields(TargetCell)])
