"""The schema of a numeric result column: its type, where its values may lie, and how ranges of inputs combine.

Every numeric column of a result row is declared once: the row's own fields here, each
registered measure's columns beside its function (`robustinv.measures`). The strict reader
(`robustinv.records.parsing`) checks stored values against these declarations; a run writes
the measures' declarations into `results.json`, so the reports and the gate check a file
without importing the measures (or torch). A column declared without bounds takes any finite
number (or NaN, a value a measure could not compute).

`combine` says how the values of one attack over consecutive ranges of inputs make the value
over their union (a run split into input ranges, see `robustinv.run.plan`): an n-weighted
`mean`, the `max`, the `sum`, or `same` (a setting, equal in every range).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Combine(str, Enum):
    mean = "mean"  # weighted by each range's number of inputs
    max = "max"
    sum = "sum"
    same = "same"  # a setting of the attack, equal in every range (the first one is kept)


@dataclass(frozen=True)
class Column:
    """One numeric column: `integer` or float, its inclusive bounds, and how ranges combine."""

    name: str
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    combine: Combine = Combine.mean

    def problem(self, value: float) -> str | None:
        """Why `value` cannot be in this column; None when it can (NaN always can: not computed)."""
        if math.isnan(value):
            return None
        if not math.isfinite(value) and not (value == self.high == math.inf):
            return f"{value} is not a finite number"
        if not self.low <= value <= self.high:
            return f"{value:g} is outside [{self.low:g}, {self.high:g}]"
        return None

    def as_json(self) -> dict[str, Any]:
        return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for key, value in asdict(self).items() if key != "name"} | {"combine": self.combine.value}

    @classmethod
    def from_json(cls, name: str, data: Any) -> Column:
        """A declaration as `as_json` wrote it; ValueError on anything else."""
        if not isinstance(data, dict) or set(data) - {"low", "high", "integer", "combine"}:
            raise ValueError(f"column {name!r}: not a column declaration")
        low, high = data.get("low"), data.get("high")
        for bound in (low, high):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                raise ValueError(f"column {name!r}: a bound must be a number or null")
        integer = data.get("integer", False)
        if not isinstance(integer, bool):
            raise ValueError(f"column {name!r}: integer must be true or false")
        return cls(name, -math.inf if low is None else float(low), math.inf if high is None else float(high),
                   integer, Combine(data.get("combine", Combine.mean.value)))


FRACTION = (0.0, 1.0)
COSINE = (-1.0 - 1e-6, 1.0 + 1e-6)
NON_NEGATIVE = (0.0, math.inf)


def fraction(name: str) -> Column:
    return Column(name, *FRACTION)


def cosine(name: str) -> Column:
    return Column(name, *COSINE)


def non_negative(name: str, combine: Combine = Combine.mean) -> Column:
    return Column(name, *NON_NEGATIVE, combine=combine)


# Every numeric field of a result row, declared here and nowhere else: the built-in measures that
# compute some of them (perturbation, candidates, diversity, feature_consistency) take these
# declarations, so a reader checks them without trusting the `columns` a file brings along.
ROW_COLUMNS: dict[str, Column] = {column.name: column for column in (
    Column("eps", 0.0, 1e9, combine=Combine.same),
    Column("n", 1.0, math.inf, integer=True, combine=Combine.sum),
    fraction("clean_acc"), fraction("robust_acc"), fraction("success_rate"),
    non_negative("seconds", Combine.sum), non_negative("samples_per_s"), non_negative("train_seconds", Combine.same),
    Column("seed", 0.0, math.inf, integer=True, combine=Combine.same),
    non_negative("model_train_seconds", Combine.same),
    non_negative("mean_linf"), non_negative("max_linf", Combine.max),
    non_negative("mean_l2"), non_negative("max_l2", Combine.max),
    Column("samples_per_input", 1.0, math.inf, integer=True, combine=Combine.same),
    fraction("candidate_success"), fraction("target_success"),
    cosine("diversity_cos"), non_negative("diversity_l2"), cosine("feature_consistency"),
)}


def declared(schema: Mapping[str, Column], name: str) -> Column:
    """The declaration of `name`: the row's own, a measure's, or any finite number when undeclared."""
    return ROW_COLUMNS.get(name) or schema.get(name) or Column(name)
