"""The sequential gate: attack in batches and stop once every `fail` rule on an accuracy is decided.

A policy with a `[sequential]` table decides its accuracy rules (`robust_acc`, `clean_acc` with
`min` and/or `max`) by the anytime-valid test of `robustinv.sequential` instead of the point
value: a rule passes when the evidence establishes the accuracy above its `min` (below its
`max`) at the policy's confidence, fails when it establishes the opposite, and is open
otherwise. The run attacks the eval inputs in a seeded order, `batch` at a time, and stops when
no `fail` rule is open. A rule still open after every input fails closed. A decision depends
only on each row's accuracy and `n`, so `robustinv gate` checks it again from the run folder.

Rules it cannot decide this way (a `max_drop` against a baseline, other columns) make the run
evaluate every input; `blocking` says which and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from robustinv.gating.policy import Policy, Rule, SequentialConfig, column_value, sequential_problem
from robustinv.records import GateLevel, ResultRow, model_label
from robustinv.sequential import SequentialTest


class State(str, Enum):
    passed = "pass"
    failed = "fail"
    open = "open"


@dataclass(frozen=True)
class Decision:
    """Where a rule stands: decided or open, on how many inputs, and the deciding row's anytime-valid bounds."""

    state: State
    inputs: int
    low: float
    high: float
    row: str  # the deciding row, as people name it
    value: float | None = None

    def describe(self, confidence: float) -> str:
        verb = "undecided" if self.state is State.open else "decided"
        return (f"{verb} after {self.inputs} inputs: {self.row} {self.value:.6g}, its {100 * confidence:g}% "
                f"anytime-valid bounds {self.low:.4f}–{self.high:.4f}" if self.value is not None
                else f"{verb}: {self.row}")


def sequential_check(rule: Rule, matched: Sequence[ResultRow], test: SequentialTest) -> tuple[bool, Decision, str]:
    """A decidable rule judged by the sequence: passed, the deciding row, and the reason, failing closed when open."""
    decision = decide(rule, matched, test)
    bound = " and ".join(part for part in (f"min {rule.min:g}" if rule.min is not None else "",
                                           f"max {rule.max:g}" if rule.max is not None else "") if part)
    outcome = {State.passed: "within", State.failed: "outside", State.open: "not yet decided against"}[decision.state]
    reason = f"{decision.describe(test.confidence)}: {outcome} {bound}"
    if decision.state is State.open:
        reason += " (fails closed: more inputs, or a larger margin, would decide it)"
    return decision.state is State.passed, decision, reason


def decide(rule: Rule, rows: Sequence[ResultRow], test: SequentialTest) -> Decision:
    """The rule's state: failed if a matching row is established outside a bound, passed if all are inside."""
    matched = [row for row in rows if rule.matches(row)]
    if not matched:
        return Decision(State.open, 0, 0.0, 1.0, "no result row matches the rule")
    decisions = [_row_decision(rule, row, test) for row in matched]
    for state in (State.failed, State.open):
        found = [d for d in decisions if d.state is state]
        if found:
            return found[0]
    tightest = min if rule.min is not None else max  # the passing row closest to its bound
    return tightest(decisions, key=lambda d: d.value if d.value is not None else 0.0)


def _row_decision(rule: Rule, row: ResultRow, test: SequentialTest) -> Decision:
    value = column_value(row, rule.metric)
    successes = round(value * row.n)
    low, high = test.bounds(successes, row.n)
    states = []
    if rule.min is not None:
        states.append(State.passed if test.above(successes, row.n, rule.min)
                      else State.failed if test.below(successes, row.n, rule.min) else State.open)
    if rule.max is not None:
        states.append(State.passed if test.below(successes, row.n, rule.max)
                      else State.failed if test.above(successes, row.n, rule.max) else State.open)
    state = State.failed if State.failed in states else State.open if State.open in states else State.passed
    label = f"{model_label(row.model, row.defense)} {row.attack} ε={row.eps:g} {rule.metric}"
    return Decision(state, row.n, low, high, label, value)


class SequentialGate:
    """What a run asks after each batch: is every `fail` rule decided? (`robustinv.run.driver.Sequential`)"""

    def __init__(self, policy: Policy) -> None:
        config = policy.sequential or SequentialConfig()
        self.batch = config.batch
        self.confidence = config.confidence
        self.test = SequentialTest(config.confidence)
        failing = [rule for rule in policy.rules if rule.level is GateLevel.fail]
        self.rules = [rule for rule in failing if sequential_problem(rule) is None]
        self.blocking = [(rule, why) for rule in failing if (why := sequential_problem(rule)) is not None]

    def decided(self, look: object) -> bool:
        """Whether the rows of this look decide every rule; never while a `fail` rule needs every input."""
        if self.blocking:
            return False
        rows: Sequence[ResultRow] = getattr(look, "rows")
        return all(decide(rule, rows, self.test).state is not State.open for rule in self.rules)
