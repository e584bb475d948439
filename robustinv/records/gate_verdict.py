"""The gate's records: one outcome per rule, how the judged rows were verified, and the verdict over them."""

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
    decided_after: int | None = None  # a sequential policy: the inputs the deciding row's evidence rests on


@dataclass(frozen=True)
class Provenance:
    """Whether the gate could tell that rows it judged are the rows a run computed, and how.

    Verified: the rows were computed by the judging process, or match the digest the results
    store recorded when the run finished. Unverified: no store knew the run, so the rows were
    checked for well-formed values and consistency only, which a careful editor can satisfy.
    """

    subject: str  # "run 20260101T000000Z-abc123" or "baseline run …"
    verified: bool
    how: str  # one line: how the rows were verified, or why they could not be


@dataclass(frozen=True)
class GateVerdict:
    """The outcome of a policy: passes unless a `fail`-level rule failed."""

    policy: str
    baseline: str | None
    outcomes: tuple[RuleOutcome, ...]
    provenance: tuple[Provenance, ...] = ()  # the judged run's rows first, then the baseline's

    @property
    def passed(self) -> bool:
        return all(o.passed or o.level is GateLevel.warn for o in self.outcomes)

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed and o.level is GateLevel.fail)

    @property
    def warnings(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed and o.level is GateLevel.warn)

    @property
    def summary(self) -> str:
        """The verdict in a few lines, one per rule: what an `assert verdict.passed, verdict.summary` prints."""
        lines = [f"gate {'PASSED' if self.passed else 'FAILED'} ({len(self.failures)} failed, "
                 f"{len(self.warnings)} warnings, {len(self.outcomes)} rules)"]
        lines += [f"{'pass' if o.passed else o.level.value}: {o.rule}: {o.reason}" for o in self.outcomes]
        return "\n".join([*lines, self.verification])

    @property
    def verified(self) -> bool:
        """Whether every set of rows the verdict rests on was verified (see `Provenance`)."""
        return bool(self.provenance) and all(p.verified for p in self.provenance)

    @property
    def verification(self) -> str:
        """One line: `verified: …` or `unverified: …`, then `verification_details`."""
        return f"{'verified' if self.verified else 'unverified'}: {self.verification_details}"

    @property
    def verification_details(self) -> str:
        """How each set of rows was verified or why it could not be, the unverified ones first."""
        if not self.provenance:
            return "this verdict records no verification of the rows it judged"
        ordered = sorted(self.provenance, key=lambda p: p.verified)
        return "; ".join(f"{p.subject}: {p.how}" for p in ordered)
