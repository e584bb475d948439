"""AutoAttack through robustinv equals the reference code; its checks become calibrated flags; bad configs are refused."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from pyautoattack import AutoAttack as ReferenceAutoAttack
from safetensors.torch import save_file

from robustinv.data import Dataset
from robustinv.models.zoo import smallcnn
from robustinv.records import ResultRow
from robustinv.run import run_suite
from robustinv.judge.sanity import Flag, reference_flags
from robustinv.suite import SuiteError, load_suite, parse_suite

from conftest import write_suite
from test_cli import invoke

AA_SUITE = """
name = "aa"
seed = 3

[dataset]
name = "digits"
n_eval = 40

[[models]]
name = "net"
arch = "smallcnn"
weights = "net.safetensors"

[[attacks]]
name = "autoattack"
eps = [0.1]
n = 10
"""


@pytest.mark.slow
def test_the_autoattack_row_equals_a_direct_reference_call(
    tmp_path: Path, digits: Dataset, digits_model: torch.nn.Module
) -> None:
    save_file({k: v.contiguous() for k, v in digits_model.state_dict().items()}, str(tmp_path / "net.safetensors"))
    suite = load_suite(write_suite(tmp_path, AA_SUITE))
    row = next(r for r in run_suite(suite, base_dir=tmp_path).rows if r.attack == "autoattack")
    assert row.n == 10 and row.config["package"] == "pyautoattack" and row.config["version"] == "standard"
    assert row.config["package_version"] == version("pyautoattack")

    model = smallcnn(digits.input_shape, digits.num_classes)
    model.load_state_dict(digits_model.state_dict())
    model.eval()
    x, y = digits.eval_subset(40, 3)
    x, y = x[:10], y[:10]
    reference = ReferenceAutoAttack(model, norm="Linf", eps=0.1, seed=row.seed, version="standard")
    x_adv, _ = reference.run_standard_evaluation(x, y, batch_size=250)
    with torch.no_grad():
        direct = ((model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)).double().mean().item()
    assert row.robust_acc == direct
    assert row.robust_acc < row.clean_acc, "ε = 0.1 breaks some digits: the comparison is not vacuous"
    assert row.config["diagnostics"]["log"]["square"] == pytest.approx(direct, abs=1e-4)
    assert not {f for f in row.flags if f.startswith("aa:")}, "an honest model carries no AutoAttack flag"


@pytest.mark.parametrize(("entry", "message"), [
    ('version = "fast"', "attacks[0].version: Input should be 'standard', 'plus' or 'rand'"),
    ('norm = "l1"', "attacks[0].norm: Input should be 'linf' or 'l2'"),
    ("n = 0", "attacks[0].n: Input should be greater than or equal to 1"),
    ("queries = 100", "attacks[0].queries: unknown key"),
])
def test_bad_autoattack_configs_are_one_line_suite_errors(entry: str, message: str) -> None:
    data = {"name": "s", "dataset": {"name": "digits"}, "models": [{"name": "smallcnn"}],
            "attacks": [{"name": "autoattack", "eps": 0.3, **_toml_pair(entry)}]}
    with pytest.raises(SuiteError, match=re.escape(message)) as caught:
        parse_suite(data)
    assert "\n" not in str(caught.value)


def test_a_bad_autoattack_config_exits_2_on_the_command_line(tmp_path: Path) -> None:
    path = write_suite(tmp_path, AA_SUITE.replace("n = 10", 'version = "fast"'))
    code, _, stderr = invoke("run", str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and "attacks[0].version" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_targeted_apgd_needs_the_dlr_loss() -> None:
    with pytest.raises(SuiteError, match='set loss = "dlr"'):
        parse_suite({"name": "s", "dataset": {"name": "digits"}, "models": [{"name": "smallcnn"}],
                     "attacks": [{"name": "apgd", "eps": 0.3, "targeted": True}]})


def _toml_pair(entry: str) -> dict[str, object]:
    key, value = (part.strip() for part in entry.split("=", 1))
    return {key: value.strip('"') if value.startswith('"') else int(value)}


# Calibrated checks ---------------------------------------------------------------------------

def _aa_row(**diagnostics: object) -> ResultRow:
    return ResultRow(
        run_id="r", dataset="d", model="m", defense="pgd_at", attack="autoattack", norm="linf", eps=0.3, n=200,
        clean_acc=0.99, robust_acc=0.9, success_rate=0.09, mean_linf=0.3, max_linf=0.3, mean_l2=3.0, max_l2=4.0,
        seconds=1.0, samples_per_s=200.0, train_seconds=0.0, samples_per_input=1, candidate_success=0.09,
        diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan, feature_consistency=0.99, flags=(),
        config={"name": "autoattack", "diagnostics": {"checks": [], "log": {}, **diagnostics}}, seed=0,
        model_fingerprint="f", dataset_fingerprint="d", model_source="trained", model_train_seconds=0.0,
    )


def test_square_finding_one_image_in_200_is_not_a_flag_but_finding_many_is() -> None:
    log = {"clean": 0.99, "apgd-ce": 0.915, "apgd-t": 0.91, "fab-t": 0.91}
    assert reference_flags(_aa_row(log={**log, "square": 0.905})) == []  # the reference code warns here
    assert reference_flags(_aa_row(log={**log, "square": 0.80})) == [Flag.aa_square]


def test_zero_gradients_count_only_when_many_inputs_have_them() -> None:
    assert reference_flags(_aa_row(zero_gradient_share=0.01)) == []
    assert reference_flags(_aa_row(zero_gradient_share=1.0)) == [Flag.aa_zero_grad]


def test_the_reference_code_s_other_checks_become_flags() -> None:
    checks = [{"check": "check_randomized", "message": "it seems to be a randomized defense!"},
              {"check": "check_range_output", "message": "it seems that the output is a probability distribution"}]
    assert reference_flags(_aa_row(checks=checks)) == [Flag.aa_randomized, Flag.aa_probabilities]
    assert reference_flags(replace(_aa_row(), config={"name": "pgd"})) == []


def test_too_few_classes_for_the_reference_losses_are_refused_up_front() -> None:
    from torch import nn

    from robustinv.attacks import build_attack
    from robustinv.errors import ModelError
    from robustinv.models.checked import CheckedModel

    three = CheckedModel(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), "tiny", 3)
    build_attack({"name": "apgd", "eps": [0.1]}).validate(three, (1, 8, 8), model_name="tiny")  # CE needs 2
    for table in ({"name": "autoattack", "eps": [0.1]}, {"name": "apgd", "eps": [0.1], "loss": "dlr",
                                                          "targeted": True}):
        with pytest.raises(ModelError, match="has 3 classes"):
            build_attack(table).validate(three, (1, 8, 8), model_name="tiny")
