"""`robustinv run --gate`, `robustinv gate` and `robustinv report` end to end on one tiny run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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


def test_baseline_drop_beyond_allowed_points_fails(run_dir: Path, tmp_path: Path) -> None:
    import json

    baseline = Path(shutil.copytree(run_dir, tmp_path / "baseline"))
    payload = json.loads((baseline / "results.json").read_text(encoding="utf-8"))
    for row in payload["results"]:
        row["robust_acc"] = min(1.0, row["robust_acc"] + 0.05)  # the baseline was 5 points more robust
    (baseline / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    folder = copy_of(run_dir, tmp_path)
    drop = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nattack = "fgsm"\nmax_drop = 2.0\n')
    code, _, stderr = invoke("gate", str(folder), "--policy", str(drop), "--baseline", str(baseline))
    assert code == 1 and "drop" in stderr
    loose = policy(tmp_path, '[[rules]]\nmetric = "robust_acc"\nattack = "fgsm"\nmax_drop = 6.0\n')
    assert invoke("gate", str(folder), "--policy", str(loose), "--baseline", str(baseline))[0] == 0


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
    code, _, stderr = invoke("run", suite, "--out", str(tmp_path / "b"), "--gate", str(drop),
                             "--baseline", "last-pass", "--store", db)
    assert code == 0, stderr  # same suite and seed: no drop against the last passing run
    assert str(tmp_path / "a") in (tmp_path / "b" / "junit.xml").read_text(encoding="utf-8")
    assert invoke("history", "--store", db, "--model", "nope")[1].strip() == "no runs of model 'nope'"
