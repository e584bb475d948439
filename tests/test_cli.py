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


@pytest.mark.parametrize(("kind", "expected"), [("attacks", "pgd"), ("models", "lenet5"), ("datasets", "fashion-mnist"),
                                                   ("executors", "ray"), ("measures", "diversity")])
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
    assert {p.name for p in out.iterdir()} == {
        "results.csv", "results.json", "suite.resolved.toml", "samples.json", "samples.safetensors",
        "explanations.json", "explanations.safetensors", "report.html", "summary.md", "cells",
    }
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(REQUIRED_COLUMNS) <= set(rows[0])
    assert [(r["attack"], float(r["eps"])) for r in rows] == [
        ("fgsm", 0.1), ("fgsm", 0.3), ("pgd", 0.1), ("pgd", 0.3), ("worst_case", 0.1), ("worst_case", 0.3)]
    worst = rows[-1]
    assert float(worst["robust_acc"]) <= min(float(r["robust_acc"]) for r in rows if float(r["eps"]) == 0.3)
    assert float(worst["robust_acc_low"]) <= float(worst["robust_acc"]) <= float(worst["robust_acc_high"])
    config = json.loads(rows[2]["config"])
    assert config["steps"] == 5 and config["eps"] == 0.1 and config["name"] == "pgd" and "seed" in config
    for row in rows:
        assert float(row["robust_acc"]) <= float(row["clean_acc"])
        assert float(row["max_linf"]) <= float(row["eps"]) + 1e-6
    payload = json.loads((out / "results.json").read_text())
    assert payload["run"]["suite"] == "tiny" and len(payload["results"]) == 6
    assert "pgd" in stdout and "robust" in stdout


def test_second_run_reuses_the_trained_model(tmp_path: Path) -> None:
    suite = str(write_suite(tmp_path, TINY_SUITE.replace("seed = 1", "seed = 11")))
    assert invoke("run", suite, "--out", str(tmp_path / "a"))[0] == 0
    assert invoke("run", suite, "--out", str(tmp_path / "b"))[0] == 0
    sources = [json.loads((tmp_path / d / "results.json").read_text())["results"][0]["model_source"] for d in "ab"]
    assert sources == ["trained", "cache"]
    robust = [[r["robust_acc"] for r in json.loads((tmp_path / d / "results.json").read_text())["results"]] for d in "ab"]
    assert robust[0] == robust[1], "same suite and seed must give the same numbers"


USER_MODULE = "from torch import nn\nfrom robustinv import model_builder\n\n@model_builder\ndef mnist_only():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"


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


INVERSION = """
[[attacks]]
name = "inversion"
eps = [0.3]
samples_per_input = 3

[attacks.train]
steps = 40
batch_size = 16
"""
NO_FEATURES = """from torch import nn

from robustinv import model_builder


@model_builder
def conv_only():
    return nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""


def test_run_with_inversion_adds_diversity_and_targets(tmp_path: Path) -> None:
    text = TINY_SUITE + INVERSION + INVERSION.replace('name = "inversion"', 'name = "inversion"\nlabel = "inv-t"\ntargeted = true')
    out = tmp_path / "out"
    code, _, stderr = invoke("run", str(write_suite(tmp_path, text)), "--out", str(out))
    assert code == 0, stderr
    with (out / "results.csv").open() as handle:
        rows = {r["attack"]: r for r in csv.DictReader(handle)}
    assert {"diversity_cos", "diversity_l2", "train_seconds", "target_success"} <= set(rows["pgd"])
    assert rows["inversion"]["samples_per_input"] == "3" and float(rows["inversion"]["train_seconds"]) > 0
    assert 0 <= float(rows["inversion"]["diversity_cos"]) <= 1 and float(rows["inv-t"]["target_success"]) >= 0
    assert rows["pgd"]["diversity_cos"] == ""  # k = 1: no diversity to measure
    with (out / "inversion_targets.csv").open() as handle:
        cells = list(csv.DictReader(handle))
    assert {c["attack"] for c in cells} == {"inv-t"}
    assert all(c["true_label"] != c["target"] for c in cells)


def test_generate_and_invert_commands(tmp_path: Path) -> None:
    suite = str(write_suite(tmp_path, TINY_SUITE + INVERSION))
    code, stdout, stderr = invoke("generate", suite, "--model", "smallcnn", "--n", "25", "--shard-size", "10",
                                  "--out", str(tmp_path / "gen"))
    assert code == 0, stderr
    assert sorted(p.name for p in (tmp_path / "gen").glob("shard-*.csv")) == [f"shard-0000{i}.csv" for i in range(3)]
    assert "25 verified samples of" in stdout and "verified samples/s" in stdout
    refined = str(write_suite(tmp_path, TINY_SUITE + INVERSION.replace("samples_per_input = 3", "refine_steps = 3"),
                              name="refined.toml"))
    code, stdout, stderr = invoke("generate", refined, "--model", "smallcnn", "--n", "10", "--out", str(tmp_path / "r"))
    assert code == 0, stderr
    assert "3 refine steps" in stdout
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["refine_steps"] == 3 and manifest["refine_step_size"] == pytest.approx(2.5 * 0.3 / 3)
    code, stdout, stderr = invoke("invert", suite, "--model", "smallcnn", "--out", str(tmp_path / "inv"),
                                  "--steps", "30", "--per-class", "4")
    assert code == 0, stderr
    assert len(list((tmp_path / "inv").glob("class-*.png"))) == 10
    assert json.loads((tmp_path / "inv" / "inversion.json").read_text())["per_class"] == 4


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        (lambda t: t + INVERSION.replace("samples_per_input = 3", "samples_per_input = 0"), (),
         "attacks[2].samples_per_input"),
        (lambda t: t + INVERSION.replace("samples_per_input = 3", 'refine_loss = "closest"'), (),
         "attacks[2].refine_loss"),
        (lambda t: t.replace('name = "smallcnn"', 'name = "m"\narch = "usernet:conv_only"') + INVERSION, (),
         "exposes no penultimate features"),
        (lambda t: t.replace('name = "digits"\nn_eval = 60', 'name = "npz"\nroot = "odd.npz"') + INVERSION, (),
         "divisible by 4"),
    ],
)
def test_inversion_bad_input_exits_2(tmp_path: Path, edit: object, args: tuple[str, ...], message: str) -> None:
    import numpy as np

    (tmp_path / "usernet.py").write_text(NO_FEATURES)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "odd.npz", x=rng.random((40, 1, 10, 10), dtype=np.float32), y=np.arange(40) % 10)
    out = tmp_path / "out"
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, edit(TINY_SUITE))), "--out", str(out), *args)  # type: ignore[operator]
    assert code == 2, stderr
    assert message in stderr and "Traceback" not in stderr + stdout
    assert not out.exists()


def test_generate_needs_an_inversion_attack(tmp_path: Path) -> None:
    code, _, stderr = invoke("generate", str(write_suite(tmp_path, TINY_SUITE)), "--model", "smallcnn", "--n", "5",
                             "--out", str(tmp_path / "g"))
    assert code == 2 and "no inversion attack" in stderr
    code, _, stderr = invoke("generate", str(write_suite(tmp_path, TINY_SUITE + INVERSION)), "--model", "nope",
                             "--n", "5", "--out", str(tmp_path / "g"))
    assert code == 2 and "no model 'nope'" in stderr


@pytest.mark.slow
def test_two_identical_runs_write_identical_results(tmp_path: Path) -> None:
    """Same suite, seed and machine, each run training its own model: the same results.csv, timings aside."""
    import os

    import pandas as pd

    from robustinv.records import TIMING_COLUMNS

    suite = str(write_suite(tmp_path, TINY_SUITE.replace("seed = 1", "seed = 21")))
    frames = []
    for name in ("first", "second"):
        env = {"ROBUSTINV_CACHE": str(tmp_path / f"cache-{name}"), "ROBUSTINV_STORE": str(tmp_path / f"{name}.db")}
        result = CliRunner().invoke(main, ["run", suite, "--out", str(tmp_path / name)], env={**os.environ, **env})
        assert result.exit_code == 0, result.stderr
        frames.append(pd.read_csv(tmp_path / name / "results.csv").drop(columns=sorted(TIMING_COLUMNS)))
    assert (frames[0]["model_source"] == "trained").all()
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
