"""Typed records of a run: result rows, target cells, sample grids and gate verdicts; numbers stay numbers."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robustinv.metrics import wilson_interval


WORST_CASE = "worst_case"  # the attack name of the per-input worst case over every attack at one ε
CLEAN = "clean"  # the attack name of the unperturbed sample grid
# Row names the gradient-masking guard derives from the suite PGD's label: `pgd-guard`, `pgd-transfer`, ….
GUARD_SUFFIXES: tuple[str, ...] = ("-guard", "-transfer", "-unbounded")


def reserved_label_problem(label: str) -> str | None:
    """Why an attack label would collide with a row the harness names itself; None when it is free."""
    if label in (CLEAN, WORST_CASE):
        return f"{label!r} is the name of robustinv's own {'clean sample' if label == CLEAN else 'worst-case'} row"
    suffix = next((s for s in GUARD_SUFFIXES if label.endswith(s)), None)
    if suffix is not None:
        return f"labels ending in {suffix!r} name the gradient-masking guard's rows"
    return None


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
TIMING_COLUMNS: frozenset[str] = frozenset(
    {"run_id", "seconds", "samples_per_s", "train_seconds", "model_train_seconds"}
)


class RecordError(ValueError):
    """A stored record that does not hold what its type says: a wrong type, a value out of range, a bad key."""


# Where each numeric column may lie; NaN (stored as null) is allowed except where `_REQUIRED` says otherwise.
_FRACTIONS = ("clean_acc", "robust_acc", "success_rate", "candidate_success", "target_success")
_COSINES = ("diversity_cos", "feature_consistency")
_BOUNDS: dict[str, tuple[float, float]] = {
    **{name: (0.0, 1.0) for name in _FRACTIONS},
    **{name: (-1.0 - 1e-6, 1.0 + 1e-6) for name in _COSINES},
}
_REQUIRED = frozenset({"eps", "clean_acc", "robust_acc"})  # never NaN in a real row
_INT_MINIMUM = {"n": 1, "samples_per_input": 1, "seed": 0}


def row_from_dict(record: Any) -> ResultRow:
    """A row from its JSON form, every value checked; null numbers (JSON has no NaN) become NaN.

    Refuses (RecordError, naming the column) an unknown or missing column, a value of the wrong
    type (a boolean or a string where a number belongs), and a number out of its range: an
    accuracy outside [0, 1], an infinite value, a non-positive ε. The Wilson interval columns
    are derived from the row, so they are recomputed rather than trusted.
    """
    if not isinstance(record, dict):
        raise RecordError(f"a result row must be an object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(COLUMNS))
    if unknown:
        raise RecordError(f"{unknown[0]}: unknown column")
    values: dict[str, Any] = {}
    for f in fields(ResultRow):
        if f.name not in record:
            raise RecordError(f"{f.name}: missing")
        values[f.name] = _checked_value(f.name, str(f.type), record[f.name])
    _check_config(values["config"], worst_case=values["attack"] == WORST_CASE)
    return ResultRow(**values)


class _Shape(BaseModel):
    """The parts of a row's free-form config that robustinv itself reads back (other keys pass through)."""

    model_config = ConfigDict(extra="allow", strict=True)


class _ReferenceCheck(_Shape):
    check: str
    message: str


class _Diagnostics(_Shape):
    checks: list[_ReferenceCheck] = []
    log: dict[str, float] = {}
    zero_gradient_share: float = Field(0.0, ge=0, le=1)


class _LogEntry(_Shape):
    attack: str
    newly_broken: int = Field(ge=0)
    unique: int = Field(ge=0)
    robust_acc: float = Field(ge=0, le=1)
    attack_acc: float = Field(ge=0, le=1)


class _RowConfig(_Shape):
    name: str | None = None
    error: str | None = None
    diagnostics: _Diagnostics | None = None


class _WorstCaseConfig(_RowConfig):
    attacks: dict[str, int]
    log: list[_LogEntry] = []
    findings: list[str] = []
    notes: list[str] = []


def _check_config(config: dict[str, Any], *, worst_case: bool) -> None:
    try:
        (_WorstCaseConfig if worst_case else _RowConfig).model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RecordError(f"config.{where}: {first['msg']}") from None


def _checked_value(name: str, kind: str, value: Any) -> Any:
    def wrong(expected: str) -> RecordError:
        return RecordError(f"{name}: expected {expected}, got {_shown(value)}")

    if kind == "str":
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        if value < _INT_MINIMUM.get(name, -(2**63)):
            raise RecordError(f"{name}: {value} is below {_INT_MINIMUM[name]}")
        return value
    if kind == "float":
        if value is None and name not in _REQUIRED:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        number = float(value)
        if math.isnan(number) and name not in _REQUIRED:
            return number
        if not math.isfinite(number) and not (name == "samples_per_s" and number == math.inf):  # a zero-time cell
            raise RecordError(f"{name}: {number} is not a finite number")
        low, high = _BOUNDS.get(name, (0.0, math.inf))
        if not low <= number <= high or (name == "eps" and number == 0):
            raise RecordError(f"{name}: {number:g} is outside [{low:g}, {high:g}]")
        return number
    if kind == "tuple[str, ...]":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return tuple(value)
    if kind == "dict[str, Any]":
        if not isinstance(value, dict):
            raise wrong("an object")
        return value
    raise AssertionError(f"ResultRow.{name}: no check for type {kind}")  # pragma: no cover


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def json_safe(value: Any) -> Any:
    """NaN and infinities have no JSON spelling: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def rows_digest(rows: Sequence[ResultRow]) -> str:
    """A hash of the rows as results.json spells them: the store keeps it to tell an edited file."""
    text = json.dumps(json_safe([row_record(row) for row in rows]), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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
        """A grid from its JSON form and its images, checked against each other (RecordError when they disagree)."""
        expected = {f.name for f in fields(cls)} - {"images"}
        if set(meta) != expected:
            raise RecordError(f"a sample grid needs exactly the keys {', '.join(sorted(expected))}")
        if images.dtype != torch.uint8 or images.ndim != 5:
            raise RecordError(f"images must be uint8 (draws, inputs, C, H, W), got {images.dtype} {tuple(images.shape)}")
        draws, inputs = images.shape[:2]
        texts = [meta[k] for k in ("model", "defense", "attack")]
        eps = meta["eps"]
        labels, predictions, confidences = meta["true_labels"], meta["predictions"], meta["confidences"]
        if not all(isinstance(t, str) for t in texts):
            raise RecordError("model, defense and attack must be strings")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1e6:
            raise RecordError(f"eps must be a non-negative number, got {eps!r}")
        if not _int_list(labels, inputs):
            raise RecordError(f"true_labels must be {inputs} integers, one per input")
        if not (isinstance(predictions, list) and len(predictions) == draws and all(_int_list(p, inputs) for p in predictions)):
            raise RecordError(f"predictions must be {draws} lists of {inputs} integers")
        if not (isinstance(confidences, list) and len(confidences) == draws
                and all(_fraction_list(c, inputs) for c in confidences)):
            raise RecordError(f"confidences must be {draws} lists of {inputs} numbers in [0, 1]")
        return cls(
            model=texts[0], defense=texts[1], attack=texts[2], eps=float(eps), true_labels=tuple(labels),
            predictions=tuple(tuple(p) for p in predictions), confidences=tuple(tuple(c) for c in confidences),
            images=images,
        )


def _int_list(values: Any, length: int) -> bool:
    return (isinstance(values, list) and len(values) == length
            and all(isinstance(v, int) and not isinstance(v, bool) for v in values))


def _fraction_list(values: Any, length: int) -> bool:
    return (isinstance(values, list) and len(values) == length
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values))


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


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run and the environment it ran in."""

    run_id: str
    suite: str
    seed: int
    device: str
    started: str
    finished: str
    dataset: str
    dataset_fingerprint: str
    n_eval: int
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    info: RunInfo
    rows: list[ResultRow]
    targets: list[TargetCell] = field(default_factory=list)
    grids: list[SampleGrid] = field(default_factory=list)
    computed: int = 0  # cells computed by this call
    reused: int = 0  # cells loaded from the results store, finished by an earlier attempt of the run
