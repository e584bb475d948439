"""A cell as the store keeps it: its columns in the `cells` table, its arrays in a safetensors file.

Arrays (which inputs stayed correct, adversarial examples the guard reuses, sample-grid images,
explanation maps) go to one safetensors file per cell under the run's output folder,
`OUT/cells/<cell key>.safetensors`, written atomically before the cell's row is committed; the row records the path relative to OUT.
Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from robustinv.files import atomic_write
from robustinv.records import (
    CellKind, CellResult, Explanation, ResultRow, SampleGrid, TargetCell, row_from_dict,
)
from robustinv.store.database import StoreError, reason

log = logging.getLogger(__name__)

CELLS_DIR = "cells"  # artifacts, relative to a run's output folder


def write_artifact(out_dir: Path, key: str, result: CellResult) -> str:
    """Write the cell's arrays under `out_dir` (atomically); returns their path relative to it."""
    tensors = {"robust": np.ascontiguousarray(result.robust, dtype=np.uint8)}
    if result.x_adv is not None:
        tensors["x_adv"] = np.ascontiguousarray(result.x_adv)
    if result.grid is not None:
        tensors["grid_images"] = np.ascontiguousarray(result.grid.images)
    if result.explanation is not None:
        explained = result.explanation
        tensors["explain_images"] = np.ascontiguousarray(explained.images)
        tensors["explain_maps"] = np.ascontiguousarray(explained.maps)
        tensors["explain_layer_drift"] = np.asarray(explained.layer_drift, dtype=np.float64)
        tensors["explain_labels"] = np.asarray(explained.true_labels, dtype=np.int64)
    relative = f"{CELLS_DIR}/{key}.safetensors"
    try:
        atomic_write(out_dir / relative, lambda tmp: save_file(tensors, str(tmp)))
    except OSError as exc:
        raise StoreError(f"cannot write cell artifact {out_dir / relative}: {reason(exc)}") from None
    return relative


def cell_columns(
    run_id: str, key: str, kind: CellKind, result: CellResult, *, artifact: str, committed: str
) -> tuple[Any, ...]:
    """The values of the cell's row in the `cells` table, in column order."""
    row = result.row
    grid_json = None if result.grid is None else json.dumps(result.grid.meta())
    return (run_id, key, kind.value, row.model, row.defense, row.attack, row.norm, row.eps,
            _real(row.clean_acc), _real(row.robust_acc), json.dumps(asdict(row)),
            json.dumps([asdict(cell) for cell in result.targets]), grid_json, artifact, committed)


def cell_from_row(found: sqlite3.Row) -> CellResult | None:
    """The cell a `cells` row holds (joined with its run's `out_dir`), or None when it must be computed again.

    None when its artifact is gone or unreadable, or its record does not fit this version.
    """
    key = found["cell_key"]
    tensors: dict[str, npt.NDArray[Any]] = {}
    if found["artifact"] is not None:
        path = Path(found["out_dir"]) / found["artifact"]
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, KeyError, TypeError) as exc:  # the last two: a dtype numpy lacks
            log.warning("cell %s: cannot read %s (%s); computing it again", key, path, reason(exc))
            return None
    try:
        return _cell_result(found, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("cell %s: stored record does not fit this version (%s); computing it again", key, exc)
        return None


def _cell_result(found: sqlite3.Row, tensors: dict[str, npt.NDArray[Any]]) -> CellResult:
    grid_json = found["grid_json"]
    grid = None if grid_json is None else SampleGrid.from_meta(json.loads(grid_json), tensors["grid_images"])
    row = row_from_dict(json.loads(found["row_json"]))
    return CellResult(
        row=row,
        robust=tensors["robust"].astype(np.bool_),
        targets=tuple(TargetCell(**cell) for cell in json.loads(found["targets_json"])),
        grid=grid,
        x_adv=tensors.get("x_adv"),
        explanation=_explanation(row, tensors) if "explain_maps" in tensors else None,
    )


def _explanation(row: ResultRow, tensors: dict[str, npt.NDArray[Any]]) -> Explanation:
    meta = {"model": row.model, "defense": row.defense, "attack": row.attack, "eps": row.eps,
            "layer_drift": [float(v) for v in tensors["explain_layer_drift"]],
            "true_labels": [int(v) for v in tensors["explain_labels"]]}
    return Explanation.from_meta(meta, tensors["explain_images"], tensors["explain_maps"])  # RecordError: a ValueError


def _real(value: float) -> float | None:
    return value if math.isfinite(value) else None
