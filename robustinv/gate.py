"""Release gates: a TOML policy of bounds on result columns, checked against a run (and a baseline run).

A policy is a list of rules. Each rule selects result rows (by model, defense, attack, ε) and bounds
one numeric column: `min`, `max`, and/or `max_drop` against the same rows of a baseline run.
`attack = "worst_case"` selects the per-input worst case over every attack, the verdict a release
is judged by. For accuracies, `bound = "low"` (or `"high"`) bounds the Wilson 95% interval's lower
(upper) end instead of the measured value, so a small evaluation set cannot pass by luck.
Checking is a pure function from records to a `GateVerdict`; rendering it (JUnit, Markdown) and
deciding the exit code happen elsewhere.

The gate fails closed: a rule that cannot be checked honestly — no matching row, a missing value,
a row the sanity checks flagged or whose attack errored, a drop without a baseline — fails, and its
`reason` says why. A number that cannot be trusted never lets a release through.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import Field, FiniteFloat, ValidationError, field_validator, model_validator

from robustinv.config import Config
from robustinv.errors import RobustinvError
from robustinv.records import INTERVAL_METRICS, GateLevel, GateVerdict, ResultRow, RuleOutcome
from robustinv.sanity import check_rows
from robustinv.suite import format_validation_error, read_toml

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
        if value not in METRICS:
            close = difflib.get_close_matches(value, METRICS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown metric {value!r}; {hint}valid metrics: {', '.join(METRICS)}")
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
            return float(getattr(row, self.metric))
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


class Policy(Config):
    """A gate policy: the rules, checked in order."""

    rules: list[Rule]

    @field_validator("rules")
    @classmethod
    def _not_empty(cls, value: list[Rule]) -> list[Rule]:
        if not value:
            raise ValueError("a policy needs at least one [[rules]] entry")
        return value


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; problems name the file and the key (`gate.toml: rules[1].metric: ...`)."""
    data = read_toml(path, PolicyError, "policy")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(str(path), exc, known_keys=_POLICY_KEYS)) from None


_POLICY_KEYS = (*Policy.model_fields, *Rule.model_fields)


def gate_run(
    policy: Policy,
    rows: Sequence[ResultRow],
    *,
    policy_name: str,
    baseline: Sequence[ResultRow] | None = None,
    baseline_name: str | None = None,
) -> GateVerdict:
    """Gate a run: the sanity checks run again on its rows (a file is not trusted), then every rule.

    What `robustinv run --gate` and `robustinv gate` both call.
    """
    return evaluate_gate(policy, check_rows(rows), policy_name=policy_name, baseline=baseline,
                         baseline_name=baseline_name)


def evaluate_gate(
    policy: Policy,
    rows: Sequence[ResultRow],
    *,
    policy_name: str,
    baseline: Sequence[ResultRow] | None = None,
    baseline_name: str | None = None,
) -> GateVerdict:
    """Check every rule against the rows (and the baseline rows): one outcome per rule, in policy order."""
    outcomes = tuple(_check(rule, rows, baseline) for rule in policy.rules)
    return GateVerdict(policy=policy_name, baseline=baseline_name, outcomes=outcomes)


@dataclass(frozen=True)
class _Check:
    """One bound's result: whether it held, the deciding value and a one-line reason."""

    passed: bool
    measured: float | None
    reason: str


def _check(rule: Rule, rows: Sequence[ResultRow], baseline: Sequence[ResultRow] | None) -> RuleOutcome:
    """Check each of the rule's bounds; a failed bound decides `measured`, else the first bound does."""
    matched = [row for row in rows if rule.matches(row)]
    untrusted = _untrusted(rule, matched)
    if untrusted is not None:
        checks = [untrusted]
    else:
        checks = []
        if rule.min is not None:
            checks.append(_check_bound(rule, rule.min, matched, lower=True))
        if rule.max is not None:
            checks.append(_check_bound(rule, rule.max, matched, lower=False))
        if rule.max_drop is not None:
            checks.append(_check_drop(rule, rule.max_drop, matched, baseline))
    failed = [c for c in checks if not c.passed]
    deciding = failed[0] if failed else checks[0]
    return RuleOutcome(
        rule=rule.statement, level=rule.level, passed=not failed, measured=deciding.measured,
        required=rule.required, reason="; ".join(c.reason for c in (failed or checks)), rows=len(matched),
    )


def _untrusted(rule: Rule, matched: list[ResultRow]) -> _Check | None:
    """The fail-closed cases that concern the matching rows themselves; None when they can be judged."""
    if not matched:
        return _Check(False, None, "no result row matches the rule")
    for row in matched:
        if row.config.get("error"):
            return _Check(False, None, f"{_label(row)}: the attack failed ({row.config['error']})")
        if row.flags:
            return _Check(False, None, f"{_label(row)}: flagged by the sanity checks ({', '.join(row.flags)})")
        if _missing(getattr(row, rule.metric)):
            return _Check(False, None, f"{_label(row)}: {rule.metric} is missing (NaN)")
    return None


def _check_bound(rule: Rule, bound: float, matched: list[ResultRow], *, lower: bool) -> _Check:
    """A `min` (lower=True) or `max` bound, decided by the worst matching row."""
    worst = (min if lower else max)(matched, key=rule.value)
    value = rule.value(worst)
    passed = value >= bound - TOLERANCE if lower else value <= bound + TOLERANCE
    relation = (">=" if lower else "<=") if passed else ("below" if lower else "above")
    extreme = "lowest" if lower else "highest"
    return _Check(passed, value, f"{extreme} {rule.measure} {value:.6g}{_interval(worst, rule.metric)} "
                                 f"({_label(worst)}) is {relation} {bound:g}")


def _check_drop(rule: Rule, bound: float, matched: list[ResultRow], baseline: Sequence[ResultRow] | None) -> _Check:
    """The largest drop from a baseline row to its counterpart, in points for fraction metrics."""
    if baseline is None:
        return _Check(False, None, "max_drop needs a baseline run; none was given")
    scale = 100.0 if rule.metric in FRACTION_METRICS else 1.0
    drops: list[tuple[float, ResultRow, ResultRow]] = []  # (drop, row, its baseline row)
    for row in matched:
        before = _counterpart(row, baseline)
        if before is None:
            return _Check(False, None, f"{_label(row)}: no baseline row with the same dataset, model, defense, "
                                       "attack, norm and ε")
        if _missing(getattr(before, rule.metric)):
            return _Check(False, None, f"{_label(row)}: the baseline's {rule.metric} is missing (NaN)")
        drops.append(((rule.value(before) - rule.value(row)) * scale, row, before))
    drop, row, before = max(drops, key=lambda d: d[0])
    passed = drop <= bound + TOLERANCE
    relation = "within" if passed else "exceeds"
    return _Check(passed, drop, f"largest drop {drop:.6g}{rule.unit} ({_label(row)}: {rule.measure} "
                                f"{rule.value(before):.6g} -> {rule.value(row):.6g}) "
                                f"{relation} {bound:g}")


def _counterpart(row: ResultRow, baseline: Sequence[ResultRow]) -> ResultRow | None:
    """The baseline row of the same cell: same dataset, model, defense, attack, norm and ε."""
    return next(
        (b for b in baseline
         if (b.dataset, b.model, b.defense, b.attack, b.norm) == (row.dataset, row.model, row.defense, row.attack,
                                                                  row.norm)
         and abs(b.eps - row.eps) <= TOLERANCE),
        None,
    )


def _interval(row: ResultRow, metric: str) -> str:
    """` (95% CI 0.912–0.951)` for accuracies, nothing for other columns."""
    if metric not in INTERVAL_METRICS:
        return ""
    low, high = row.interval(metric)
    return f" (95% CI {low:.3g}–{high:.3g})"


def _missing(value: Any) -> bool:
    """None (how results.json stores NaN) or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def outcome_summary(outcome: RuleOutcome) -> str:
    """One line for reports: `measured 0.78, required >= 0.8: <reason>`."""
    measured = "nothing" if outcome.measured is None else f"{outcome.measured:.6g}"
    return f"measured {measured}, required {outcome.required}: {outcome.reason}"


def _label(row: ResultRow) -> str:
    """The row as people name it: `model[defense] attack ε=0.3`."""
    return f"{row.model}[{row.defense}] {row.attack} ε={row.eps:g}"
