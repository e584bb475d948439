"""Defended references: loss terms, the inner attack, the training loop, the masking guard."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustinv.attacks import build_attack
from robustinv.data import Dataset
from robustinv.errors import RobustinvError
from robustinv.gating import Policy, Rule, evaluate_gate
from robustinv.judge.guard import GuardConfig, GuardEvidence, convergence_notes, masking_findings
from robustinv.judge.worst_case import Outcome, worst_case
from robustinv.metrics import feature_consistency, robust_accuracy
from robustinv.training import ModelSpec, prepare_model
from robustinv.models.zoo import smallcnn
from robustinv.run import run_suite
from robustinv.runtime import predict_logits
from robustinv.judge.sanity import Flag
from robustinv.suite import load_suite
from robustinv.training import AdversarialRecipe, TrainRecipe, train
from robustinv.training.inner import linf_pgd, uniform_start
from robustinv.training.loop import warmed_up_eps
from robustinv.training.losses import consistency_term, trades_kl

from conftest import TINY_SUITE, write_suite
from test_cli import invoke

ADVERSARIAL = AdversarialRecipe(epochs=6, batch_size=64, lr=3e-3, eps=0.2, steps=3)


def test_consistency_term_is_zero_when_features_match_and_squared_l2_otherwise() -> None:
    phi = torch.randn(5, 7)
    assert consistency_term(phi, phi.clone()) == 0
    other = phi.clone()
    other[:, 0] += 2.0  # every row moves by 2 in one coordinate: squared distance 4
    assert consistency_term(phi, other).item() == pytest.approx(4.0)


def test_trades_kl_is_zero_for_equal_outputs_and_positive_otherwise() -> None:
    logits = torch.randn(4, 10)
    assert trades_kl(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert trades_kl(logits, logits.flip(1)).item() > 0.1


def test_feature_consistency_metric() -> None:
    phi = torch.rand(6, 5) + 0.1
    assert feature_consistency(phi, 3 * phi) == pytest.approx(1.0)
    assert feature_consistency(phi, -phi) == pytest.approx(-1.0)


def test_inner_pgd_stays_in_the_ball_and_raises_the_loss(digits: Dataset, digits_model: torch.nn.Module) -> None:
    x, y = digits.x_test[:64], digits.y_test[:64]
    eps = 0.1
    x_adv = linf_pgd(digits_model, x, lambda logits: F.cross_entropy(logits, y), eps=eps, steps=5, step_size=0.03,
                     start=uniform_start(x, eps))
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(digits_model(x_adv), y) > F.cross_entropy(digits_model(x), y)
    assert all(p.requires_grad for p in digits_model.parameters()), "parameters must be unfrozen afterwards"


def test_eps_warms_up_linearly_then_stays() -> None:
    recipe = AdversarialRecipe(eps=0.3, warmup=0.5)
    assert warmed_up_eps(recipe, 0, 100) == pytest.approx(0.3 / 50)
    assert warmed_up_eps(recipe, 24, 100) == pytest.approx(0.15)
    assert warmed_up_eps(recipe, 80, 100) == pytest.approx(0.3)
    assert warmed_up_eps(AdversarialRecipe(eps=0.3, warmup=0), 0, 100) == pytest.approx(0.3)


def test_default_inner_step_sizes() -> None:
    assert AdversarialRecipe(steps=3).inner_step_size(0.3) == pytest.approx(0.25)
    fgsm = AdversarialRecipe(inner="fgsm_rs")
    assert fgsm.inner_steps == 1 and fgsm.inner_step_size(0.3) == pytest.approx(0.375)


def _pgd_robust(model: torch.nn.Module, digits: Dataset, eps: float) -> float:
    attack = build_attack({"name": "pgd", "eps": [eps], "steps": 20, "step_size": eps / 8})
    x, y = digits.x_test, digits.y_test
    out = attack.run(model, x, y, eps, seed=0)
    return robust_accuracy(predict_logits(model, x).argmax(1), predict_logits(model, out.x_adv).argmax(1), y)


@pytest.mark.slow
def test_consistency_training_beats_standard_under_pgd(digits: Dataset, digits_model: torch.nn.Module) -> None:
    defended = smallcnn(digits.input_shape, digits.num_classes)
    train(defended, digits.x_train, digits.y_train, ADVERSARIAL, defense="consistency_at", seed=0)
    standard, robust = _pgd_robust(digits_model, digits, 0.2), _pgd_robust(defended, digits, 0.2)
    assert robust > standard + 0.2, (standard, robust)


@pytest.mark.parametrize("defense", ["pgd_at", "trades"])
def test_every_adversarial_defense_trains_to_a_usable_model(digits: Dataset, defense: str) -> None:
    model = smallcnn(digits.input_shape, digits.num_classes)
    recipe = ADVERSARIAL.model_copy(update={"epochs": 2})
    seconds = train(model, digits.x_train, digits.y_train, recipe, defense=defense, seed=0)
    clean = float((predict_logits(model, digits.x_test).argmax(1) == digits.y_test).double().mean())
    assert seconds > 0 and clean > 0.3, clean


def test_adversarial_defense_needs_an_adversarial_recipe(digits: Dataset) -> None:
    model = smallcnn(digits.input_shape, digits.num_classes)
    with pytest.raises(RobustinvError, match="needs an adversarial recipe"):
        train(model, digits.x_train, digits.y_train, TrainRecipe(epochs=1), defense="pgd_at", seed=0)


def test_defended_models_are_cached_apart_from_the_standard_one(digits: Dataset, tmp_path: Path) -> None:
    spec = ModelSpec(name="smallcnn", train=TrainRecipe(epochs=1), defenses=["standard", "pgd_at"],
                     adversarial=AdversarialRecipe(epochs=1, eps=0.1, steps=1))
    args = {"seed": 0, "device": torch.device("cpu"), "cache_dir": tmp_path}
    first = prepare_model(spec, digits, defense="pgd_at", **args)  # type: ignore[arg-type]
    again = prepare_model(spec, digits, defense="pgd_at", **args)  # type: ignore[arg-type]
    standard = prepare_model(spec, digits, **args)  # type: ignore[arg-type]
    assert (first.source, again.source, standard.source) == ("trained", "cache", "trained")
    assert first.fingerprint == again.fingerprint != standard.fingerprint
    assert first.label == "smallcnn[pgd_at]" and standard.label == "smallcnn"


def _with_model_keys(keys: str) -> str:
    return TINY_SUITE.replace('name = "smallcnn"\n', f'name = "smallcnn"\n{keys}\n', 1)


def _with_adversarial(table: str) -> str:
    """The tiny suite with a `[models.adversarial]` table for its model (before the first attack)."""
    return TINY_SUITE.replace("\n[[attacks]]", f"\n[models.adversarial]\n{table}\n\n[[attacks]]", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_with_adversarial("consistency_weight = -1"), "models[0].adversarial.consistency_weight"),
        (_with_adversarial("trades_beta = -0.5"), "models[0].adversarial.trades_beta"),
        (_with_model_keys('defenses = ["standard", "madry"]'), "unknown defense 'madry'; valid defenses: consistency_at"),
        (_with_adversarial("eps = 1.5"), "models[0].adversarial.eps"),
        (_with_adversarial("eps = 0"), "models[0].adversarial.eps"),
        (_with_adversarial('inner = "cw"'), "models[0].adversarial.inner"),
        (_with_adversarial("lamda = 1"), "unknown key"),
    ],
)
def test_bad_defense_config_is_a_clear_suite_error(tmp_path: Path, text: str, message: str) -> None:
    path = write_suite(tmp_path, text)
    code, stdout, stderr = invoke("run", str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and message in stderr and str(path) in stderr, stderr
    assert "Traceback" not in stdout + stderr and not (tmp_path / "out").exists()


def test_torchscript_models_take_no_trained_defenses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="takes only defenses"):
        ModelSpec(name="ts", torchscript=tmp_path / "m.ts", defenses=["standard", "trades"])


# The masking guard --------------------------------------------------------------------------

def test_guard_findings_rule_by_rule() -> None:
    config = GuardConfig()
    assert masking_findings(GuardEvidence(eps=0.3), config) == []
    assert masking_findings(GuardEvidence(eps=0.3, fgsm_vs_pgd=(0.02, 0.05)), config)[0].startswith("FGSM beats PGD")
    assert masking_findings(GuardEvidence(eps=0.3, fgsm_vs_pgd=(0.05, 0.05)), config) == []
    only_square = GuardEvidence(eps=0.3, gradient_free_only=0.2, gradient_free_attacks=("square",))
    assert "square alone broke 20.0%" in masking_findings(only_square, config)[0]
    # one image in 200 that only Square found is noise, not masking
    assert masking_findings(GuardEvidence(eps=0.3, gradient_free_only=0.005, gradient_free_attacks=("square",)),
                            config) == []
    assert "leaves 30.0% accuracy" in masking_findings(GuardEvidence(eps=0.3, unbounded_acc=0.3), config)[0]
    assert masking_findings(GuardEvidence(eps=0.3, unbounded_acc=0.0), config) == []
    flagged = GuardEvidence(eps=0.3, reference_flags={"autoattack": ["aa:zero-grad"]})
    assert "autoattack: AutoAttack's check aa:zero-grad" in masking_findings(flagged, config)


def test_a_stronger_attack_finding_more_is_a_note_not_a_finding() -> None:
    worst = worst_case(np.array([True] * 4), [Outcome("fgsm", np.array([True, False, True, True])),
                                              Outcome("pgd", np.array([True, True, True, True])),
                                              Outcome("pgd-guard", np.array([True, True, False, True]))])
    # only the strongest single white-box attack is asked (fgsm, 75%), and the worst case is 50%
    assert convergence_notes(worst, {"fgsm", "pgd", "pgd-guard"}, tolerance=0.01) == [
        "fgsm not converged: the worst case is 25.0 points lower"]
    assert convergence_notes(worst, {"pgd"}, tolerance=0.01) == ["pgd not converged: the worst case is 50.0 points lower"]
    assert convergence_notes(worst, {"fgsm", "pgd"}, tolerance=0.3) == []


MASKED_MODULE = '''
import torch
from torch import nn

from robustinv import model_builder
from robustinv.models.zoo import smallcnn


class Quantized(nn.Module):
    """Rounds its input to quarter steps first: zero input gradient almost everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.net = smallcnn((1, 8, 8), 10)

    def forward(self, x):
        return self.net(torch.round(x * 4) / 4)


@model_builder
def build():
    return Quantized()
'''

GUARD_SUITE = """
name = "guard"
seed = 0

[dataset]
name = "digits"
n_eval = 120

[[models]]
name = "honest"
arch = "smallcnn"

[models.train]
epochs = 8
batch_size = 64
lr = 0.002

[[models]]
name = "masked"
arch = "maskednet:build"

[models.train]
epochs = 8
batch_size = 64
lr = 0.002

[[attacks]]
name = "fgsm"
eps = [0.1, 0.3]

[[attacks]]
name = "pgd"
eps = [0.1, 0.3]
steps = 20
step_size = 0.05

[[attacks]]
name = "square"
eps = [0.3]
queries = 300

[guard]
models = "all"
n = 60
"""


@pytest.mark.slow
def test_guard_flags_a_gradient_masked_model_and_not_an_honest_one(tmp_path: Path) -> None:
    (tmp_path / "maskednet.py").write_text(MASKED_MODULE)
    path = write_suite(tmp_path, GUARD_SUITE)
    result = run_suite(load_suite(path), base_dir=tmp_path)
    by = {(r.model, r.attack, r.eps): r for r in result.rows}
    honest_pgd, masked_pgd = by[("honest", "pgd", 0.3)], by[("masked", "pgd", 0.3)]
    assert honest_pgd.robust_acc < 0.1 and Flag.masking.value not in honest_pgd.flags
    assert not any(Flag.masking.value in r.flags for r in result.rows if r.model == "honest")
    assert masked_pgd.robust_acc > 0.5, "the masked model should look robust to white-box PGD"
    assert Flag.masking.value in masked_pgd.flags
    transfer = by[("masked", "pgd-transfer", 0.3)]
    assert transfer.config["surrogate"] == "honest" and transfer.robust_acc < masked_pgd.robust_acc - 0.1
    guard = by[("masked", "pgd-guard", 0.3)]
    assert guard.n == 60 and guard.config["steps"] == 80 and guard.config["restarts"] == 5
    worst = by[("masked", "worst_case", 0.3)]
    assert Flag.masking.value in worst.flags and worst.robust_acc < 0.1, "Square sees through the rounding"
    assert any("square" in finding and "alone broke" in finding for finding in worst.config["findings"])
    assert any("ε = 1 Linf PGD" in finding for finding in worst.config["findings"])
    assert Flag.aa_zero_grad.value in by[("masked", "square", 0.3)].flags
    policy = Policy(rules=[Rule(metric="robust_acc", attack="worst_case", model="masked", min=0.0)])
    (outcome,) = evaluate_gate(policy, result.rows, policy_name="p").outcomes
    assert not outcome.passed and "masking?" in outcome.reason, "even a bound of 0% fails on a masked model"
    honest_worst = by[("honest", "worst_case", 0.3)]
    assert not honest_worst.config["findings"] and honest_worst.n == 60, "over the inputs the guard saw too"
    assert all(math.isfinite(r.feature_consistency) for r in result.rows if r.attack != "worst_case")


CASCADE_ATTACKS = """
[[attacks]]
name = "cascade"
eps = [0.3]
"""


@pytest.mark.slow
def test_cascade_and_the_guard_still_flag_the_masked_model_and_fail_its_gate(tmp_path: Path) -> None:
    """The fast verdict (cascade instead of FGSM, PGD and Square) keeps the masked model's gate shut."""
    (tmp_path / "maskednet.py").write_text(MASKED_MODULE)
    suite = GUARD_SUITE[:GUARD_SUITE.index("[[attacks]]")] + CASCADE_ATTACKS + GUARD_SUITE[GUARD_SUITE.index("[guard]"):]
    result = run_suite(load_suite(write_suite(tmp_path, suite)), base_dir=tmp_path)
    by = {(r.model, r.attack, r.eps): r for r in result.rows}
    masked, honest = by[("masked", "worst_case", 0.3)], by[("honest", "worst_case", 0.3)]
    assert Flag.masking.value in masked.flags and masked.robust_acc < 0.1
    assert Flag.masking.value in by[("masked", "cascade", 0.3)].flags
    assert not any(r.flags for r in result.rows if r.model == "honest"), "an honest model comes out clean"
    assert honest.robust_acc < 0.1
    policy = Policy(rules=[Rule(metric="robust_acc", attack="worst_case", model="masked", min=0.0)])
    (outcome,) = evaluate_gate(policy, result.rows, policy_name="p").outcomes
    assert not outcome.passed and "masking?" in outcome.reason
