"""A gate policy: the TOML rules, validated into typed `Rule`s that know which rows they select and what they demand."""

from __future__ import annotations

import difflib
from dataclasses import fields
from enum import Enum
from pathlib import Path

from pydantic import Field, FiniteFloat, ValidationError, field_validator, model_validator

from robustinv.config import Config
from robustinv.errors import RobustinvError
from robustinv.records import INTERVAL_METRICS, GateLevel, ResultRow
from robustinv.tomlfile import format_validation_error, read_toml

# Numeric result columns a rule may bound. ε and the seed are numeric too, but they identify a row
# (ε is a selector) rather than measure it.
METRICS: tuple[str, ...] = tuple(
    f.name for f in fields(ResultRow) if f.type in ("float", "int") and f.name not in ("eps", "seed")
)
# Fractions in [0, 1]: a drop in these is reported (and bounded) in percentage points.
FRACTION_METRICS: frozenset[str] = frozenset(
    {"clean_acc", "robust_acc", "success_rate", "candidate_success", "target_success"}
)
# Float noise must not fail a value that prints as the bound itself; also the ε-selector tolerance.
TOLERANCE = 1e-9


class PolicyError(RobustinvError):
    """A gate policy file that cannot be read or does not validate."""


class Bound(str, Enum):
    """Which value of an accuracy a rule checks: the measured one or an end of its Wilson 95% interval."""

    value = "value"
    low = "low"
    high = "high"


class Rule(Config):
    """One bound on one results column, over the rows its selectors match (all rows when none are given)."""

    metric: str
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None
    max_drop: FiniteFloat | None = Field(None, ge=0)  # percentage points for fraction metrics
    model: str | None = None
    defense: str | None = None
    attack: str | None = None
    eps: FiniteFloat | None = None
    level: GateLevel = GateLevel.fail
    name: str | None = None
    bound: Bound = Bound.value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        """A numeric column of the rows, or a measure's column (which only the run's rows can confirm).

        A name close to a column of the rows is taken for a typo; any other identifier may be a
        registered measure's column, and a rule on a column no row holds fails closed.
        """
        if value in METRICS:
            return value
        close = difflib.get_close_matches(value, METRICS, n=1, cutoff=0.8)
        if close or not value.isidentifier():
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown metric {value!r}; {hint}valid metrics: {', '.join(METRICS)}, or the name of "
                             "a measure's column")
        return value

    @model_validator(mode="after")
    def _has_a_bound(self) -> Rule:
        if self.min is None and self.max is None and self.max_drop is None:
            raise ValueError("a rule needs at least one of min, max, max_drop")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        if self.bound is not Bound.value and self.metric not in INTERVAL_METRICS:
            raise ValueError(f"bound = {self.bound.value!r} needs an accuracy with an interval "
                             f"({', '.join(sorted(INTERVAL_METRICS))}), not {self.metric!r}")
        return self

    @property
    def measure(self) -> str:
        """What is compared, e.g. `robust_acc` or `robust_acc (95% low)`."""
        return self.metric if self.bound is Bound.value else f"{self.metric} (95% {self.bound.value})"

    def value(self, row: ResultRow) -> float:
        """The row's value this rule checks: the metric, or an end of its Wilson interval."""
        if self.bound is Bound.value:
            return column_value(row, self.metric)
        low, high = row.interval(self.metric)
        return low if self.bound is Bound.low else high

    def matches(self, row: ResultRow) -> bool:
        return (
            (self.model is None or row.model == self.model)
            and (self.defense is None or row.defense == self.defense)
            and (self.attack is None or row.attack == self.attack)
            and (self.eps is None or abs(row.eps - self.eps) <= TOLERANCE)
        )

    @property
    def unit(self) -> str:
        return " points" if self.metric in FRACTION_METRICS else ""

    @property
    def required(self) -> str:
        """What the rule demands, e.g. `>= 0.8 and drop <= 2 points vs baseline`."""
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.max_drop is not None:
            parts.append(f"drop <= {self.max_drop:g}{self.unit} vs baseline")
        return " and ".join(parts)

    @property
    def statement(self) -> str:
        """The rule as one line, e.g. `robust_acc >= 0.8 [attack=pgd, eps=0.3]`, prefixed by its name."""
        selectors = [f"{key}={value}" for key, value in
                     (("model", self.model), ("defense", self.defense), ("attack", self.attack)) if value is not None]
        if self.eps is not None:
            selectors.append(f"eps={self.eps:g}")
        text = f"{self.measure} {self.required}" + (f" [{', '.join(selectors)}]" if selectors else "")
        return f"{self.name}: {text}" if self.name else text


class SequentialConfig(Config):
    """`[sequential]` in a gate policy: decide the accuracy rules by an anytime-valid test, batch by batch."""

    confidence: float = Field(0.95, gt=0, lt=1, description="of each decision, valid however often it looks")
    batch: int = Field(50, ge=1, le=1_000_000, description="inputs attacked between two looks")


class Policy(Config):
    """A gate policy: the rules, checked in order, and optionally how to decide them sequentially."""

    rules: list[Rule]
    sequential: SequentialConfig | None = None

    @field_validator("rules")
    @classmethod
    def _not_empty(cls, value: list[Rule]) -> list[Rule]:
        if not value:
            raise ValueError("a policy needs at least one [[rules]] entry")
        return value

    @model_validator(mode="after")
    def _sequential_decides_something(self) -> Policy:
        if self.sequential is not None and not any(
                rule.level is GateLevel.fail and sequential_problem(rule) is None for rule in self.rules):
            raise ValueError("[sequential] decides fail rules on robust_acc or clean_acc with min or max (no "
                             "max_drop); this policy has none, so there is nothing to decide as the inputs come in")
        return self

    @property
    def decided_sequentially(self) -> list[Rule]:
        """The rules decided by the anytime-valid test (every rule on an accuracy bound, with `[sequential]`)."""
        if self.sequential is None:
            return []
        return [rule for rule in self.rules if sequential_problem(rule) is None]


DECIDABLE_METRICS = ("robust_acc", "clean_acc")  # Bernoulli means: one observation per evaluated input


def sequential_problem(rule: Rule) -> str | None:
    """Why a rule cannot be decided sequentially; None when it can."""
    if rule.metric not in DECIDABLE_METRICS:
        return f"{rule.metric} is not an accuracy (only {' and '.join(DECIDABLE_METRICS)} are decided sequentially)"
    if rule.max_drop is not None:
        return "max_drop compares with a baseline's value, not a bound on this run's accuracy"
    if rule.min is None and rule.max is None:
        return "it has no min or max"
    return None


def column_value(row: ResultRow, metric: str) -> float:
    """The row's value of a metric: one of its fields, or a measure's column (NaN where the row has none)."""
    value = getattr(row, metric) if metric in METRICS else row.measures.get(metric)
    return float("nan") if value is None else float(value)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; problems name the file and the key (`gate.toml: rules[1].metric: ...`)."""
    data = read_toml(path, PolicyError, "policy")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(str(path), exc, known_keys=_POLICY_KEYS)) from None


_POLICY_KEYS = (*Policy.model_fields, *Rule.model_fields, *SequentialConfig.model_fields)
