"""A cell as the store keeps it: its columns in the `cells` table, its arrays in a safetensors file.

Arrays (which inputs stayed correct, the adversarial examples that the guard's transfer cells
replay and the explain cells explain, sample-grid images) go to one safetensors file per cell under the run's output folder,
`OUT/cells/<cell key>.safetensors`, written atomically before the cell's row is committed; the row
records the path relative to OUT and the SHA-256 of the file's bytes. A resumed run reuses an
artifact only when its bytes still have that digest and its arrays fit the row (one per-input
outcome for each of the row's `n` inputs): a truncated, edited or swapped file, or a cell of an
older store that recorded no digest, is computed again. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError
from safetensors.numpy import load, save

from robustinv.files import atomic_write
from robustinv.records import CellKind, CellResult, SampleGrid, TargetCell, row_from_dict
from robustinv.records.columns import Column
from robustinv.store.database import StoreError, reason

log = logging.getLogger(__name__)

CELLS_DIR = "cells"  # artifacts, relative to a run's output folder


def write_artifact(out_dir: Path, key: str, result: CellResult) -> tuple[str, str]:
    """Write the cell's arrays under `out_dir` (atomically); returns their path relative to it and their digest."""
    tensors = {"robust": np.ascontiguousarray(result.robust, dtype=np.uint8)}
    if result.x_adv is not None:
        tensors["x_adv"] = np.ascontiguousarray(result.x_adv)
    if result.grid is not None:
        tensors["grid_images"] = np.ascontiguousarray(result.grid.images)
    relative = f"{CELLS_DIR}/{key}.safetensors"
    data = save(tensors)
    try:
        atomic_write(out_dir / relative, lambda tmp: tmp.write_bytes(data))
    except OSError as exc:
        raise StoreError(f"cannot write cell artifact {out_dir / relative}: {reason(exc)}") from None
    return relative, _digest(data)


CELL_COLUMNS = ("run_id", "cell_key", "kind", "model", "defense", "attack", "norm", "eps", "clean_acc", "robust_acc",
                "row_json", "targets_json", "grid_json", "artifact", "committed", "artifact_digest")
INSERT_CELL = (f"INSERT OR REPLACE INTO cells ({', '.join(CELL_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in CELL_COLUMNS)})")


def cell_columns(
    run_id: str, key: str, kind: CellKind, result: CellResult, *, artifact: tuple[str, str], committed: str
) -> tuple[Any, ...]:
    """The values of the cell's row in the `cells` table, in the order of `CELL_COLUMNS`."""
    row = result.row
    grid_json = None if result.grid is None else json.dumps(result.grid.meta())
    path, digest = artifact
    return (run_id, key, kind.value, row.model, row.defense, row.attack, row.norm, row.eps,
            _real(row.clean_acc), _real(row.robust_acc), json.dumps(asdict(row)),
            json.dumps([asdict(cell) for cell in result.targets]), grid_json, path, committed, digest)


def cell_from_row(found: sqlite3.Row, schema: Mapping[str, Column] | None = None) -> CellResult | None:
    """The cell a `cells` row holds (joined with its run's `out_dir`), or None when it must be computed again.

    None, with a warning, when its artifact is gone, unreadable, not the file that was committed
    (another digest) or holds arrays that do not fit the row, or its record does not fit this version.
    """
    key = found["cell_key"]
    if found["artifact"] is None:
        log.warning("cell %s: the store records no artifact for it; computing it again", key)
        return None
    path = Path(found["out_dir"]) / found["artifact"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("cell %s: cannot read %s (%s); computing it again", key, path, reason(exc))
        return None
    recorded = found["artifact_digest"]
    if recorded is None:
        log.warning("cell %s: committed by an older robustinv without a digest of %s; computing it again", key, path)
        return None
    if _digest(data) != recorded:
        log.warning("cell %s: %s is not the file committed with the cell (changed, truncated or replaced since); "
                    "computing it again", key, path)
        return None
    try:
        tensors = load(data)
    except (SafetensorError, KeyError, TypeError) as exc:  # the last two: a dtype numpy lacks
        log.warning("cell %s: cannot read %s (%s); computing it again", key, path, reason(exc))
        return None
    try:
        result = _cell_result(found, tensors, schema)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("cell %s: stored record does not fit this version (%s); computing it again", key, exc)
        return None
    problem = _misfit(result, tensors)
    if problem is not None:
        log.warning("cell %s: %s %s; computing it again", key, path, problem)
        return None
    return result


def _misfit(result: CellResult, tensors: dict[str, npt.NDArray[Any]]) -> str | None:
    """Why the cell's arrays do not fit its row, or None: one outcome per evaluated input, examples of them."""
    n, robust = result.row.n, tensors["robust"]
    if robust.ndim != 1 or len(robust) != n:
        return f"holds {robust.shape} per-input outcomes for a row of n = {n}"
    if robust.dtype != np.uint8 or bool((robust > 1).any()):
        return "holds per-input outcomes that are not 0 or 1"
    x_adv = result.x_adv
    if x_adv is not None and (x_adv.dtype != np.float32 or x_adv.ndim != 4 or len(x_adv) != n):
        return f"holds adversarial examples of shape {x_adv.shape} ({x_adv.dtype}) for a row of n = {n}"
    return None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cell_result(found: sqlite3.Row, tensors: dict[str, npt.NDArray[Any]],
                 schema: Mapping[str, Column] | None) -> CellResult:
    grid_json = found["grid_json"]
    grid = None if grid_json is None else SampleGrid.from_meta(json.loads(grid_json), tensors["grid_images"])
    row = row_from_dict(json.loads(found["row_json"]), schema)
    return CellResult(
        row=row,
        robust=tensors["robust"].astype(np.bool_),
        targets=tuple(TargetCell(**cell) for cell in json.loads(found["targets_json"])),
        grid=grid,
        x_adv=tensors.get("x_adv"),
    )


def _real(value: float) -> float | None:
    return value if math.isfinite(value) else None
