"""Checking a policy against a run's rows (and a baseline's): one fail-closed outcome per rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from robustinv.gating.comparable import describe, evaluation_differences
from robustinv.gating.consistency import description_problem
from robustinv.gating.policy import FRACTION_METRICS, METRICS, TOLERANCE, Policy, Rule, column_value
from robustinv.gating.sequential import sequential_check
from robustinv.records import INTERVAL_METRICS, GateVerdict, ResultRow, RuleOutcome, model_label
from robustinv.records.gate_verdict import Provenance
from robustinv.judge.sanity import check_rows
from robustinv.sequential import SequentialTest


def gate_run(
    policy: Policy,
    rows: Sequence[ResultRow],
    *,
    policy_name: str,
    baseline: Sequence[ResultRow] | None = None,
    baseline_name: str | None = None,
    provenance: Sequence[Provenance] = (),
) -> GateVerdict:
    """Gate a run: the sanity checks run again on its rows and the baseline's (a file is not trusted), then every rule.

    Rows whose descriptions contradict them fail every rule (`robustinv.gating.consistency`); a
    baseline whose rows do fails every `max_drop` rule. `provenance` says how the rows were
    verified (`robustinv.gating.provenance`). What `robustinv run --gate` and `robustinv gate` both call.
    """
    checked_baseline = None if baseline is None else check_rows(baseline)
    verdict = evaluate_gate(policy, check_rows(rows), policy_name=policy_name, baseline=checked_baseline,
                            baseline_name=baseline_name, untrusted=description_problem(rows),
                            untrusted_baseline=None if baseline is None else description_problem(baseline))
    return replace(verdict, provenance=tuple(provenance))


def evaluate_gate(
    policy: Policy,
    rows: Sequence[ResultRow],
    *,
    policy_name: str,
    baseline: Sequence[ResultRow] | None = None,
    baseline_name: str | None = None,
    untrusted: str | None = None,
    untrusted_baseline: str | None = None,
) -> GateVerdict:
    """Check every rule against the rows (and the baseline rows): one outcome per rule, in policy order.

    `untrusted` (`untrusted_baseline`) is why the rows (the baseline's) cannot be judged at all.
    """
    test = SequentialTest(policy.sequential.confidence) if policy.sequential is not None else None
    sequential = {id(rule) for rule in policy.decided_sequentially}
    outcomes = tuple(_check(rule, rows, baseline, untrusted, untrusted_baseline,
                            test if id(rule) in sequential else None) for rule in policy.rules)
    return GateVerdict(policy=policy_name, baseline=baseline_name, outcomes=outcomes)


@dataclass(frozen=True)
class _Check:
    """One bound's result: whether it held, the deciding value and a one-line reason."""

    passed: bool
    measured: float | None
    reason: str


def _check(rule: Rule, rows: Sequence[ResultRow], baseline: Sequence[ResultRow] | None, untrusted_rows: str | None,
           untrusted_baseline: str | None, test: SequentialTest | None = None) -> RuleOutcome:
    """Check each of the rule's bounds; a failed bound decides `measured`, else the first bound does.

    With `test`, the rule's bounds are decided by the anytime-valid test (`robustinv.gating.sequential`).
    """
    matched = [row for row in rows if rule.matches(row)]
    untrusted = _Check(False, None, untrusted_rows) if untrusted_rows is not None else _untrusted(rule, matched)
    decided_after = None
    if untrusted is not None:
        checks = [untrusted]
    elif test is not None:
        passed, decision, reason = sequential_check(rule, matched, test)
        checks, decided_after = [_Check(passed, decision.value, reason)], decision.inputs
    else:
        checks = []
        if rule.min is not None:
            checks.append(_check_bound(rule, rule.min, matched, lower=True))
        if rule.max is not None:
            checks.append(_check_bound(rule, rule.max, matched, lower=False))
        if rule.max_drop is not None and untrusted_baseline is not None:
            checks.append(_Check(False, None, f"the baseline: {untrusted_baseline}"))
        elif rule.max_drop is not None:
            checks.append(_check_drop(rule, rule.max_drop, rows, matched, baseline))
    failed = [c for c in checks if not c.passed]
    deciding = failed[0] if failed else checks[0]
    return RuleOutcome(
        rule=rule.statement, level=rule.level, passed=not failed, measured=deciding.measured,
        required=rule.required, reason="; ".join(c.reason for c in (failed or checks)), rows=len(matched),
        decided_after=decided_after,
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
        if rule.metric not in METRICS and rule.metric not in row.measures:
            return _Check(False, None, f"{_label(row)}: has no column {rule.metric!r} (no measure of the run "
                                       "computed it)")
        if _missing(column_value(row, rule.metric)):
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


def _check_drop(rule: Rule, bound: float, rows: Sequence[ResultRow], matched: list[ResultRow],
                baseline: Sequence[ResultRow] | None) -> _Check:
    """The largest drop from a baseline row to its counterpart, in points for fraction metrics.

    Fails closed when a counterpart is missing, flagged, errored or evaluated differently (`comparable`).
    """
    if baseline is None:
        return _Check(False, None, "max_drop needs a baseline run; none was given")
    scale = 100.0 if rule.metric in FRACTION_METRICS else 1.0
    drops: list[tuple[float, ResultRow, ResultRow]] = []  # (drop, row, its baseline row)
    for row in matched:
        before = _counterpart(row, baseline)
        if before is None:
            return _Check(False, None, f"{_label(row)}: no baseline row with the same dataset, model, defense, "
                                       "attack, norm and ε")
        if before.config.get("error"):
            return _Check(False, None, f"{_label(row)}: the baseline's attack failed ({before.config['error']})")
        if before.flags:
            return _Check(False, None, f"{_label(row)}: the baseline's row is flagged by the sanity checks "
                                       f"({', '.join(before.flags)})")
        differences = evaluation_differences(row, before, list(rows), list(baseline))
        if differences:
            return _Check(False, None, f"{_label(row)}: not comparable with the baseline, which evaluated it "
                                       f"differently: {describe(differences)} (here vs baseline)")
        if _missing(column_value(before, rule.metric)):
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
    return f"{model_label(row.model, row.defense)} {row.attack} ε={row.eps:g}"
