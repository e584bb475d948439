"""Typed records of a run: result rows, target cells, sample grids and gate verdicts; numbers stay numbers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any

import torch

from robustinv.metrics import wilson_interval


WORST_CASE = "worst_case"  # the attack name of the per-input worst case over every attack at one ε


@dataclass(frozen=True)
class ResultRow:
    run_id: str
    dataset: str
    model: str
    defense: str
    attack: str
    norm: str
    eps: float
    n: int
    clean_acc: float
    robust_acc: float
    success_rate: float
    mean_linf: float
    max_linf: float
    mean_l2: float
    max_l2: float
    seconds: float
    samples_per_s: float
    train_seconds: float
    samples_per_input: int
    candidate_success: float
    diversity_cos: float
    diversity_l2: float
    target_success: float
    feature_consistency: float
    flags: tuple[str, ...]
    config: dict[str, Any]
    seed: int
    model_fingerprint: str
    dataset_fingerprint: str
    model_source: str
    model_train_seconds: float

    @property
    def clean_acc_low(self) -> float:
        return wilson_interval(self.clean_acc, self.n)[0]

    @property
    def clean_acc_high(self) -> float:
        return wilson_interval(self.clean_acc, self.n)[1]

    @property
    def robust_acc_low(self) -> float:
        return wilson_interval(self.robust_acc, self.n)[0]

    @property
    def robust_acc_high(self) -> float:
        return wilson_interval(self.robust_acc, self.n)[1]

    def interval(self, metric: str) -> tuple[float, float]:
        """The Wilson 95% interval of `clean_acc` or `robust_acc`."""
        return wilson_interval(getattr(self, metric), self.n)


# Wilson 95% bounds of the accuracies: derived from the row (never stored), written beside it in CSV and JSON.
INTERVAL_COLUMNS: tuple[str, ...] = ("clean_acc_low", "clean_acc_high", "robust_acc_low", "robust_acc_high")
INTERVAL_METRICS: frozenset[str] = frozenset({"clean_acc", "robust_acc"})


def row_record(row: ResultRow) -> dict[str, Any]:
    """A row as a JSON-ready dict: its fields, then its derived interval columns."""
    record = asdict(row)
    return {name: record[name] if name in record else getattr(row, name) for name in COLUMNS}


@dataclass(frozen=True)
class TargetCell:
    """One (true, target) cell of a targeted attack's success matrix."""

    model: str
    defense: str
    attack: str
    eps: float
    true_label: int
    target: int
    n: int
    success_rate: float


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
_AFTER_ROBUST = _FIELDS.index("robust_acc") + 1
COLUMNS: tuple[str, ...] = _FIELDS[:_AFTER_ROBUST] + INTERVAL_COLUMNS + _FIELDS[_AFTER_ROBUST:]
_FLOAT_COLUMNS = frozenset(f.name for f in fields(ResultRow) if f.type == "float")
TIMING_COLUMNS: frozenset[str] = frozenset(
    {"run_id", "seconds", "samples_per_s", "train_seconds", "model_train_seconds"}
)


def row_from_dict(record: dict[str, Any]) -> ResultRow:
    """A row from its JSON form: null numbers (JSON has no NaN) back to NaN, the flag list to a tuple."""
    values: dict[str, Any] = {
        name: math.nan if name in _FLOAT_COLUMNS and value is None else value for name, value in record.items()
        if name not in INTERVAL_COLUMNS  # derived from the row, recomputed rather than trusted
    }
    values["flags"] = tuple(values.get("flags", ()))
    return ResultRow(**values)


@dataclass(frozen=True, eq=False)
class SampleGrid:
    """Example images of one (model, defense, attack, ε): `draws` rows over the same input columns.

    The attack "clean" (ε 0) holds the unperturbed inputs; every other grid shows the same
    inputs under that attack at its largest ε, one row per candidate (restart or generator draw).
    `images` is uint8, (draws, inputs, C, H, W); the rest is what the model said about each image.
    """

    model: str
    defense: str
    attack: str
    eps: float
    true_labels: tuple[int, ...]  # per input
    predictions: tuple[tuple[int, ...], ...]  # [draw][input]
    confidences: tuple[tuple[float, ...], ...]  # softmax probability of the prediction, [draw][input]
    images: torch.Tensor

    def meta(self) -> dict[str, Any]:
        """Everything but the images, for JSON (the images go to safetensors)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "images"}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], images: torch.Tensor) -> SampleGrid:
        return cls(
            model=meta["model"], defense=meta["defense"], attack=meta["attack"], eps=float(meta["eps"]),
            true_labels=tuple(meta["true_labels"]), predictions=tuple(tuple(p) for p in meta["predictions"]),
            confidences=tuple(tuple(c) for c in meta["confidences"]), images=images,
        )


class GateLevel(str, Enum):
    fail = "fail"
    warn = "warn"


@dataclass(frozen=True)
class RuleOutcome:
    """One gate rule checked against the results (and the baseline): a JUnit testcase."""

    rule: str  # a one-line statement of the rule, e.g. "robust_acc >= 0.8 [attack=pgd, eps=0.3]"
    level: GateLevel
    passed: bool
    measured: float | None  # the deciding value (worst matching row), None when there was none
    required: str  # what was required, e.g. ">= 0.8" or "drop <= 2 points vs baseline"
    reason: str  # one line: why it passed or failed, naming the deciding row
    rows: int  # how many result rows the rule matched


@dataclass(frozen=True)
class GateVerdict:
    """The outcome of a policy: passes unless a `fail`-level rule failed."""

    policy: str
    baseline: str | None
    outcomes: tuple[RuleOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed or o.level is GateLevel.warn for o in self.outcomes)

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed and o.level is GateLevel.fail)

    @property
    def warnings(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed and o.level is GateLevel.warn)
