"""The gate's records: one outcome per rule, and the verdict of a policy over them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
