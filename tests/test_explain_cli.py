"""`robustinv explain`: what it writes, that a second run reuses the cached GANs, and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import TINY_SUITE, write_suite
from robustinv.cli import main


def explain(tmp_path: Path, *args: str, suite: str = TINY_SUITE) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["explain", str(write_suite(tmp_path, suite)), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_explain_writes_its_report_and_reuses_the_cached_gans(tmp_path: Path) -> None:
    args = ("--model", "smallcnn", "--out", str(tmp_path / "out"), "--n-train", "80", "--epochs", "2",
            "--mode", "gsft", "--mode", "amortized")
    code, out, err = explain(tmp_path, *args)
    assert code == 0, err
    first = json.loads((tmp_path / "out" / "explain.json").read_text())
    assert first["conv_layers"] == 4 and first["condition_layers"] == [3, 2, 1]  # deepest first, not the shallowest
    assert first["explained_class"] == "predicted" and first["seed"] == 3
    assert first["attack"]["name"] == "pgd" and first["eps"] == 0.2  # the middle of the PGD grid [0.1, 0.3]
    gsft, amortized = first["modes"]
    assert (gsft["mode"], amortized["mode"]) == ("gsft", "amortized")
    assert set(gsft["baselines"]) == {"dataset mean map", "best single map (c" + gsft_best(gsft) + ", affine)",
                                      "per-pixel least squares"}
    assert set(amortized["baselines"]) == {"dataset mean map"}
    assert [row["first"] for row in gsft["ablation"]] == [4, 3, 2] and amortized["ablation"] == []
    assert gsft["trained_now"] and len(gsft["history"]) == 2
    for name in ("explain.md", "explain-gsft.png", "explain-amortized.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "Ablation, gsft" in (tmp_path / "out" / "explain.md").read_text()

    code, _, err = explain(tmp_path, *args)
    assert code == 0, err
    again = json.loads((tmp_path / "out" / "explain.json").read_text())
    assert not any(mode["trained_now"] for mode in again["modes"])
    for before, after in zip(first["modes"], again["modes"]):
        assert before["gan"] == after["gan"] and before["baselines"] == after["baselines"]


def gsft_best(mode: dict) -> str:  # type: ignore[type-arg]
    name = next(n for n in mode["baselines"] if n.startswith("best single map"))
    return name.split("(c")[1].split(",")[0]


@pytest.mark.parametrize(("args", "problem"), [
    (("--model", "nope"), "no model 'nope'; its models: smallcnn"),
    (("--model", "smallcnn", "--defense", "trades"), "no defense 'trades'"),
    (("--model", "smallcnn", "--mode", "global"), "'global' is not one of 'gsft', 'lsft', 'amortized'"),
    (("--model", "smallcnn", "--n-train", "1"), "1 is not in the range x>=2"),
    (("--model", "smallcnn", "--eps", "1.5"), "ε must lie in (0, 1]"),
])
def test_bad_explain_input_is_a_usage_error(tmp_path: Path, args: tuple[str, ...], problem: str) -> None:
    code, _, err = explain(tmp_path, *args, "--out", str(tmp_path / "out"))
    assert code == 2 and problem in err, err
    assert not (tmp_path / "out").exists()


def test_explain_needs_an_iterated_attack(tmp_path: Path) -> None:
    suite = TINY_SUITE.split("[[attacks]]\nname = \"pgd\"")[0]
    code, _, err = explain(tmp_path, "--model", "smallcnn", "--out", str(tmp_path / "out"), suite=suite)
    assert code == 2 and "no iterated Linf attack" in err


def test_the_command_offers_every_explainer_mode() -> None:
    from robustinv.commands.explain import MODES
    from robustinv.interpret.gan import ExplainMode

    assert MODES == tuple(mode.value for mode in ExplainMode)  # the CLI spells them out to stay free of torch
