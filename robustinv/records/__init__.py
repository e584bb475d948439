"""Typed records of a run: result rows, target cells, sample grids, explanations, cells and gate verdicts; numbers stay numbers.

Arrays here are numpy, never torch: the store, the gate and every report read these records
without importing torch. Each kind lives in its own module; import them from here.
"""

from robustinv.records.cells import STORED_KINDS, AttentionResult, CellKind, CellResult
from robustinv.records.explanations import Explanation
from robustinv.records.gate_verdict import GateLevel, GateVerdict, RuleOutcome
from robustinv.records.grids import SampleGrid
from robustinv.records.parsing import RecordError, row_from_dict
from robustinv.records.rows import (
    CLEAN, COLUMNS, GUARD_SUFFIXES, INTERVAL_COLUMNS, INTERVAL_METRICS, TIMING_COLUMNS, WORST_CASE, ResultRow,
    TargetCell, json_safe, model_label, reserved_label_problem, row_record, rows_digest,
)
from robustinv.records.runs import RunInfo, RunResult

__all__ = [
    "AttentionResult", "CLEAN", "COLUMNS", "GUARD_SUFFIXES", "INTERVAL_COLUMNS", "INTERVAL_METRICS", "STORED_KINDS", "TIMING_COLUMNS",
    "WORST_CASE", "CellKind", "CellResult", "Explanation", "GateLevel", "GateVerdict", "RecordError", "ResultRow", "RuleOutcome",
    "RunInfo", "RunResult", "SampleGrid", "TargetCell", "json_safe", "model_label", "reserved_label_problem", "row_from_dict",
    "row_record", "rows_digest",
]
