"""Properties every registered attack must have, on a small digits model (CPU, no downloads)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from robustinv import ATTACKS
from robustinv.attacks import Attack, AttackContext
from robustinv.data import Dataset
from robustinv.metrics import accuracy, l2_norms, linf_norms, robust_accuracy

# Per-attack keys that keep the test fast; everything else stays at the attack's defaults.
FAST: dict[str, dict[str, Any]] = {
    "pgd": {"steps": 8, "step_size": 0.05},
    "apgd": {"steps": 10},
    "square": {"queries": 300},
    "fab": {"steps": 10, "restarts": 2},
    "inversion": {"samples_per_input": 4, "train": {"steps": 150, "batch_size": 32, "eval_every": 150}},
    "cascade": {"members": {"fgsm": 1, "apgd": 5, "apgd-t": 5, "square": 100}},
}
N = 64
# FAB's first restart starts at the input itself; its random restarts run only on the inputs that
# one left unbroken, so another seed may change nothing at all.
FIRST_RUN_DETERMINISTIC = {"fab"}
# The standard AutoAttack has no speed knobs by design (its members' budgets are fixed); its
# members run above with small budgets, and tests/test_autoattack.py checks the ensemble itself.
PROPERTY_ATTACKS = [name for name in ATTACKS.names() if name != "autoattack"]


def make_attack(name: str, **changes: Any) -> Attack:
    attack_cls = ATTACKS.get(name)
    config = {"name": name, "eps": [0.1], **FAST.get(name, {}), **changes}
    return attack_cls(attack_cls.config_type.model_validate(config))


def supports(name: str, key: str) -> bool:
    return key in ATTACKS.get(name).config_type.model_fields


@pytest.fixture(scope="module")
def context(digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> AttackContext:
    return AttackContext(
        x_train=digits.x_train, y_train=digits.y_train, num_classes=digits.num_classes, model_name="digits-cnn",
        model_fingerprint="digits-cnn-test", dataset_fingerprint=digits.fingerprint,
        cache_dir=tmp_path_factory.mktemp("attack-cache"),
    )


def predictions(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


@pytest.fixture(scope="module")
def batch(digits: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return digits.x_test[:N], digits.y_test[:N]


@pytest.mark.parametrize("name", PROPERTY_ATTACKS)
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_linf_bound_range_and_robust_below_clean(
    name: str, eps: float, digits_model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
    context: AttackContext,
) -> None:
    x, y = batch
    x_before = x.clone()
    out = make_attack(name).run(digits_model, x, y, eps, seed=0, context=context)
    assert torch.equal(x, x_before), "the attack changed its input in place"
    assert out.x_adv.shape == x.shape and out.samples.shape[1:] == x.shape
    assert float(out.samples.min()) >= 0.0 and float(out.samples.max()) <= 1.0
    assert float(linf_norms(x, out.x_adv).max()) <= eps + 1e-6
    clean = predictions(digits_model, x)
    robust = robust_accuracy(clean, predictions(digits_model, out.x_adv), y)
    assert robust <= accuracy(clean, y)
    if eps == 0.3:  # a no-op attack would pass every bound above; this one it cannot
        assert robust < accuracy(clean, y) - 0.3


@pytest.mark.parametrize("name", [n for n in PROPERTY_ATTACKS if n != "inversion"])  # inversion is Linf by construction
def test_l2_bound(name: str, digits_model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    out = make_attack(name, norm="l2", eps=[1.0]).run(digits_model, x, y, 1.0, seed=0)
    assert float(l2_norms(x, out.x_adv).max()) <= 1.0 + 1e-5
    assert float(l2_norms(x, out.x_adv).max()) > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", PROPERTY_ATTACKS)
def test_same_seed_same_result(
    name: str, digits_model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], context: AttackContext
) -> None:
    x, y = batch
    attack = make_attack(name, **({"random_start": True} if supports(name, "random_start") else {}))
    first = attack.run(digits_model, x, y, 0.1, seed=7, context=context).x_adv
    assert torch.equal(first, attack.run(digits_model, x, y, 0.1, seed=7, context=context).x_adv)
    if name not in FIRST_RUN_DETERMINISTIC:
        assert not torch.equal(first, attack.run(digits_model, x, y, 0.1, seed=8, context=context).x_adv)


def test_restarts_keep_the_worst_case(digits_model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    out = make_attack("pgd", restarts=3, steps=3, step_size=0.02).run(digits_model, x, y, 0.1, seed=0)
    assert out.samples.shape[0] == 3
    assert len({s.sum().item() for s in out.samples}) == 3, "restarts should start from different points"
    clean = predictions(digits_model, x)
    per_restart = [robust_accuracy(clean, predictions(digits_model, s), y) for s in out.samples]
    assert robust_accuracy(clean, predictions(digits_model, out.x_adv), y) <= min(per_restart)
