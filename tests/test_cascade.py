"""The `cascade` attack and the pass counters it is measured with (tiny models, CPU only)."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from robustinv.attacks import build_attack
from robustinv.attacks.cascade import Cascade, CascadeConfig
from robustinv.data import Dataset
from robustinv.judge.sanity import Flag, reference_flags
from robustinv.metrics import l2_norms, linf_norms
from robustinv.models.checked import CheckedModel, PassCount
from robustinv.suite import SuiteError, parse_suite

from test_sanity import BASE

N = 64


def cascade(**changes: Any) -> Cascade:
    attack = build_attack({"name": "cascade", "eps": [0.1], **changes})
    assert isinstance(attack, Cascade)
    return attack


def robust(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)


@pytest.fixture(scope="module")
def batch(digits: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return digits.x_test[:N], digits.y_test[:N]


@pytest.fixture(scope="module")
def checked(digits_model: nn.Module) -> CheckedModel:
    return CheckedModel(digits_model, "digits-cnn", 10)


# Pass counters ------------------------------------------------------------------------------


def tiny() -> CheckedModel:
    torch.manual_seed(0)
    return CheckedModel(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval(), "tiny", 3)


def test_forward_and_backward_images_are_counted() -> None:
    model = tiny()
    x = torch.rand(5, 1, 2, 2, requires_grad=True)
    assert model.passes() == PassCount()
    logits = model(x)
    assert model.passes() == PassCount(forward=5, backward=0)
    logits.sum().backward(retain_graph=True)
    assert model.passes() == PassCount(forward=5, backward=5)
    torch.autograd.grad(logits[:, 0].sum(), x)  # a second backward through the same output counts again
    assert model.passes() == PassCount(forward=5, backward=10)
    model(x[:2]).detach()  # a forward whose gradient never flows back costs no backward
    assert model.passes() == PassCount(forward=7, backward=10)


def test_no_backward_is_counted_without_gradients() -> None:
    model = tiny()
    with torch.no_grad():
        model(torch.rand(4, 1, 2, 2))
    model(torch.rand(3, 1, 2, 2))  # a graph (through the weights), but no backward through it
    assert model.passes() == PassCount(forward=7, backward=0)


def test_meters_nest_and_freeze_when_their_block_ends() -> None:
    model = tiny()
    x = torch.rand(4, 1, 2, 2, requires_grad=True)
    with model.counting() as outer:
        model(x).sum().backward()
        with model.counting() as inner:
            model(x[:1])
        model(x[:2])
    model(x)  # after both blocks: neither meter sees it
    assert inner.count == PassCount(forward=1, backward=0)
    assert outer.count == PassCount(forward=7, backward=4)
    assert outer.count - inner.count + inner.count == outer.count and outer.count.total == 11
    assert outer.count.per_input(4) == (1.75, 1.0)


def test_logits_stay_editable_and_gradients_unchanged() -> None:
    model = tiny()
    x = torch.rand(3, 1, 2, 2, requires_grad=True)
    (expected,) = torch.autograd.grad(model.model(x)[:, 1].sum(), x)
    logits = model(x)
    (grad,) = torch.autograd.grad(logits[:, 1].sum(), x)
    assert torch.equal(grad, expected)
    logits = model(x)
    logits[:, 0] = 0.0  # callers (AutoAttack's FAB) edit their logits in place
    logits.sum().backward()


@pytest.mark.parametrize(("spec", "forward", "backward"), [
    # ART: one probe image for the class count, then one gradient per input.
    ({"name": "fgsm"}, 1 + N, N),
    # ART's PGD: every step is a forward and a backward per input (plus the probe).
    ({"name": "pgd", "steps": 3, "step_size": 0.05}, None, 3 * N),
    # AutoAttack's reference code, and the zero-gradient check that robustinv adds: counted alike.
    ({"name": "apgd", "steps": 4}, None, None),
])
def test_library_calls_are_counted(
    spec: dict[str, Any], forward: int | None, backward: int | None, checked: CheckedModel,
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = batch
    with checked.counting() as meter:
        build_attack({**spec, "eps": [0.1]}).run(checked, x, y, 0.1, seed=0)
    count = meter.count
    assert count.forward == forward if forward is not None else count.forward > N
    assert count.backward == backward if backward is not None else count.backward > N


# The cascade --------------------------------------------------------------------------------


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1), ("l2", 1.0)])
def test_cascade_keeps_the_threat_model_and_is_deterministic(
    norm: str, eps: float, digits_model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = batch
    attack = cascade(norm=norm, eps=[eps], members={"fgsm": 1, "apgd": 8, "apgd-t": 8, "square": 50})
    out = attack.run(digits_model, x, y, eps, seed=3)
    assert float(out.x_adv.min()) >= 0.0 and float(out.x_adv.max()) <= 1.0
    norms = linf_norms(x, out.x_adv) if norm == "linf" else l2_norms(x, out.x_adv)
    assert float(norms.max()) <= eps + 1e-6
    assert torch.equal(out.x_adv, attack.run(digits_model, x, y, eps, seed=3).x_adv)
    assert not torch.equal(out.x_adv, attack.run(digits_model, x, y, eps, seed=4).x_adv)
    log = out.diagnostics["log"]
    assert list(log) == ["clean", "fgsm", "apgd", "apgd-t", "square"]
    assert log["square"] == pytest.approx(float(robust(digits_model, x, out.x_adv, y).double().mean()))
    assert all(earlier >= later for earlier, later in zip(log.values(), list(log.values())[1:]))


class Threshold(nn.Module):
    """Class 0 while the pixel sum exceeds 1, else class 1: the margin is sum(x) − 1.

    An Linf step of ε lowers the sum of the four pixels by at most 4ε, so an input whose margin is
    below 4ε falls to the first FGSM step, and every other input can never fall.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = self.scale * x.flatten(1).sum(1) - 1.0
        return torch.stack([margin, torch.zeros_like(margin)], 1)


def threshold_problem(margins: list[float]) -> tuple[CheckedModel, torch.Tensor, torch.Tensor]:
    """Inputs of four equal pixels, input i with clean margin margins[i] (pixels away from 0 and 1 by more than ε)."""
    pixels = (torch.tensor(margins) + 1.0) / 4
    assert bool((pixels > 0.1).all() and (pixels < 0.9).all())
    x = pixels.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return CheckedModel(Threshold(), "threshold", 2), x, torch.zeros(len(margins), dtype=torch.long)


def test_an_input_leaves_the_schedule_the_moment_it_is_broken() -> None:
    # 4ε = 0.4: the first three fall to FGSM, the last two can never fall.
    model, x, y = threshold_problem([0.1, 0.2, 0.3, 1.0, 2.0])
    steps, odi = 6, 2
    attack = cascade(members={"fgsm": 1, "apgd": steps, "apgd-t": steps}, odi_steps=odi, keep=1.0, narrow=1.0,
                     restarts=2, target_classes=1)
    with model.counting() as meter:
        out = attack.run(model, x, y, 0.1, seed=0)
    d = out.diagnostics
    assert d["broken"] == {"fgsm": 3, "apgd": 0, "apgd-t": 0}
    assert [r["attacked"] for r in d["rounds"]] == [5, 2, 2, 2]
    # The broken three: one clean forward and backward, one forward to check their FGSM point.
    # Each of the two left: the same, then per APGD round (odi + steps) gradients and a last check.
    per_round = PassCount(forward=odi + steps + 1, backward=odi + steps)
    expected = PassCount(forward=5 + 5, backward=5) + PassCount(2 * 3 * per_round.forward, 2 * 3 * per_round.backward)
    assert meter.count == expected
    assert attack.grad_evals() == 1 + 3 * (odi + steps)


def test_discarded_inputs_are_reported_and_count_as_robust() -> None:
    model, x, y = threshold_problem([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2])  # 4ε = 0.4: none can fall
    # The first round ranks all eight; the rounds after it attack the smallest-margin half (keep), and each
    # further round half of those (narrow).
    attack = cascade(members={"screen": 3, "apgd": 3, "apgd-t": 3}, odi_steps=0, keep=0.5, narrow=0.5, restarts=2,
                     target_classes=1)
    with model.counting() as meter:
        out = attack.run(model, x, y, 0.1, seed=0)
    d = out.diagnostics
    assert [r["attacked"] for r in d["rounds"]] == [8, 4, 2, 1]
    assert [(e["after"], e["round"], e["inputs"]) for e in d["discarded"]] == [
        ("screen", 1, 4), ("apgd", 1, 2), ("apgd", 2, 1)]
    assert d["discarded_total"] == 7 and d["discarded_standing"] == 7
    # The smallest margins are kept: after the first round the lowest margin is each input's own minus 4ε.
    assert d["discarded"][0]["margin_above"] == pytest.approx(0.9 - 0.4, abs=1e-5)
    assert d["log"] == {"clean": 1.0, "screen": 1.0, "apgd": 1.0, "apgd-t": 1.0}
    assert meter.count.backward == 8 + (8 + 4 + 2 + 1) * 3


class Quantized(nn.Module):
    """Rounds its input to quarter steps first: zero input gradient almost everywhere (as in tests/test_defenses.py)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 4) / 4)


def test_square_sees_through_zero_gradients_and_the_calibrated_checks_fire(
    digits: Dataset, digits_model: nn.Module
) -> None:
    masked = Quantized(digits_model).eval()
    x, y = digits.x_test[:150], digits.y_test[:150]
    # Short gradient members (they are blind here anyway); Square with its default budget and sample.
    out = cascade(eps=[0.3], members={"fgsm": 1, "screen": 5, "apgd": 10, "square": 1000}).run(masked, x, y, 0.3,
                                                                                               seed=0)
    d = out.diagnostics
    assert d["zero_gradient_share"] > 0.9
    assert d["log"]["fgsm"] == d["log"]["clean"], "a zero gradient moves nothing"
    assert d["broken"]["square"] >= 3 and d["square_sample"]["inputs"] >= 10
    row = replace(BASE, attack="cascade", eps=0.3, config={"name": "cascade", "diagnostics": d})
    assert {Flag.aa_zero_grad, Flag.aa_square} <= set(reference_flags(row))
    honest = cascade(eps=[0.1]).run(digits_model, x[:N], y[:N], 0.1, seed=0).diagnostics
    honest_row = replace(BASE, attack="cascade", config={"name": "cascade", "diagnostics": honest})
    assert reference_flags(honest_row) == [], "an honest model carries no masking flag"


@pytest.mark.parametrize(("members", "message"), [
    ({"fgsm": 1, "fab": 10}, "unknown member 'fab'; the members are fgsm, screen, apgd, apgd-t, square"),
    ({"fgsm": 1, "apgd": 0}, "apgd: a budget must be at least 1 (got 0); leave the member out instead"),
    ({"square": 100, "apgd": 10}, "square must come last"),
    ({}, "no members"),
    ({"apgd": True}, "apgd: a budget is a whole number of steps or queries, got True"),
])
def test_bad_members_are_refused_with_a_clear_message(members: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        CascadeConfig.model_validate({"name": "cascade", "eps": [0.3], "members": members})
    data = {"name": "s", "dataset": {"name": "digits"}, "models": [{"name": "smallcnn"}],
            "attacks": [{"name": "cascade", "eps": 0.3, "members": members}]}
    with pytest.raises(SuiteError, match=re.escape(f"attacks[0].members: {message}")):
        parse_suite(data)


@pytest.mark.parametrize(("key", "value"), [("restarts", 0), ("target_classes", 0), ("keep", 0.0), ("narrow", 1.5),
                                            ("square_share", 0.0), ("odi_steps", -1), ("loss", "dlr"),
                                            ("unknown", 1)])
def test_bad_budgets_are_refused(key: str, value: object) -> None:
    data = {"name": "s", "dataset": {"name": "digits"}, "models": [{"name": "smallcnn"}],
            "attacks": [{"name": "cascade", "eps": 0.3, key: value}]}
    with pytest.raises(SuiteError, match=re.escape(f"attacks[0].{key}: ")):
        parse_suite(data)


def test_the_row_config_records_members_and_budgets() -> None:
    config = cascade().config.row_config(0.3, 7)
    assert config["members"] == {"fgsm": 1, "screen": 20, "apgd": 100, "apgd-t": 100, "square": 1000}
    assert {"loss", "restarts", "target_classes", "odi_steps", "keep", "narrow", "square_share", "seed"} <= set(config)
    assert Cascade.capabilities() == ["step_size_free", "iterated"]


def test_cascade_is_at_least_as_strong_as_pgd_on_a_trained_model(
    digits_model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = batch
    pgd = build_attack({"name": "pgd", "eps": [0.1], "steps": 20, "step_size": 0.01}).run(digits_model, x, y, 0.1,
                                                                                          seed=0)
    with_cascade = cascade().run(CheckedModel(digits_model, "d", 10), x, y, 0.1, seed=0)
    pgd_acc = float(robust(digits_model, x, pgd.x_adv, y).double().mean())
    cascade_acc = float(robust(digits_model, x, with_cascade.x_adv, y).double().mean())
    assert cascade_acc <= pgd_acc and not math.isclose(pgd_acc, 0.0)
