"""Result rows and target cells: the tables a run produces, with numbers stored as numbers.

A row's Wilson 95% interval is derived from it, never stored; `row_record` writes it beside the
row's fields in CSV and JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from robustinv.stats import wilson_interval


WORST_CASE = "worst_case"  # the attack name of the per-input worst case over every attack at one ε
CLEAN = "clean"  # the attack name of the unperturbed sample grid
# Row names the gradient-masking guard derives from the suite PGD's label: `pgd-guard`, `pgd-transfer`, ….
GUARD_SUFFIXES: tuple[str, ...] = ("-guard", "-transfer", "-unbounded")


def model_label(model: str, defense: str) -> str:
    """How robustinv names a (model, defense): `lenet5`, or `lenet5[pgd_at]` for a defended reference."""
    return model if defense == "standard" else f"{model}[{defense}]"


def reserved_label_problem(label: str) -> str | None:
    """Why an attack label would collide with a row the harness names itself, or name nothing; None when it is free.

    Labels are compared as a reader sees them: case, Unicode forms and surrounding whitespace
    aside (`"Worst_Case"` and `"clean "` look like robustinv's own rows in a report or a
    spreadsheet). A blank label names nothing and is refused.
    """
    seen = unicodedata.normalize("NFKC", label).strip().casefold()
    if not seen:
        return "a blank label names no row"
    if seen in (CLEAN, WORST_CASE):
        own = "clean sample" if seen == CLEAN else "worst-case"
        reads = "" if label == seen else f" reads as {seen!r}, which"
        return f"{label!r}{reads} is the name of robustinv's own {own} row"
    suffix = next((s for s in GUARD_SUFFIXES if seen.endswith(s)), None)
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
    # Columns of registered measures (robustinv.measures) beyond the fields above, by name; NaN where not
    # measured. In results.csv each is a column of its own, after the fixed ones.
    measures: dict[str, float] = field(default_factory=dict)

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
