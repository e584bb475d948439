"""`robustinv.evaluate` on the model in hand and `robustinv.gate` on its result, against a suite run of the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import robustinv
from conftest import write_suite
from robustinv.data import Dataset
from robustinv.errors import DataError, RobustinvError
from robustinv.models.zoo import smallcnn
from robustinv.run import run_suite
from robustinv.suite import load_suite

SAME = ["attack", "eps", "n", "clean_acc", "robust_acc", "success_rate", "mean_linf", "max_linf", "mean_l2",
        "max_l2", "feature_consistency", "forward_passes", "backward_passes", "flags", "seed"]


@pytest.fixture(scope="module")
def evaluated(digits: Dataset, digits_model: torch.nn.Module) -> robustinv.RunResult:
    digits_model.train()  # evaluate() must leave the caller's model as it found it
    result = robustinv.evaluate(digits_model, (digits.x_test[:40], digits.y_test[:40]), name="held", eps=[0.1, 0.3],
                                attacks=["fgsm", {"name": "pgd", "steps": 5, "step_size": 0.1}], n_explain=0)
    assert digits_model.training
    digits_model.eval()
    return result


def test_evaluate_equals_a_suite_run_of_the_same_weights(evaluated: robustinv.RunResult, digits: Dataset,
                                                         digits_model: torch.nn.Module, tmp_path: Path) -> None:
    """The weights saved to a file, a builder module beside a suite, the same data as npz: the same numbers."""
    save_file({k: v.contiguous() for k, v in digits_model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    (tmp_path / "nets.py").write_text(
        "import robustinv\nfrom robustinv.models.zoo import smallcnn\n\n@robustinv.model_builder\n"
        "def build() -> object:\n    return smallcnn((1, 8, 8), 10)\n")
    np.savez(tmp_path / "data.npz", x=digits.x_test[:40].numpy(), y=digits.y_test[:40].numpy(),
             x_test=digits.x_test[:40].numpy(), y_test=digits.y_test[:40].numpy())
    suite = load_suite(write_suite(tmp_path, """
name = "held"
n_explain = 0
[dataset]
name = "npz"
root = "data.npz"
[[models]]
name = "held"
arch = "nets:build"
weights = "w.safetensors"
[[attacks]]
name = "fgsm"
eps = [0.1, 0.3]
[[attacks]]
name = "pgd"
eps = [0.1, 0.3]
steps = 5
step_size = 0.1
"""))
    reference = run_suite(suite, base_dir=tmp_path).to_frame()
    frame = evaluated.to_frame()
    pd.testing.assert_frame_equal(frame[SAME], reference[SAME])
    assert (frame["robust_acc"] < frame["clean_acc"]).any()  # the attacks did something


def test_gate_on_a_result_and_on_a_policy_dict(evaluated: robustinv.RunResult, tmp_path: Path) -> None:
    worst = next(r for r in evaluated.rows if r.attack == "worst_case" and r.eps == 0.1)
    verdict = robustinv.gate(evaluated, {"rules": [
        {"metric": "robust_acc", "attack": "worst_case", "eps": 0.1, "min": worst.robust_acc - 0.01}]})
    assert verdict.passed, verdict.summary
    failing = robustinv.gate(evaluated, {"rules": [{"metric": "clean_acc", "min": 1.01}]})
    assert not failing.passed and "clean_acc" in failing.summary
    policy = tmp_path / "gate.toml"
    policy.write_text('[[rules]]\nmetric = "clean_acc"\nmin = 0.5\n')
    assert robustinv.gate(evaluated, policy).passed
    with pytest.raises(RobustinvError, match="metric"):
        robustinv.gate(evaluated, {"rules": [{"metric": "robust_accc", "min": 0.5}]})


def test_evaluate_writes_the_run_folder(digits: Dataset, digits_model: torch.nn.Module, tmp_path: Path) -> None:
    result = robustinv.evaluate(digits_model, (digits.x_test[:20], digits.y_test[:20]), eps=0.2, attacks=["fgsm"],
                                n_explain=0, out=tmp_path / "run", store=tmp_path / "store.db")
    assert {"report.html", "results.csv", "results.json", "summary.md"} <= {p.name for p in (tmp_path / "run").iterdir()}
    policy = {"rules": [{"metric": "clean_acc", "min": 0.0}]}
    here = robustinv.gate(result, policy)
    assert here.passed and here.verified and "computed by this process" in here.summary
    stored = robustinv.gate(tmp_path / "run", policy, store=tmp_path / "store.db")
    assert stored.passed and stored.verified
    elsewhere = robustinv.gate(tmp_path / "run", policy, store=tmp_path / "no-store.db")
    assert elsewhere.passed and not elsewhere.verified and "unverified" in elsewhere.summary


def test_evaluate_takes_a_data_loader_and_arrays(digits: Dataset, digits_model: torch.nn.Module) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(digits.x_test[:20], digits.y_test[:20]), batch_size=7)
    by_loader = robustinv.evaluate(digits_model, loader, eps=0.2, attacks=["fgsm"], n_explain=0)
    by_arrays = robustinv.evaluate(digits_model, (digits.x_test[:20].numpy(), digits.y_test[:20].numpy()), eps=0.2,
                                   attacks=["fgsm"], n_explain=0)
    assert by_loader.rows[0].n == 20 and by_loader.rows[0].robust_acc == by_arrays.rows[0].robust_acc


@pytest.mark.parametrize(("data", "problem"), [
    ((torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.long)), "float NCHW"),
    ((torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long)), "4 integers"),
    ((torch.zeros(4, 1, 8, 8), torch.zeros(4)), "4 integers"),
    (42, "DataLoader"),
])
def test_bad_data_is_refused_with_what_is_wrong(data: object, problem: str) -> None:
    with pytest.raises(DataError, match=problem):
        robustinv.evaluate(smallcnn((1, 8, 8), 10), data, eps=0.1)  # type: ignore[arg-type]


def test_attacks_without_eps_and_reserved_keys_are_refused(digits: Dataset) -> None:
    model = smallcnn((1, 8, 8), 10)
    data = (digits.x_test[:4], digits.y_test[:4])
    with pytest.raises(RobustinvError, match="has no eps"):
        robustinv.evaluate(model, data, attacks=["fgsm"])
    with pytest.raises(RobustinvError, match="executor"):
        robustinv.evaluate(model, data, eps=0.1, executor="process")
