"""Release gate: policy validation, fail-closed evaluation, JUnit XML and the Markdown summary."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, TestSuite

from robustinv.attacks import ATTACKS
from robustinv.gating import Policy, PolicyError, Rule, evaluate_gate, load_policy
from robustinv.judge.derived import ATTACK_CAPABILITIES
from robustinv.records import GateLevel, GateVerdict, ResultRow
from robustinv.report.junit import render_junit
from robustinv.report.markdown import append_step_summary, render_summary

REPO = Path(__file__).resolve().parent.parent

ROW = ResultRow(
    run_id="r", dataset="digits", model="smallcnn", defense="standard", attack="pgd", norm="linf", eps=0.1, n=100,
    clean_acc=0.97, robust_acc=0.60, success_rate=0.38, mean_linf=0.1, max_linf=0.1, mean_l2=1.0, max_l2=1.2,
    seconds=1.0, samples_per_s=100.0, train_seconds=0.0, samples_per_input=1, candidate_success=0.38,
    diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan, feature_consistency=0.9, flags=(),
    config={"name": "pgd"}, seed=0, model_fingerprint="m", dataset_fingerprint="d", model_source="trained",
    model_train_seconds=1.0,
)
ROWS = [
    replace(ROW, attack="fgsm", eps=0.1, robust_acc=0.65, config={"name": "fgsm"}),
    ROW,
    replace(ROW, eps=0.3, robust_acc=0.05),
]


def gate(*rules: Rule, rows: list[ResultRow] = ROWS, baseline: list[ResultRow] | None = None) -> GateVerdict:
    return evaluate_gate(Policy(rules=list(rules)), rows, policy_name="gate.toml", baseline=baseline,
                         baseline_name=None if baseline is None else "base")


def test_passing_rules_report_the_deciding_row() -> None:
    verdict = gate(Rule(metric="clean_acc", min=0.95), Rule(metric="robust_acc", min=0.6, attack="pgd", eps=0.1))
    assert verdict.passed and not verdict.failures
    clean, pgd = verdict.outcomes
    assert clean.rule == "clean_acc >= 0.95" and clean.rows == 3 and clean.measured == 0.97
    assert pgd.rule == "robust_acc >= 0.6 [attack=pgd, eps=0.1]" and pgd.required == ">= 0.6"
    assert pgd.rows == 1 and pgd.measured == 0.60 and "smallcnn pgd ε=0.1" in pgd.reason


def test_min_fails_on_the_worst_row() -> None:
    verdict = gate(Rule(metric="robust_acc", min=0.5, attack="pgd"))
    (outcome,) = verdict.outcomes
    assert not verdict.passed and verdict.failures == (outcome,)
    assert outcome.measured == 0.05 and "ε=0.3" in outcome.reason and "below 0.5" in outcome.reason


def test_max_fails_on_the_worst_row() -> None:
    (outcome,) = gate(Rule(metric="success_rate", max=0.3, eps=0.1)).outcomes
    assert not outcome.passed and outcome.measured == 0.38 and "above 0.3" in outcome.reason


def test_eps_selector_tolerates_float_noise() -> None:
    (outcome,) = gate(Rule(metric="robust_acc", min=0.0, attack="pgd", eps=0.1 + 1e-12)).outcomes
    assert outcome.passed and outcome.rows == 1


def test_a_failed_warn_rule_does_not_fail_the_verdict() -> None:
    verdict = gate(Rule(metric="clean_acc", min=0.9), Rule(metric="robust_acc", min=0.5, level=GateLevel.warn))
    assert verdict.passed
    assert not verdict.failures and [o.rule for o in verdict.warnings] == ["robust_acc >= 0.5"]


def test_drop_against_the_baseline_in_points() -> None:
    baseline = [replace(r, robust_acc=r.robust_acc + 0.02) for r in ROWS]  # 2 points better everywhere
    (within,) = gate(Rule(metric="robust_acc", max_drop=2.0), baseline=baseline).outcomes
    assert within.passed and within.measured == pytest.approx(2.0)
    assert within.required == "drop <= 2 points vs baseline"
    worse = [replace(ROWS[0], robust_acc=0.70), *ROWS[1:]]  # the FGSM row was 5 points better before
    (beyond,) = gate(Rule(metric="robust_acc", max_drop=2.0), baseline=worse).outcomes
    assert not beyond.passed and beyond.measured == pytest.approx(5.0)
    assert "fgsm ε=0.1" in beyond.reason and "exceeds 2" in beyond.reason


@pytest.mark.parametrize(
    ("rule", "rows", "baseline", "reason"),
    [
        (Rule(metric="robust_acc", min=0.1, attack="cw"), ROWS, None, "no result row matches"),
        (Rule(metric="target_success", min=0.1), ROWS, None, "target_success is missing (NaN)"),
        (Rule(metric="clean_acc", min=0.1), [*ROWS, replace(ROW, eps=0.2, flags=("masking?",))], None,
         "flagged by the sanity checks (masking?)"),
        (Rule(metric="clean_acc", min=0.1), [*ROWS, replace(ROW, eps=0.2, config={"error": "out of memory"})], None,
         "the attack failed (out of memory)"),
        (Rule(metric="robust_acc", max_drop=5.0), ROWS, None, "needs a baseline run"),
        (Rule(metric="robust_acc", max_drop=5.0), ROWS, ROWS[:2], "pgd ε=0.3: no baseline row"),
        (Rule(metric="robust_acc", max_drop=5.0), ROWS, [*ROWS[:2], replace(ROWS[2], robust_acc=math.nan)],
         "the baseline's robust_acc is missing"),
    ],
    ids=["no-match", "nan", "flagged", "errored", "no-baseline", "no-counterpart", "nan-baseline"],
)
def test_fails_closed(rule: Rule, rows: list[ResultRow], baseline: list[ResultRow] | None, reason: str) -> None:
    (outcome,) = gate(rule, rows=rows, baseline=baseline).outcomes
    assert not outcome.passed and outcome.measured is None
    assert reason in outcome.reason


def test_none_from_json_counts_as_missing() -> None:
    row = replace(ROW, success_rate=None)  # type: ignore[arg-type]  # results.json stores NaN as null
    (outcome,) = gate(Rule(metric="success_rate", max=1.0), rows=[row]).outcomes
    assert not outcome.passed and "missing" in outcome.reason


def test_the_example_policy_loads() -> None:
    policy = load_policy(REPO / "benchmarks" / "gate.example.toml")
    assert len(policy.rules) == 4 and {r.level for r in policy.rules} == {GateLevel.fail, GateLevel.warn}
    assert any(r.max_drop is not None for r in policy.rules)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rules]\nmetric = "clean_acc"\n', "malformed TOML"),
        ('[[rules]]\nmetric = "clean_acc"\nmni = 0.9\n', "rules[0].mni: unknown key; did you mean 'min'?"),
        ('[[rules]]\nmetric = "clean_acc"\nmin = 0.9\n[[rules]]\nmetric = "robust_accuracy"\nmin = 0.1\n',
         "rules[1].metric: unknown metric 'robust_accuracy'; did you mean 'robust_acc'? valid metrics: n, clean_acc"),
        ('[[rules]]\nmetric = "clean_acc"\nmin = 0.9\nmax = 0.5\n', "rules[0]: min (0.9) is above max (0.5)"),
        ('[[rules]]\nmetric = "clean_acc"\n', "rules[0]: a rule needs at least one of min, max, max_drop"),
        ('[[rules]]\nmetric = "clean_acc"\nmax_drop = -1\n', "rules[0].max_drop: Input should be greater than"),
        ('[[rules]]\nmetric = "clean_acc"\nmin = 0.9\nlevel = "error"\n', "rules[0].level: Input should be"),
        ("rules = []\n", "rules: a policy needs at least one [[rules]] entry"),
        ("# nothing\n", "rules: missing key"),
    ],
    ids=["toml", "unknown-key", "unknown-metric", "min-above-max", "no-bound", "negative-drop", "level", "empty",
         "missing"],
)
def test_policy_errors_name_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_junit_counts_failures_and_keeps_warnings_out_of_them() -> None:
    verdict = gate(
        Rule(metric="clean_acc", min=0.95),
        Rule(metric="robust_acc", min=0.5, attack="pgd"),
        Rule(metric="robust_acc", min=0.9, level=GateLevel.warn),
    )
    xml = JUnitXml.fromstring(render_junit(verdict).encode("utf-8"))
    (suite,) = [s for s in xml if isinstance(s, TestSuite)]
    assert suite.name == "robustinv.gating" and suite.tests == 3 and suite.failures == 1
    cases = list(suite)
    assert [c.name for c in cases] == [o.rule for o in verdict.outcomes]
    assert [c.is_passed for c in cases] == [True, False, True]
    (failure,) = cases[1].result
    assert isinstance(failure, Failure) and failure.type == "gate"
    assert "measured 0.05" in failure.message and "required >= 0.5" in failure.message
    assert cases[2].system_out is not None and cases[2].system_out.startswith("WARNING")


def test_junit_is_deterministic() -> None:
    verdict = gate(Rule(metric="clean_acc", min=0.95), Rule(metric="robust_acc", max_drop=1.0))
    assert render_junit(verdict) == render_junit(verdict)


def test_markdown_escapes_hostile_names() -> None:
    hostile = replace(ROW, model="<script>alert(1)</script>", attack="a|b", flags=("robust>clean",))
    verdict = gate(Rule(metric="clean_acc", min=0.99), rows=[hostile])
    text = render_summary([hostile], suite="demo", verdict=verdict)
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    table_line = next(line for line in text.splitlines() if "script" in line and line.startswith("|"))
    assert "a\\|b" in table_line and table_line.count(" | ") == 7  # the pipe did not add a column
    assert "robust&gt;clean" in table_line
    assert "**Gate: FAIL**" in text


def test_markdown_verdict_lines() -> None:
    assert "no gate policy" in render_summary(ROWS, suite="demo", verdict=None)
    passed = render_summary(ROWS, suite="demo", verdict=gate(Rule(metric="clean_acc", min=0.9)))
    assert "**Gate: PASS**" in passed and "| smallcnn | standard | pgd | 0.3 | 97.0% | 5.0% | 38.0% | – |" in passed


def test_step_summary_appends_to_the_github_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_step_summary("ignored") is None
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_step_summary("## robustinv") == target
    assert target.read_text(encoding="utf-8") == "earlier step\n## robustinv\n"


def test_a_rule_on_the_lower_bound_fails_where_the_measured_value_passes() -> None:
    worst = replace(ROW, attack="worst_case", eps=0.3, n=100, robust_acc=0.88, config={"name": "worst_case"})
    measured = gate(Rule(metric="robust_acc", attack="worst_case", min=0.85), rows=[worst])
    assert measured.passed and "(95% CI 0.8" in measured.outcomes[0].reason
    (outcome,) = gate(Rule(metric="robust_acc", attack="worst_case", min=0.85, bound="low"), rows=[worst]).outcomes
    assert not outcome.passed and outcome.measured == pytest.approx(worst.robust_acc_low)
    assert outcome.rule == "robust_acc (95% low) >= 0.85 [attack=worst_case]"
    bigger = replace(worst, n=2000)  # the same accuracy measured on more inputs is known more precisely
    assert gate(Rule(metric="robust_acc", attack="worst_case", min=0.85, bound="low"), rows=[bigger]).passed


def test_an_interval_bound_needs_an_accuracy() -> None:
    with pytest.raises(ValueError, match="bound = 'low' needs an accuracy"):
        Rule(metric="success_rate", max=0.1, bound="low")


@pytest.mark.parametrize("name", ATTACKS.names())
def test_the_light_capability_table_matches_every_registered_attack(name: str) -> None:
    """The gate derives capabilities from attack names without importing the attacks; the table must agree."""
    assert ATTACK_CAPABILITIES.get(name) == frozenset(ATTACKS.get(name).capabilities())


def test_the_light_capability_table_names_only_registered_attacks() -> None:
    assert sorted(ATTACK_CAPABILITIES) == ATTACKS.names()


def test_a_rule_may_bound_a_measure_column_and_fails_closed_where_no_row_has_it() -> None:
    rows = [replace(row, measures={"grad_evals": 40.0}) for row in ROWS]
    (within,) = evaluate_gate(Policy(rules=[Rule(metric="grad_evals", max=50)]), rows, policy_name="p").outcomes
    assert within.passed and within.measured == 40.0
    (absent,) = evaluate_gate(Policy(rules=[Rule(metric="adv_margin", min=0)]), rows, policy_name="p").outcomes
    assert not absent.passed and "has no column 'adv_margin'" in absent.reason
    with pytest.raises(ValueError, match="did you mean 'robust_acc'"):
        Rule(metric="robust_accc", min=0.5)
