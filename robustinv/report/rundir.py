"""A run folder on disk: the records `write_run` stores there and `load_run` reads back for re-rendering.

    results.csv / results.json   the result rows (JSON also holds the run's metadata)
    suite.resolved.toml          the suite with every default filled in
    inversion_targets.csv        targeted attacks' (true × target) success cells, when any ran
    samples.json + .safetensors  example images with the model's predictions (no pickle)
    explanations.json + .safetensors   per attack: Grad-CAM drift per conv layer, example maps
    gate.json                    the gate verdict, when a policy was given; it names the run it judged

The records are serialized in memory (`record_files`), and what the reports render is parsed
back from exactly those bytes (`parse_run`), the way `load_run` reads them from disk later. Every
value read is checked: a hand-edited file with an accuracy of 1.5, `Infinity`, a string where a
number belongs or an unknown column is refused with the file, the entry and the problem, never
rendered or gated. Every renderer reads a `StoredRun`; none of them loads a model.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.numpy import save as save_tensors

from robustinv.records import (
    Explanation, GateLevel, GateVerdict, RecordError, ResultRow, RuleOutcome, RunInfo, RunResult, SampleGrid, TargetCell,
    row_from_dict, row_record,
)
from robustinv.records.columns import Column
from robustinv.records.gate_verdict import Provenance
from robustinv.report.folder_json import RunFolderError, json_bytes, json_object, read_json, read_text
from robustinv.report.image_records import (
    EXPLAIN_JSON, EXPLAIN_TENSORS, SAMPLES_JSON, SAMPLES_TENSORS, parse_explanations, parse_grids,
)
from robustinv.records.tables import rows_frame, targets_frame

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
SUITE_TOML = "suite.resolved.toml"
TARGETS_CSV = "inversion_targets.csv"
GATE_JSON = "gate.json"
RECORD_FILES = (RESULTS_CSV, RESULTS_JSON, SUITE_TOML, TARGETS_CSV, SAMPLES_JSON, SAMPLES_TENSORS, EXPLAIN_JSON,
                EXPLAIN_TENSORS, GATE_JSON)


@dataclass(frozen=True)
class StoredRun:
    """Everything a report shows, as stored in (or about to be written to) a run folder."""

    info: RunInfo
    rows: list[ResultRow]
    targets: list[TargetCell]
    grids: list[SampleGrid]
    suite_toml: str
    gate: GateVerdict | None = None
    explanations: list[Explanation] = field(default_factory=list)


def record_files(result: RunResult, suite_toml: str, verdict: GateVerdict | None) -> dict[str, bytes]:
    """The record files of a run, by name, as bytes."""
    files = {
        RESULTS_CSV: rows_frame(result.rows).to_csv(index=False, float_format="%.10g").encode(),
        RESULTS_JSON: json_bytes({"run": asdict(result.info), "columns": _columns(result),
                                  "results": [row_record(row) for row in result.rows]}),
        SUITE_TOML: suite_toml.encode(),
    }
    if result.targets:
        files[TARGETS_CSV] = targets_frame(result.targets).to_csv(index=False, float_format="%.10g").encode()
    if result.grids:
        files[SAMPLES_JSON] = json_bytes([grid.meta() for grid in result.grids])
        images = {f"grid{i}": np.ascontiguousarray(grid.images) for i, grid in enumerate(result.grids)}
        files[SAMPLES_TENSORS] = save_tensors(images)
    if result.explanations:
        files[EXPLAIN_JSON] = json_bytes([explained.meta() for explained in result.explanations])
        files[EXPLAIN_TENSORS] = save_tensors({
            f"{kind}{i}": np.ascontiguousarray(getattr(explained, kind))
            for i, explained in enumerate(result.explanations) for kind in ("images", "maps")
        })
    if verdict is not None:
        files[GATE_JSON] = gate_bytes(verdict, result.info.run_id)
    return files


def _columns(result: RunResult) -> dict[str, object]:
    """The declarations (type, bounds) of the run's measure columns, so a reader checks them without torch."""
    return {name: column.as_json() for name, column in sorted(result.columns.items())}


def gate_bytes(verdict: GateVerdict, run_id: str) -> bytes:
    """gate.json: the run it judged, the verdict, and whether (and how) the judged rows were verified."""
    return json_bytes({"run_id": run_id, **asdict(verdict), "verified": verdict.verified,
                       "verification": verdict.verification})


def load_run(folder: Path) -> StoredRun:
    """Read and check a run folder written by `robustinv run`; anything missing or wrong is a clear error."""
    if not (folder / RESULTS_JSON).is_file():
        raise RunFolderError(f"{folder}: not a run folder (no {RESULTS_JSON})")
    files = {}
    for name in RECORD_FILES:
        path = folder / name
        if path.is_file():
            try:
                files[name] = path.read_bytes()
            except OSError as exc:
                raise RunFolderError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_run(files, folder)


def parse_run(files: Mapping[str, bytes], folder: Path) -> StoredRun:
    """The StoredRun the record files of `folder` hold, every value checked."""
    info, rows = _results(files[RESULTS_JSON], folder / RESULTS_JSON)
    targets = _targets(files[TARGETS_CSV], folder / TARGETS_CSV) if TARGETS_CSV in files else []
    grids = parse_grids(files.get(SAMPLES_JSON), files.get(SAMPLES_TENSORS), folder)
    explanations = parse_explanations(files.get(EXPLAIN_JSON), files.get(EXPLAIN_TENSORS), folder)
    gate = _gate(files[GATE_JSON], folder / GATE_JSON, info.run_id) if GATE_JSON in files else None
    suite_toml = read_text(files.get(SUITE_TOML, b""), folder / SUITE_TOML)
    return StoredRun(info, rows, targets, grids, suite_toml, gate, explanations)


def _results(data: bytes, path: Path) -> tuple[RunInfo, list[ResultRow]]:
    payload = json_object(read_json(data, path), path, "(top level)")
    unknown = sorted(set(payload) - {"run", "columns", "results"})
    if unknown or "run" not in payload or "results" not in payload:
        problem = f"unknown key {unknown[0]!r}" if unknown else "needs the keys 'run' and 'results'"
        raise RunFolderError(f"{path}: not a robustinv results file ({problem})")
    info = _run_info(json_object(payload["run"], path, "run"), path)
    schema = _schema(payload.get("columns", {}), path)
    results = payload["results"]
    if not isinstance(results, list):
        raise RunFolderError(f"{path}: results: expected a list, got {type(results).__name__}")
    rows = []
    for i, record in enumerate(results):
        try:
            row = row_from_dict(record, schema)
        except RecordError as exc:
            raise RunFolderError(f"{path}: results[{i}].{exc}") from None
        if row.run_id != info.run_id:
            raise RunFolderError(f"{path}: results[{i}].run_id: {row.run_id!r} is not this run ({info.run_id!r})")
        rows.append(row)
    return info, rows


def _schema(declared: Any, path: Path) -> dict[str, Column]:
    """The column declarations results.json holds (older files hold none: their measures take any finite number)."""
    columns = json_object(declared, path, "columns")
    try:
        return {name: Column.from_json(name, data) for name, data in columns.items()}
    except ValueError as exc:
        raise RunFolderError(f"{path}: columns: {exc}") from None


def _run_info(record: dict[str, Any], path: Path) -> RunInfo:
    expected = {f.name: str(f.type) for f in fields(RunInfo)}
    optional = {f.name for f in fields(RunInfo) if f.default is not MISSING or f.default_factory is not MISSING}
    unknown = sorted(set(record) - set(expected))
    if unknown:
        raise RunFolderError(f"{path}: run.{unknown[0]}: unknown key")
    for name, kind in expected.items():
        if name not in record:
            if name in optional:
                continue
            raise RunFolderError(f"{path}: run.{name}: missing")
        value = record[name]
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "dict[str, str]": isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
            "dict[str, list[str]]": isinstance(value, dict) and all(
                isinstance(v, list) and all(isinstance(c, str) for c in v) for v in value.values()),
        }[kind]
        if not ok:
            raise RunFolderError(f"{path}: run.{name}: expected {kind}, got {type(value).__name__}")
    if record["n_eval"] < 1:
        raise RunFolderError(f"{path}: run.n_eval: {record['n_eval']} is below 1")
    return RunInfo(**record)


def _targets(data: bytes, path: Path) -> list[TargetCell]:
    try:
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise RunFolderError(f"{path}: cannot read ({exc})") from None
    columns = [f.name for f in fields(TargetCell)]
    if list(frame.columns) != columns:
        raise RunFolderError(f"{path}: expected the columns {', '.join(columns)}")
    cells = []
    for i, record in enumerate(frame.to_dict("records")):
        try:
            cell = TargetCell(
                model=str(record["model"]), defense=str(record["defense"]), attack=str(record["attack"]),
                eps=_number(record["eps"]), true_label=_integer(record["true_label"]),
                target=_integer(record["target"]), n=_integer(record["n"]), success_rate=_number(record["success_rate"]),
            )
        except (TypeError, ValueError) as exc:
            raise RunFolderError(f"{path}: line {i + 2}: {exc}") from None
        if not 0 <= cell.success_rate <= 1 or cell.n < 1:
            raise RunFolderError(f"{path}: line {i + 2}: success_rate must lie in [0, 1] and n be at least 1")
        cells.append(cell)
    return cells


def _gate(data: bytes, path: Path, run_id: str) -> GateVerdict:
    payload = json_object(read_json(data, path), path, "(top level)")
    if payload.get("run_id") != run_id:
        raise RunFolderError(f"{path}: judged run {payload.get('run_id')!r}, but {RESULTS_JSON} holds run {run_id!r}; "
                             "a run folder holds one run (run `robustinv gate` again)")
    try:
        outcomes = tuple(_outcome(o) for o in payload["outcomes"])
        policy, baseline = payload["policy"], payload.get("baseline")
        if not isinstance(policy, str) or not (baseline is None or isinstance(baseline, str)):
            raise TypeError("policy and baseline must be strings")
        provenance = tuple(_provenance(p) for p in payload.get("provenance", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"{path}: not a robustinv gate file ({exc})") from None
    verdict = GateVerdict(policy=policy, baseline=baseline, outcomes=outcomes, provenance=provenance)
    if payload.get("verified", verdict.verified) is not verdict.verified:
        raise RunFolderError(f"{path}: 'verified' says {payload.get('verified')!r}, but its provenance says "
                             f"{verdict.verified!r}")
    return verdict


def _provenance(record: Any) -> Provenance:
    if not isinstance(record, dict) or set(record) != {f.name for f in fields(Provenance)}:
        raise ValueError("a provenance needs exactly the keys " + ", ".join(f.name for f in fields(Provenance)))
    if not isinstance(record["subject"], str) or not isinstance(record["how"], str) \
            or not isinstance(record["verified"], bool):
        raise TypeError("subject and how must be strings, verified a boolean")
    return Provenance(**record)


def _outcome(record: Any) -> RuleOutcome:
    names = {f.name for f in fields(RuleOutcome)}
    required = {f.name for f in fields(RuleOutcome) if f.default is MISSING}
    if not isinstance(record, dict) or not required <= set(record) <= names:
        raise ValueError("an outcome needs the keys " + ", ".join(sorted(required)) + " (and may have "
                         + ", ".join(sorted(names - required)) + ")")
    decided = record.get("decided_after")
    if decided is not None and (isinstance(decided, bool) or not isinstance(decided, int) or decided < 0):
        raise TypeError("decided_after must be a count or null")
    texts = (record["rule"], record["required"], record["reason"])
    measured = record["measured"]
    if not all(isinstance(t, str) for t in texts) or not isinstance(record["passed"], bool):
        raise TypeError("rule, required and reason must be strings, passed a boolean")
    if isinstance(record["rows"], bool) or not isinstance(record["rows"], int) or record["rows"] < 0:
        raise TypeError("rows must be a count")
    if measured is not None and (isinstance(measured, bool) or not isinstance(measured, (int, float))):
        raise TypeError("measured must be a number or null")
    return RuleOutcome(**{**record, "level": GateLevel(record["level"])})


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)
