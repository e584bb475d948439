"""Metric functions on hand-computed tensors."""

from __future__ import annotations

import math

import torch

from robustinv import metrics

Y = torch.tensor([0, 1, 2, 3])
CLEAN = torch.tensor([0, 1, 2, 0])  # 3 of 4 correct
ADV = torch.tensor([0, 2, 2, 3])  # input 3 is "fixed" by the attack, input 1 is fooled


def test_accuracy() -> None:
    assert metrics.accuracy(CLEAN, Y) == 0.75
    assert metrics.accuracy(ADV, Y) == 0.75


def test_robust_accuracy_is_unconditional() -> None:
    # correct both clean and adversarial: inputs 0 and 2; input 3 is wrong when clean, so it never counts
    assert metrics.robust_accuracy(CLEAN, ADV, Y) == 0.5


def test_success_rate_is_over_clean_correct_inputs() -> None:
    # clean-correct: inputs 0, 1, 2; fooled among them: input 1
    assert math.isclose(metrics.success_rate(CLEAN, ADV, Y), 1 / 3)


def test_success_rate_without_correct_inputs_is_nan() -> None:
    assert math.isnan(metrics.success_rate(torch.tensor([1, 0]), torch.tensor([1, 0]), torch.tensor([0, 1])))


def test_candidate_success_counts_every_draw() -> None:
    draws = torch.stack([ADV, CLEAN])  # draw 1 fools input 1; draw 2 fools nothing among inputs 0-2
    assert math.isclose(metrics.candidate_success(CLEAN, draws, Y), 1 / 6)


def test_norms() -> None:
    x = torch.zeros(2, 1, 2, 2)
    x_adv = x.clone()
    x_adv[0, 0, 0, 0] = 0.3
    x_adv[0, 0, 1, 1] = -0.4
    x_adv[1] = 0.1
    assert torch.allclose(metrics.linf_norms(x, x_adv), torch.tensor([0.4, 0.1]))
    assert torch.allclose(metrics.l2_norms(x, x_adv), torch.tensor([0.5, 0.2]))


def test_wilson_interval_matches_hand_computed_values() -> None:
    low, high = metrics.wilson_interval(0.5, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = metrics.wilson_interval(0.0, 10)  # not degenerate at 0%, unlike the normal approximation
    assert low == 0.0 and round(high, 4) == 0.2775
    low, high = metrics.wilson_interval(1.0, 200)
    assert round(low, 4) == 0.9812 and high == 1.0
    assert all(math.isnan(v) for v in metrics.wilson_interval(0.5, 0))
