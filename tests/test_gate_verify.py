"""What the gate derives instead of trusting a row's description, which baselines it compares, and what it verified."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from junitparser import JUnitXml

from robustinv.gating import Policy, Rule, gate_run
from robustinv.gating.provenance import UnverifiableRows, computed_here, verify_rows
from robustinv.judge.sanity import Flag, check_rows
from robustinv.records import GateVerdict, ResultRow, rows_digest
from robustinv.records.gate_verdict import Provenance
from robustinv.report.junit import render_junit
from robustinv.report.markdown import render_summary
from robustinv.report.folder_json import RunFolderError
from robustinv.report.rundir import GATE_JSON, gate_bytes, parse_run
from robustinv.store import RunStatus, Store

from test_fuzz import FILES, INFO

BASE = ResultRow(
    run_id="r", dataset="digits", model="m", defense="standard", attack="fgsm", norm="linf", eps=0.3, n=60,
    clean_acc=0.9, robust_acc=0.5, success_rate=0.4, mean_linf=0.3, max_linf=0.3, mean_l2=1.0, max_l2=1.0,
    seconds=1.0, samples_per_s=60.0, train_seconds=0.0, samples_per_input=1, candidate_success=0.4,
    diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan, feature_consistency=math.nan, flags=(),
    config={"name": "fgsm", "norm": "linf", "batch_size": 256, "random_start": False, "restarts": 1, "eps": 0.3,
            "seed": 5, "capabilities": ["single_step"]},
    seed=5, model_fingerprint="f", dataset_fingerprint="d", model_source="trained", model_train_seconds=0.0,
)
PGD = replace(BASE, attack="pgd", robust_acc=0.3, seed=6, config={
    "name": "pgd", "norm": "linf", "batch_size": 256, "random_start": True, "restarts": 1, "steps": 10,
    "step_size": 0.05, "eps": 0.3, "seed": 6, "capabilities": ["iterated"]})
WORST = replace(BASE, attack="worst_case", robust_acc=0.25, config={
    "name": "worst_case", "norm": "linf", "eps": 0.3, "attacks": {"fgsm": 60, "pgd": 60}, "seeds": {"fgsm": 5, "pgd": 6},
    "log": [], "findings": [], "notes": []})
ROWS = [BASE, PGD, WORST]
DROP = Policy(rules=[Rule(metric="robust_acc", attack="worst_case", max_drop=1.0)])
MIN = Policy(rules=[Rule(metric="robust_acc", attack="worst_case", min=0.0)])


def verdict(policy: Policy, rows: list[ResultRow], baseline: list[ResultRow] | None = None) -> GateVerdict:
    return gate_run(policy, rows, policy_name="p.toml", baseline=baseline, baseline_name=None if baseline is None else "b")


def reason(policy: Policy, rows: list[ResultRow], baseline: list[ResultRow] | None = None) -> str:
    result = verdict(policy, rows, baseline)
    assert not result.passed, "the gate must fail closed"
    return result.outcomes[0].reason


def with_config(row: ResultRow, **changes: object) -> ResultRow:
    return replace(row, config={**row.config, **changes})


def test_honest_rows_pass_and_compare_with_an_identical_baseline() -> None:
    assert verdict(MIN, ROWS).passed
    assert verdict(DROP, ROWS, ROWS).passed


# What a re-check derives from rows, not from their descriptions ----------------------------------

def test_a_worst_case_is_checked_against_every_row_of_its_eps_whatever_its_config_lists() -> None:
    raised = replace(WORST, robust_acc=0.45)  # above PGD's 0.3 on the same inputs: not a worst case
    hidden = with_config(raised, attacks={"fgsm": 60})  # the edit also drops PGD from the description
    worst = check_rows([BASE, PGD, hidden])[2]
    assert Flag.worst_above_attack.value in worst.flags


def test_pgd_weaker_than_fgsm_follows_from_the_attack_names_not_from_recorded_capabilities() -> None:
    stronger = replace(PGD, robust_acc=0.6, config={k: v for k, v in PGD.config.items() if k != "capabilities"})
    fgsm = replace(BASE, config={k: v for k, v in BASE.config.items() if k != "capabilities"})
    rows = check_rows([fgsm, stronger])
    assert Flag.pgd_weaker_than_fgsm.value in rows[1].flags


@pytest.mark.parametrize(("rows", "message"), [
    ([with_config(BASE, name="square"), PGD, WORST], "its config lists the capabilities single_step, but square's are"),
    ([with_config(BASE, name="nothing"), PGD, WORST], "names attack 'nothing', which robustinv has not registered"),
    ([replace(BASE, config={"eps": 0.3}), PGD, WORST], "its config names no attack"),
    ([with_config(BASE, capabilities=["iterated"]), PGD, WORST], "but fgsm's are single_step"),
    ([BASE, PGD, with_config(WORST, attacks={"fgsm": 60})], "combines fgsm (n=60), but the rows at its ε are"),
    ([BASE, PGD, with_config(WORST, attacks={"fgsm": 60, "pgd": 60, "apgd": 60})], "apgd (n=60)"),
    ([BASE, PGD, with_config(WORST, attacks={"fgsm": 60, "pgd": 20})], "pgd (n=20)"),
], ids=["renamed", "unknown", "nameless", "capabilities", "member-hidden", "member-invented", "member-n"])
def test_a_description_that_contradicts_the_rows_fails_every_rule(rows: list[ResultRow], message: str) -> None:
    assert message in reason(MIN, rows) and "(an edited or inconsistent record)" in reason(MIN, rows)
    baseline_reason = reason(DROP, ROWS, rows)
    assert baseline_reason.startswith("the baseline: ") and message in baseline_reason


def test_the_guards_unbounded_row_is_no_member_of_a_worst_case() -> None:
    unbounded = replace(PGD, attack="pgd-unbounded", robust_acc=0.0)
    assert verdict(MIN, [BASE, PGD, unbounded, WORST]).passed


# Baselines: checked like the judged run, compared only when evaluated alike -----------------------

def test_a_baseline_row_the_sanity_checks_flag_is_not_compared() -> None:
    edited = [BASE, PGD, replace(WORST, robust_acc=0.45)]  # an edited baseline: its worst case above PGD
    assert "the baseline's row is flagged by the sanity checks (worst>attack)" in reason(DROP, ROWS, edited)


@pytest.mark.parametrize(("baseline", "difference"), [
    ([replace(BASE, n=100), replace(PGD, n=100), replace(with_config(WORST, attacks={"fgsm": 100, "pgd": 100}), n=100)],
     "n 60 vs 100"),
    ([BASE, with_config(PGD, restarts=8), WORST], "pgd config.restarts 1 vs 8"),
    ([BASE, with_config(PGD, steps=40), WORST], "pgd config.steps 10 vs 40"),
    ([replace(r, seed=r.seed + 1) for r in ROWS], "seed 5 vs 6"),
    ([replace(r, dataset_fingerprint="other") for r in ROWS], 'dataset_fingerprint "d" vs "other"'),
    ([BASE, with_config(WORST, attacks={"fgsm": 60}, seeds={"fgsm": 5})], "pgd combined here only"),
], ids=["n", "restarts", "steps", "seed", "dataset", "member"])
def test_a_baseline_evaluated_differently_fails_closed_naming_the_difference(
    baseline: list[ResultRow], difference: str,
) -> None:
    text = reason(DROP, ROWS, baseline)
    assert "not comparable with the baseline, which evaluated it differently" in text and difference in text


def test_a_row_compared_directly_names_its_own_config_difference() -> None:
    policy = Policy(rules=[Rule(metric="robust_acc", attack="pgd", max_drop=1.0)])
    text = reason(policy, ROWS, [BASE, with_config(PGD, step_size=0.01), WORST])
    assert "config.step_size 0.05 vs 0.01" in text


def test_harmless_differences_still_compare() -> None:
    """Another model, timings and what attacks reported do not make two evaluations different."""
    def other(row: ResultRow) -> ResultRow:
        config = {**row.config, "diagnostics": {"log": {"clean": 0.9}}, "package_version": "0.0.1"}
        if row.attack == "worst_case":
            config.update(log=[{"attack": "fgsm", "newly_broken": 1, "unique": 0, "robust_acc": 0.5,
                                "attack_acc": 0.5}], notes=["pgd not converged"])
        return replace(row, model_fingerprint="g", model_source="cache", seconds=9.0, samples_per_s=1.0,
                       run_id="old", config=config)
    result = verdict(DROP, ROWS, [other(r) for r in ROWS])
    assert result.passed, result.outcomes[0].reason


# What the verdict says about verification --------------------------------------------------------

def test_the_verdict_says_whether_its_rows_were_verified() -> None:
    verified = gate_run(MIN, ROWS, policy_name="p", provenance=[computed_here("r")])
    assert verified.verified and verified.verification == "verified: run r: computed by this process"
    unverified = gate_run(MIN, ROWS, policy_name="p", provenance=[
        computed_here("r"), Provenance("baseline run q", False, "no results store at s.db to check its rows against")])
    assert not unverified.verified
    assert unverified.verification.startswith("unverified: baseline run q: no results store at s.db")
    assert not gate_run(MIN, ROWS, policy_name="p").verified, "no provenance is no verification"


def test_gate_json_junit_and_summary_carry_the_verification() -> None:
    provenance = (Provenance("run r1", False, "no results store at s.db to check its rows against"),)
    gated = replace(verdict(MIN, ROWS), provenance=provenance)
    files = {**FILES, GATE_JSON: gate_bytes(gated, INFO.run_id)}
    stored = json.loads(files[GATE_JSON])
    assert stored["verified"] is False and stored["verification"].startswith("unverified: run r1")
    assert parse_run(files, Path("run")).gate == gated, "gate.json round-trips its provenance"
    with pytest.raises(RunFolderError, match="'verified' says True"):
        parse_run({**files, GATE_JSON: json.dumps({**stored, "verified": True}).encode()}, Path("run"))
    older = {k: v for k, v in stored.items() if k not in ("provenance", "verified", "verification")}
    read_back = parse_run({**files, GATE_JSON: json.dumps(older).encode()}, Path("run")).gate
    assert read_back is not None and not read_back.verified, "a verdict that records no verification is not verified"
    suite = next(iter(JUnitXml.fromstring(render_junit(gated).encode())))
    assert {p.name: p.value for p in suite.properties()}["verification"].startswith("unverified: run r1")
    assert all("unverified: run r1" in (case.system_out or "") for case in suite)
    assert "**Rows not verified**: run r1: no results store at s.db" in render_summary(ROWS, suite="t", verdict=gated)


# Rows against the results store -----------------------------------------------------------------

def test_rows_are_verified_refused_or_reported_unverified_by_what_the_store_knows(tmp_path: Path) -> None:
    folder, rows = tmp_path / "run", [replace(r, run_id="r1") for r in ROWS]
    store_path = tmp_path / "s.db"
    assert not verify_rows(None, store_path, "r1", rows, folder, subject="run r1").verified
    with Store(store_path) as store:
        assert "knows neither this run nor" in verify_rows(store, store_path, "r1", rows, folder, subject="x").how
        store.open_run(run_id="r1", suite="t", suite_key="k", out_dir=folder, started="t0")
        unfinished = verify_rows(store, store_path, "r1", rows, folder, subject="x")
        assert not unfinished.verified and "holds no digest of its rows (its last attempt is running" in unfinished.how
        store.finish_run("r1", RunStatus.finished, results_digest=rows_digest(rows))
        assert verify_rows(store, store_path, "r1", rows, folder, subject="x").verified
        edited = [replace(rows[0], robust_acc=0.9), *rows[1:]]
        with pytest.raises(UnverifiableRows, match="does not match run r1 as the results store"):
            verify_rows(store, store_path, "r1", edited, folder, subject="x")
        renamed = [replace(r, run_id="forged") for r in edited]
        with pytest.raises(UnverifiableRows, match="holds run 'forged', which the results store .* recorded run 'r1'"):
            verify_rows(store, store_path, "forged", renamed, folder, subject="x")
        moved = verify_rows(store, store_path, "r1", rows, tmp_path / "elsewhere", subject="x")
        assert moved.verified, "a copied folder of a known run is verified by the run's digest"
