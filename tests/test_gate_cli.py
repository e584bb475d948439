"""`robustinv run --gate`, `robustinv gate` and `robustinv report` end to end on one tiny run."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from junitparser import JUnitXml

from cli import main

from conftest import TINY_SUITE, write_suite

HOSTILE = "<script>alert(1)</script>"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run on digits with a hostile model name and attack label, reused by every test here."""
    folder = tmp_path_factory.mktemp("gated")
    text = TINY_SUITE.replace('name = "smallcnn"', f'name = "{HOSTILE}"\narch = "smallcnn"')
    text = text.replace('name = "pgd"', f'name = "pgd"\nlabel = "pgd{HOSTILE}"')
    # PGD must reach the ε-ball's boundary (10 × 0.05 > 0.3), or it may leave more accuracy than FGSM: a flag.
    text = text.replace("steps = 5", "steps = 10")
    out = folder / "run"
    code, _, stderr = invoke("run", str(write_suite(folder, text)), "--out", str(out))
    assert code == 0, stderr
    return out


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


PASSING = """
[[rules]]
metric = "clean_acc"
min = 0.5

[[rules]]
metric = "robust_acc"
attack = "fgsm"
eps = 0.1
min = 0.0
"""
FAILING = PASSING + """
[[rules]]
name = "PGD must hold at 0.3"
metric = "robust_acc"
eps = 0.3
min = 0.99
"""


def test_passing_policy_exits_0_and_writes_junit(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    code, _, stderr = invoke("gate", str(folder), "--policy", str(policy(tmp_path, PASSING)))
    assert code == 0, stderr
    suite = next(iter(JUnitXml.fromfile(str(folder / "junit.xml"))))
    assert suite.tests == 2 and suite.failures == 0
    assert "gate: PASSED" in stderr
    assert "PASS" in (folder / "report.html").read_text(encoding="utf-8")


def test_failing_policy_exits_1_with_one_line_per_rule(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    code, _, stderr = invoke("gate", str(folder), "--policy", str(policy(tmp_path, FAILING)))
    assert code == 1
    rule_lines = [line for line in stderr.splitlines() if line.startswith("gate ") and ":" in line[5:]]
    assert len(rule_lines) == 3 and sum(line.startswith("gate FAIL") for line in rule_lines) == 1
    suite = next(iter(JUnitXml.fromfile(str(folder / "junit.xml"))))
    assert suite.tests == 3 and suite.failures == 1
    failed = [case for case in suite if case.result]
    message = failed[0].result[0].message
    assert "0.99" in message  # the required value, next to the measured one


def test_malformed_policy_exits_2_before_running(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, TINY_SUITE)
    bad = policy(tmp_path, "[[rules]]\nmetric = \"clean_acc\"\nminn = 0.9\n")
    code, stdout, stderr = invoke("run", str(suite), "--out", str(tmp_path / "out"), "--gate", str(bad))
    assert code == 2 and "minn" in stderr and "Traceback" not in stdout + stderr
    assert not (tmp_path / "out").exists()


def edit_rows(folder: Path, change: Callable[[dict[str, Any]], None], run_id: str | None = None) -> None:
    """Change every row of the folder's results.json (and, given `run_id`, rename its run)."""
    payload = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    for row in payload["results"]:
        change(row)
        row["run_id"] = run_id or row["run_id"]
    payload["run"]["run_id"] = run_id or payload["run"]["run_id"]
    (folder / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    (folder / "gate.json").unlink(missing_ok=True)


def more_robust(row: dict[str, Any]) -> None:
    row["robust_acc"] = min(row["clean_acc"], row["robust_acc"] + 0.05)  # the baseline was 5 points more robust


def test_baseline_drop_beyond_allowed_points_fails(run_dir: Path, tmp_path: Path) -> None:
    baseline = Path(shutil.copytree(run_dir, tmp_path / "baseline"))
    edit_rows(baseline, more_robust, run_id="an-earlier-run")
    folder = copy_of(run_dir, tmp_path)
    no_store = ("--store", str(tmp_path / "none.db"))  # nothing to verify against: the edit cannot be told
    drop = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nattack = "fgsm"\nmax_drop = 2.0\n')
    code, _, stderr = invoke("gate", str(folder), "--policy", str(drop), "--baseline", str(baseline), *no_store)
    assert code == 1 and "drop" in stderr
    loose = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nattack = "fgsm"\nmax_drop = 6.0\n')
    code, _, stderr = invoke("gate", str(folder), "--policy", str(loose), "--baseline", str(baseline), *no_store)
    assert code == 0 and "gate: UNVERIFIED: " in stderr and not (tmp_path / "none.db").exists()
    assert "baseline run an-earlier-run: no results store at" in stderr


def test_a_baseline_is_checked_against_the_store_like_the_judged_run(run_dir: Path, tmp_path: Path) -> None:
    """A copy of a real baseline edited to robust_acc = 0 made every max_drop rule pass."""
    baseline = Path(shutil.copytree(run_dir, tmp_path / "baseline"))  # the store knows its run
    edit_rows(baseline, lambda row: row.__setitem__("robust_acc", 0.0))
    folder = copy_of(run_dir, tmp_path)
    edit_rows(folder, lambda row: None, run_id="judged")  # a run the store does not know, judged against it
    drop = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nmax_drop = 0.0\n')
    before = (folder / "results.json").read_bytes()
    code, _, stderr = invoke("gate", str(folder), "--policy", str(drop), "--baseline", str(baseline))
    assert code == 2 and f"{baseline / 'results.json'} does not match run" in stderr, stderr
    assert (folder / "results.json").read_bytes() == before and "Traceback" not in stderr
    code, _, stderr = invoke("gate", str(folder), "--policy", str(drop), "--baseline", str(folder))
    assert code == 2 and "that is the folder of the run being judged" in stderr
    code, _, stderr = invoke("gate", str(copy_of(run_dir, tmp_path / "again")), "--policy", str(drop),
                             "--baseline", str(run_dir))
    assert code == 2 and "the run being judged" in stderr, "a copy of the judged run is no baseline either"


def test_the_verdict_says_whether_it_verified_the_rows(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    code, _, stderr = invoke("gate", str(folder), "--policy", str(policy(tmp_path, PASSING)))
    assert code == 0 and "gate: verified: run " in stderr and "match the digest the results store" in stderr
    assert json.loads((folder / "gate.json").read_text(encoding="utf-8"))["verified"] is True
    code, _, stderr = invoke("gate", str(folder), "--policy", str(policy(tmp_path, PASSING)),
                             "--store", str(tmp_path / "none.db"))
    assert code == 0, stderr
    gate = json.loads((folder / "gate.json").read_text(encoding="utf-8"))
    assert gate["verified"] is False and "no results store at" in gate["verification"]
    assert "gate: UNVERIFIED: run " in stderr
    suite = next(iter(JUnitXml.fromfile(str(folder / "junit.xml"))))
    assert {p.name: p.value for p in suite.properties()}["verification"].startswith("unverified: run")
    assert "**Rows not verified**" in (folder / "summary.md").read_text(encoding="utf-8")
    assert "Rows not verified" in (folder / "report.html").read_text(encoding="utf-8")


def test_missing_metric_fails_closed(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    # PGD rows carry no target success (NaN): a rule on it must fail, not pass vacuously.
    nan_rule = policy(tmp_path, '[[rules]]\nmetric = "target_success"\nattack = "fgsm"\nmin = 0.0\n')
    code, _, stderr = invoke("gate", str(folder), "--policy", str(nan_rule))
    assert code == 1 and "gate FAIL" in stderr


def test_report_reproduces_the_html_from_stored_records(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    before = (folder / "report.html").read_text(encoding="utf-8")
    (folder / "report.html").unlink()
    code, _, stderr = invoke("report", str(folder))
    assert code == 0, stderr
    after = (folder / "report.html").read_text(encoding="utf-8")
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\-Z0-9:]*")
    assert stamp.sub("T", before) == stamp.sub("T", after)
    assert len(before) > 10_000 and "data:image/png;base64," in before


def test_hostile_names_are_escaped_in_html_and_intact_in_csv_json(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE in (run_dir / "results.csv").read_text(encoding="utf-8")
    assert HOSTILE in (run_dir / "results.json").read_text(encoding="utf-8")


def test_summary_goes_to_the_github_step_summary(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    summary = tmp_path / "step_summary.md"
    code, _, _ = invoke("gate", str(folder), "--policy", str(policy(tmp_path, PASSING)),
                        env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 0 and "PASS" in summary.read_text(encoding="utf-8")


def test_report_of_a_folder_without_results_is_an_input_error(tmp_path: Path) -> None:
    code, _, stderr = invoke("report", str(tmp_path))
    assert code == 2 and "not a run folder" in stderr


def test_history_and_last_passing_baseline(tmp_path: Path) -> None:
    # A PGD that reaches the ε boundary: with 5 × 0.05 < 0.3 FGSM beats it, a masking finding that fails the gate.
    text = TINY_SUITE.replace("steps = 5", "steps = 10")
    suite, db = str(write_suite(tmp_path, text)), str(tmp_path / "runs.db")
    code, _, stderr = invoke("run", suite, "--out", str(tmp_path / "a"), "--baseline", "last-pass",
                             "--gate", str(policy(tmp_path, PASSING)), "--store", db)
    assert code == 2 and "holds no run of suite 'tiny' whose gate passed" in stderr
    code, _, stderr = invoke("run", suite, "--out", str(tmp_path / "a"), "--gate", str(policy(tmp_path, PASSING)),
                             "--store", db)
    assert code == 0, stderr
    code, out, _ = invoke("history", "--store", db)
    assert code == 0 and "gate PASS" in out and "smallcnn [standard]" in out and "worst robust" in out
    drop = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nmax_drop = 0.0\n')
    code, _, stderr = invoke("gate", str(tmp_path / "a"), "--policy", str(drop), "--baseline", "last-pass",
                             "--store", db)
    assert code == 2 and "holds no run of suite 'tiny' whose gate passed, besides the run being judged" in stderr
    code, _, stderr = invoke("run", suite, "--out", str(tmp_path / "a"), "--gate", str(drop),
                             "--baseline", "last-pass", "--store", db)
    assert code == 2 and "besides the run being judged" in stderr, "a rerun into a's folder is a's run again"
    code, _, stderr = invoke("run", suite, "--out", str(tmp_path / "b"), "--gate", str(drop),
                             "--baseline", "last-pass", "--store", db)
    assert code == 0, stderr  # same suite and seed: no drop against the last passing run
    assert str(tmp_path / "a") in (tmp_path / "b" / "junit.xml").read_text(encoding="utf-8")
    assert "gate: verified: run " in stderr and "; baseline run " in stderr
    code, _, stderr = invoke("gate", str(tmp_path / "b"), "--policy", str(drop), "--baseline", "last-pass",
                             "--store", db)
    assert code == 0 and "baseline run" in stderr, "b's own verdict is not its baseline: a is"
    assert str(tmp_path / "a") in (tmp_path / "b" / "junit.xml").read_text(encoding="utf-8")
    assert invoke("history", "--store", db, "--model", "nope")[1].strip() == "no runs of model 'nope'"

    # Renamed in every row, made as robust as it is accurate, its verdict deleted: the store knows the folder.
    run_a = tmp_path / "a"
    payload = json.loads((run_a / "results.json").read_text(encoding="utf-8"))
    payload["run"]["run_id"] = "forged"
    for row in payload["results"]:
        row.update(run_id="forged", robust_acc=row["clean_acc"])
    (run_a / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    (run_a / "gate.json").unlink()
    strict = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nattack = "worst_case"\nmin = 0.5\n')
    code, _, stderr = invoke("gate", str(run_a), "--policy", str(strict), "--store", db)
    assert code == 2 and "holds run 'forged', which the results store" in stderr and "recorded run" in stderr
    assert not (run_a / "gate.json").exists()
