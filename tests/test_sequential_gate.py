"""The sequential gate end to end: a run that stops once its policy is decided, resumes and extends, and bad policies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import write_suite
from robustinv.cli import main
from robustinv.gating import Policy, Rule
from robustinv.gating.sequential import SequentialGate, State, decide
from robustinv.records import ResultRow
from robustinv.sequential import SequentialTest

SUITE = """
name = "sequential"
seed = 2
n_explain = 0

[dataset]
name = "digits"
n_eval = 200

[[models]]
name = "smallcnn"

[models.train]
epochs = 2
batch_size = 64

[[attacks]]
name = "fgsm"
eps = [0.1, 0.3]
"""

PASSING = """
[sequential]
confidence = 0.95
batch = 40

[[rules]]
metric = "clean_acc"
attack = "worst_case"
min = 0.5
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def run(tmp_path: Path, policy: str, out: str = "out", *extra: str) -> tuple[int, str, Path]:
    """`robustinv run` with the policy; (exit code, stdout and stderr, output folder)."""
    suite = write_suite(tmp_path, SUITE)
    gate = tmp_path / f"{out}.toml"
    gate.write_text(policy)
    code, stdout, stderr = invoke("run", str(suite), "--out", str(tmp_path / out), "--gate", str(gate),
                                  "--store", str(tmp_path / "store.db"), *extra)
    return code, stdout + stderr, tmp_path / out


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    return run(tmp_path_factory.mktemp("sequential"), PASSING)


def test_a_clear_pass_stops_before_the_last_look(decided: tuple[int, str, Path]) -> None:
    code, stderr, out = decided
    assert code == 0, stderr
    sizes = set(pd.read_csv(out / "results.csv")["n"])
    assert len(sizes) == 1, "every row covers the same looks"
    (n,) = sizes
    assert n < 200 and n % 40 == 0, "a clean accuracy far above 50% is decided well before all 200 inputs"
    assert f'"decided_after": {n}' in (out / "gate.json").read_text()
    for name in ("summary.md", "junit.xml", "report.html"):
        assert f"decided after {n} inputs" in (out / name).read_text(), name


def test_a_clear_failure_stops_early_and_exits_1(tmp_path: Path) -> None:
    code, stderr, out = run(tmp_path, PASSING.replace('metric = "clean_acc"', 'metric = "robust_acc"\neps = 0.3')
                            .replace("min = 0.5", "min = 0.9"))
    assert code == 1 and "decided after" in stderr
    assert pd.read_csv(out / "results.csv")["n"].max() < 200


def test_a_stopped_run_extends_with_its_stored_cells(tmp_path: Path) -> None:
    """The same suite into the same folder at a higher confidence: the earlier looks come from the store."""
    code, _, out = run(tmp_path, PASSING)
    before = pd.read_csv(out / "results.csv")
    assert code == 0
    code, output, _ = run(tmp_path, PASSING.replace("confidence = 0.95", "confidence = 0.9999"))
    assert code == 0, output
    after = pd.read_csv(out / "results.csv")
    assert after["n"].max() > before["n"].max(), "more confidence needs more looks"
    reused = int(output.split("resumed: ")[1].split()[0])
    assert reused == 2 * before["n"].max() // 40, "every FGSM cell of the earlier looks came from the store"


@pytest.mark.slow
def test_the_same_looks_under_the_process_executor(decided: tuple[int, str, Path], tmp_path: Path) -> None:
    _, _, serial = decided
    code, stderr, out = run(tmp_path, PASSING, "process", "--executor", "process", "--workers", "2")
    assert code == 0, stderr
    timing = ["run_id", "seconds", "samples_per_s", "train_seconds", "model_train_seconds", "model_source"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv").drop(columns=timing),
                                  pd.read_csv(serial / "results.csv").drop(columns=timing))


@pytest.mark.parametrize(("policy", "problem"), [
    ("[sequential]\nconfidence = 1.5\n[[rules]]\nmetric = \"robust_acc\"\nmin = 0.5\n", "sequential.confidence"),
    ("[sequential]\nbatch = 0\n[[rules]]\nmetric = \"robust_acc\"\nmin = 0.5\n", "sequential.batch"),
    ("[sequential]\n[[rules]]\nmetric = \"mean_linf\"\nmax = 0.5\n", "nothing to decide"),
    ("[sequential]\n[[rules]]\nmetric = \"robust_acc\"\nmax_drop = 2\n", "nothing to decide"),
    ("[sequential]\nbtach = 10\n[[rules]]\nmetric = \"robust_acc\"\nmin = 0.5\n", "btach"),
])
def test_bad_sequential_policies_exit_2_with_one_line(tmp_path: Path, policy: str, problem: str) -> None:
    code, stderr, out = run(tmp_path, policy)
    assert code == 2 and problem in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not out.exists()


def test_a_rule_it_cannot_decide_keeps_every_input_and_says_why() -> None:
    policy = Policy(rules=[Rule(metric="robust_acc", min=0.5), Rule(metric="robust_acc", max_drop=2.0)],
                    sequential={"batch": 10})  # type: ignore[arg-type]
    gate = SequentialGate(policy)
    assert [why for _, why in gate.blocking] == ["max_drop compares with a baseline's value, not a bound on this "
                                                 "run's accuracy"]
    assert not gate.decided(type("Look", (), {"rows": []})())


def test_decisions_name_the_deciding_row(decided: tuple[int, str, Path]) -> None:
    from robustinv.report import load_run

    rows: list[ResultRow] = load_run(decided[2]).rows
    test = SequentialTest(0.95)
    assert decide(Rule(metric="clean_acc", min=0.5), rows, test).state is State.passed
    assert decide(Rule(metric="clean_acc", max=0.5), rows, test).state is State.failed
    assert decide(Rule(metric="clean_acc", min=0.7), rows, test).state is State.open  # 70% of 80: too close
    failed = decide(Rule(metric="clean_acc", min=0.97), rows, test)
    assert failed.state is State.failed and failed.inputs == 80 and failed.high < 0.97 < 1.0
