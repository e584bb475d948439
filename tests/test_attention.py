"""Attention in a run: the attribution and neuron columns, the stored explanations, the report, `n_explain`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import TINY_SUITE, write_suite
from robustinv.cli import main
from robustinv.report.rundir import EXPLAIN_JSON, EXPLAIN_TENSORS, load_run
from robustinv.run import run_suite
from robustinv.store import Store
from robustinv.suite import load_suite

ATTENTION_COLUMNS = ["attribution_drift", "attribution_iou", "neuron_consistency", "neuron_purity_clean",
                     "neuron_purity_adv"]


def run(tmp_path: Path, suite: str, name: str = "out") -> tuple[int, str, Path]:
    out = tmp_path / name
    result = CliRunner().invoke(main, ["run", str(write_suite(tmp_path, suite)), "--out", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr, out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the tiny suite that the read-only tests share (copy it before editing)."""
    code, err, out = run(tmp_path_factory.mktemp("attention"), TINY_SUITE)
    assert code == 0, err
    return out


def test_every_attack_row_measures_attention_and_the_report_shows_it(tiny_run: Path) -> None:
    out = tiny_run
    frame = pd.read_csv(out / "results.csv")
    attacks = frame[frame.attack != "worst_case"]
    assert attacks[ATTENTION_COLUMNS].notna().all().all()
    assert ((attacks.attribution_drift > 0) & (attacks.attribution_drift < 2)).all()
    assert ((attacks.attribution_iou >= 0) & (attacks.attribution_iou <= 1)).all()
    # a stronger attack moves the attention further: ε = 0.3 drifts more than ε = 0.1
    pgd = attacks[attacks.attack == "pgd"].set_index("eps")
    assert pgd.attribution_drift[0.3] > pgd.attribution_drift[0.1]
    assert pgd.neuron_consistency[0.3] < pgd.neuron_consistency[0.1]
    assert frame[frame.attack == "worst_case"][ATTENTION_COLUMNS].isna().all().all()

    stored = load_run(out)
    assert [(e.attack, e.eps) for e in stored.explanations] == [("fgsm", 0.3), ("pgd", 0.3)]
    explained = stored.explanations[0]
    assert len(explained.layer_drift) == 4  # smallcnn's four conv layers, shallowest first
    assert explained.images.shape == (2, 8, 1, 8, 8) and explained.maps.shape == (2, 8, 8, 8)
    html = (out / "report.html").read_text()
    assert 'id="attention"' in html and "attribution drift per conv layer under pgd" in html


def test_the_explained_inputs_are_the_same_for_every_attack(tiny_run: Path) -> None:
    fgsm, pgd = load_run(tiny_run).explanations
    assert fgsm.true_labels == pgd.true_labels
    assert (fgsm.images[0] == pgd.images[0]).all() and (fgsm.maps[0] == pgd.maps[0]).all()  # the clean side


def test_n_explain_zero_measures_no_attention(tmp_path: Path) -> None:
    code, err, out = run(tmp_path, "n_explain = 0\n" + TINY_SUITE)
    assert code == 0, err
    frame = pd.read_csv(out / "results.csv")
    assert frame[ATTENTION_COLUMNS].isna().all().all()
    assert not (out / EXPLAIN_JSON).exists() and not (out / EXPLAIN_TENSORS).exists()
    assert 'id="attention"' not in (out / "report.html").read_text()


def test_fewer_explained_inputs_change_the_attention_numbers_not_the_attacks(tmp_path: Path, tiny_run: Path) -> None:
    code, err, few = run(tmp_path, "n_explain = 20\n" + TINY_SUITE, "few")
    assert code == 0, err
    a, b = (pd.read_csv(folder / "results.csv") for folder in (tiny_run, few))
    assert (a.robust_acc == b.robust_acc).all()  # the attacks are the same cells' numbers
    assert not math.isclose(a.attribution_drift[0], b.attribution_drift[0])


@pytest.mark.parametrize(("value", "problem"), [
    ("-1", "greater than or equal to 0"), ("1.5", "valid integer"), ("true", "expected a number"),
    ('"many"', "valid integer"), ("61", "exceeds dataset.n_eval (60)"),
])
def test_bad_n_explain_is_a_usage_error(tmp_path: Path, value: str, problem: str) -> None:
    code, err, out = run(tmp_path, f"n_explain = {value}\n" + TINY_SUITE)
    assert code == 2
    assert "n_explain" in err and problem in err
    assert "Traceback" not in err and not out.exists()


def test_explanations_come_back_from_the_store_when_a_run_is_reused(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    out = tmp_path / "out"
    with Store(tmp_path / "robustinv.db") as store:
        first = run_suite(suite, store=store, out_dir=out)
    with Store(tmp_path / "robustinv.db") as store:
        again = run_suite(suite, store=store, out_dir=out)
    assert again.computed == 0 and len(again.explanations) == len(first.explanations) == 2
    for before, after in zip(first.explanations, again.explanations):
        assert before.meta() == after.meta()
        assert (before.images == after.images).all() and (before.maps == after.maps).all()


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda meta: meta[0].update(layer_drift=[5.0]), "layer_drift must be a list of numbers in [0, 2]"),
    (lambda meta: meta[0].pop("true_labels"), "an explanation needs exactly the keys"),
    (lambda meta: meta.append(meta[0]), "expected a list of 2 explanations"),
])
def test_an_edited_explanations_file_is_refused_with_its_problem(tmp_path: Path, tiny_run: Path, edit: Any,
                                                                 problem: str) -> None:
    out = tmp_path / "edited"
    shutil.copytree(tiny_run, out)
    meta = json.loads((out / EXPLAIN_JSON).read_text())
    edit(meta)
    (out / EXPLAIN_JSON).write_text(json.dumps(meta))
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 2 and problem in result.stderr and EXPLAIN_JSON in result.stderr
