"""A run folder on disk: what `write_run` puts there and `load_run` reads back for re-rendering.

    results.csv / results.json   the result rows (JSON also holds the run's metadata)
    suite.resolved.toml          the suite with every default filled in
    inversion_targets.csv        targeted attacks' (true × target) success cells, when any ran
    samples.json + .safetensors  example images with the model's predictions (no pickle)
    gate.json                    the gate verdict, when a policy was given

Every renderer reads a `StoredRun`; none of them loads a model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustinv.checkpoints import atomic_write
from robustinv.errors import RobustinvError
from robustinv.records import GateLevel, GateVerdict, ResultRow, RuleOutcome, SampleGrid, TargetCell, row_from_dict
from robustinv.runner import RunInfo

RESULTS_JSON = "results.json"
SUITE_TOML = "suite.resolved.toml"
TARGETS_CSV = "inversion_targets.csv"
SAMPLES_JSON = "samples.json"
SAMPLES_TENSORS = "samples.safetensors"
GATE_JSON = "gate.json"


@dataclass(frozen=True)
class StoredRun:
    """Everything a report shows, as stored in (or about to be written to) a run folder."""

    info: RunInfo
    rows: list[ResultRow]
    targets: list[TargetCell]
    grids: list[SampleGrid]
    suite_toml: str
    gate: GateVerdict | None = None


def json_safe(value: Any) -> Any:
    """NaN and infinities have no JSON spelling: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dump_json(payload: Any, path: Path) -> None:
    text = json.dumps(json_safe(payload), indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def write_samples(grids: list[SampleGrid], folder: Path) -> list[Path]:
    """samples.json (what the model said) and samples.safetensors (the images), keyed by position."""
    meta = [grid.meta() for grid in grids]
    tensors = {f"grid{i}": g.images.contiguous() for i, g in enumerate(grids)}
    dump_json(meta, folder / SAMPLES_JSON)
    atomic_write(folder / SAMPLES_TENSORS, lambda tmp: save_file(tensors, str(tmp)))
    return [folder / SAMPLES_JSON, folder / SAMPLES_TENSORS]


def write_gate(verdict: GateVerdict, folder: Path) -> Path:
    dump_json(asdict(verdict), folder / GATE_JSON)
    return folder / GATE_JSON


def load_run(folder: Path) -> StoredRun:
    """Read a run folder written by `robustinv run`; a missing or damaged file is a clear error."""
    if not (folder / RESULTS_JSON).is_file():
        raise RobustinvError(f"{folder}: not a run folder (no {RESULTS_JSON})")
    payload = _read_json(folder / RESULTS_JSON)
    try:
        info = RunInfo(**payload["run"])
        rows = [row_from_dict(record) for record in payload["results"]]
    except (KeyError, TypeError) as exc:
        raise RobustinvError(f"{folder / RESULTS_JSON}: not a robustinv results file ({exc})") from None
    suite_path = folder / SUITE_TOML
    suite_toml = suite_path.read_text(encoding="utf-8") if suite_path.is_file() else ""
    return StoredRun(info, rows, _targets(folder), _grids(folder), suite_toml, load_gate(folder))


def load_gate(folder: Path) -> GateVerdict | None:
    path = folder / GATE_JSON
    if not path.is_file():
        return None
    data = _read_json(path)
    try:
        outcomes = tuple(RuleOutcome(**{**o, "level": GateLevel(o["level"])}) for o in data["outcomes"])
        return GateVerdict(policy=data["policy"], baseline=data.get("baseline"), outcomes=outcomes)
    except (KeyError, TypeError, ValueError) as exc:
        raise RobustinvError(f"{path}: not a robustinv gate file ({exc})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RobustinvError(f"{path}: cannot read ({exc})") from None


def _targets(folder: Path) -> list[TargetCell]:
    path = folder / TARGETS_CSV
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    return [TargetCell(**{f.name: record[f.name] for f in fields(TargetCell)}) for record in frame.to_dict("records")]


def _grids(folder: Path) -> list[SampleGrid]:
    meta_path, tensor_path = folder / SAMPLES_JSON, folder / SAMPLES_TENSORS
    if not meta_path.is_file() or not tensor_path.is_file():
        return []
    meta = _read_json(meta_path)
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError) as exc:
        raise RobustinvError(f"{tensor_path}: cannot read ({exc})") from None
    return [SampleGrid.from_meta(m, tensors[f"grid{i}"]) for i, m in enumerate(meta)]
