"""Machine-readable outputs rendered from result records: results.csv and results.json."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pandas as pd

from robustinv.checkpoints import atomic_write
from robustinv.records import COLUMNS, ResultRow, TargetCell
from robustinv.runner import RunResult


def rows_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """One row per record, stable column order; flags as `a;b`, config as a JSON object."""
    records = []
    for row in rows:
        record = asdict(row)
        record["flags"] = ";".join(row.flags)
        record["config"] = json.dumps(row.config, sort_keys=True)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def write_csv(rows: list[ResultRow], path: Path) -> None:
    frame = rows_frame(rows)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def _json_safe(value: Any) -> Any:
    """NaN and infinities have no JSON spelling: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_targets_csv(cells: list[TargetCell], path: Path) -> None:
    """The targeted attacks' (true × target) success matrices, one line per cell (tidy form)."""
    frame = pd.DataFrame.from_records([asdict(cell) for cell in cells], columns=[f.name for f in fields(TargetCell)])
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def write_json(result: RunResult, path: Path) -> None:
    payload = {"run": asdict(result.info), "results": [asdict(row) for row in result.rows]}
    text = json.dumps(_json_safe(payload), indent=2, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
