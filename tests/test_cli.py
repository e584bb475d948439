"""The command line through click's runner: outputs, exit codes, one-line errors, nothing half-written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import robustinv
from cli import main

from conftest import TINY_SUITE, write_suite

REQUIRED_COLUMNS = (
    "run_id dataset model attack norm eps n clean_acc robust_acc success_rate mean_linf max_linf mean_l2 "
    "seconds samples_per_s flags config"
).split()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and robustinv.__version__ in out


@pytest.mark.parametrize(("kind", "expected"), [("attacks", "pgd"), ("models", "lenet5"), ("datasets", "fashion-mnist")])
def test_list(kind: str, expected: str) -> None:
    code, out, _ = invoke("list", kind)
    assert code == 0 and any(line.split()[0] == expected for line in out.splitlines())


def test_list_unknown_kind_is_a_usage_error() -> None:
    code, _, err = invoke("list", "losses")
    assert code == 2 and "datasets" in err


def test_run_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = invoke("run", str(write_suite(tmp_path, TINY_SUITE)), "--out", str(out))
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"results.csv", "results.json", "suite.resolved.toml"}
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(REQUIRED_COLUMNS) <= set(rows[0])
    assert [(r["attack"], float(r["eps"])) for r in rows] == [("fgsm", 0.1), ("fgsm", 0.3), ("pgd", 0.1), ("pgd", 0.3)]
    config = json.loads(rows[2]["config"])
    assert config["steps"] == 5 and config["eps"] == 0.1 and config["name"] == "pgd" and "seed" in config
    for row in rows:
        assert float(row["robust_acc"]) <= float(row["clean_acc"])
        assert float(row["max_linf"]) <= float(row["eps"]) + 1e-6
    payload = json.loads((out / "results.json").read_text())
    assert payload["run"]["suite"] == "tiny" and len(payload["results"]) == 4
    assert "pgd" in stdout and "robust" in stdout


def test_second_run_reuses_the_trained_model(tmp_path: Path) -> None:
    suite = str(write_suite(tmp_path, TINY_SUITE.replace("seed = 1", "seed = 11")))
    assert invoke("run", suite, "--out", str(tmp_path / "a"))[0] == 0
    assert invoke("run", suite, "--out", str(tmp_path / "b"))[0] == 0
    sources = [json.loads((tmp_path / d / "results.json").read_text())["results"][0]["model_source"] for d in "ab"]
    assert sources == ["trained", "cache"]
    robust = [[r["robust_acc"] for r in json.loads((tmp_path / d / "results.json").read_text())["results"]] for d in "ab"]
    assert robust[0] == robust[1], "same suite and seed must give the same numbers"


USER_MODULE = "from torch import nn\n\ndef mnist_only():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('name = "digits"', 'name = "imagenet"'), "unknown dataset 'imagenet'; valid datasets:"),
        (lambda t: t.replace('name = "smallcnn"', 'name = "m"\narch = "vgg"'), "unknown model 'vgg'; valid models:"),
        (lambda t: t.replace('name = "fgsm"', 'name = "deepfool"'), "unknown attack 'deepfool'; valid attacks:"),
        (lambda t: t.replace("[[attacks]]", "[[attacks", 1), "malformed TOML"),
        (lambda t: t.replace('name = "tiny"\n', ""), "name: missing key"),
        (lambda t: t.replace("n_eval = 60", "n_eval = \"sixty\""), "dataset.n_eval"),
        (lambda t: t.replace("eps = [0.1, 0.3]", "eps = [-0.1]", 1), "every ε must be > 0"),
        (lambda t: t.replace("eps = [0.1, 0.3]", "eps = [2.0]", 1), "Linf ε above 1"),
        (lambda t: t.replace('name = "digits"', 'name = "mnist"\nroot = "no/such/folder"'), "does not exist; put"),
        (lambda t: t.replace('name = "smallcnn"', 'name = "m"\narch = "usernet:mnist_only"'), "does not accept"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, edit: object, message: str) -> None:
    (tmp_path / "usernet.py").write_text(USER_MODULE)
    out = tmp_path / "out"
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, edit(TINY_SUITE))), "--out", str(out))  # type: ignore[operator]
    assert code == 2, stderr
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1 or stderr.count("error:") == 1
    assert "Traceback" not in stderr + stdout
    assert not out.exists(), "a failed run must not leave an output folder"


def test_missing_suite_file(tmp_path: Path) -> None:
    code, _, stderr = invoke("run", str(tmp_path / "nope.toml"))
    assert code == 2 and "no such suite file" in stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("robustinv")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and robustinv.__version__ in done.stdout
