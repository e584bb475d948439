"""Property tests: the metric functions and the suite schema hold their contracts on any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustinv import metrics
from robustinv.suite import SuiteError, parse_suite
from robustinv.judge.worst_case import Outcome, worst_case

CLASSES = 5

labels = st.lists(st.integers(0, CLASSES - 1), min_size=1, max_size=40)


@st.composite
def predictions(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels with clean and adversarial predictions of the same length."""
    y = draw(labels)
    n = len(y)
    clean = draw(st.lists(st.integers(0, CLASSES - 1), min_size=n, max_size=n))
    adv = draw(st.lists(st.integers(0, CLASSES - 1), min_size=n, max_size=n))
    return torch.tensor(y), torch.tensor(clean), torch.tensor(adv)


@given(predictions())
def test_robust_accuracy_never_exceeds_clean_accuracy(data: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    y, clean, adv = data
    robust = metrics.robust_accuracy(clean, adv, y)
    assert 0.0 <= robust <= metrics.accuracy(clean, y) <= 1.0
    assert robust <= metrics.accuracy(adv, y)


@given(predictions())
def test_success_rate_and_robust_accuracy_add_up_over_clean_correct_inputs(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    y, clean, adv = data
    clean_acc, success = metrics.accuracy(clean, y), metrics.success_rate(clean, adv, y)
    if clean_acc == 0:
        assert math.isnan(success)
    else:
        # every clean-correct input is either fooled or robust
        assert metrics.robust_accuracy(clean, adv, y) == pytest.approx(clean_acc * (1 - success))


@given(st.integers(1, 6), st.integers(1, 8), st.integers(1, 6), st.floats(0.0, 1.0))
def test_perturbation_norms_are_bounded_and_ordered(k: int, n: int, d: int, eps: float) -> None:
    torch.manual_seed(k * 100 + n * 10 + d)
    x = torch.rand(n, d)
    x_adv = (x + (torch.rand(n, d) * 2 - 1) * eps).clamp(0, 1)
    linf, l2 = metrics.linf_norms(x, x_adv), metrics.l2_norms(x, x_adv)
    assert bool((linf <= eps + 1e-6).all())
    assert bool((linf <= l2 + 1e-6).all()) and bool((l2 <= linf * math.sqrt(d) + 1e-6).all())


@given(st.integers(2, 5), st.integers(1, 6), st.integers(2, 8))
def test_pairwise_cosine_is_a_mean_cosine_and_one_for_identical_candidates(k: int, n: int, d: int) -> None:
    torch.manual_seed(k + 10 * n + 100 * d)
    features = torch.randn(k, n, d)
    assert -1.0 - 1e-9 <= metrics.pairwise_cosine(features) <= 1.0 + 1e-9
    same = features[:1].expand(k, n, d)
    assert metrics.pairwise_cosine(same) == pytest.approx(1.0)
    assert metrics.pairwise_l2(same) == pytest.approx(0.0, abs=1e-9)


@given(st.integers(1, 6), st.integers(2, 8))
def test_feature_consistency_is_one_for_matching_features_and_symmetric(n: int, d: int) -> None:
    torch.manual_seed(n * 10 + d)
    a, b = torch.randn(n, d), torch.randn(n, d)
    assert metrics.feature_consistency(a, a) == pytest.approx(1.0)
    assert metrics.feature_consistency(a, b) == pytest.approx(metrics.feature_consistency(b, a))


VALID = {
    "name": "p",
    "dataset": {"name": "digits"},
    "models": [{"name": "smallcnn"}],
    "attacks": [{"name": "fgsm", "eps": [0.1]}],
}

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["name", "seed", "device", "dataset", "models", "attacks", "guard", "eval_batch_size"]),
       json_value)
def test_any_value_for_a_suite_key_validates_or_raises_a_suite_error(key: str, value: object) -> None:
    """Whatever a file holds, the schema answers with a Suite or one SuiteError line, never another exception."""
    try:
        parse_suite({**VALID, key: value})
    except SuiteError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("<suite>: ")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=5))
def test_eps_grids_are_accepted_only_inside_the_input_range(eps: list[float]) -> None:
    try:
        suite = parse_suite({**VALID, "attacks": [{"name": "pgd", "eps": eps, "steps": 2}]})
    except SuiteError:
        assert any(not math.isfinite(e) or e <= 0 or e > 1 for e in eps) or len(set(eps)) < len(eps)
    else:
        accepted = suite.attacks[0].eps
        assert accepted == sorted(eps) and all(0 < e <= 1 for e in accepted)


@st.composite
def outcomes(draw: st.DrawFn) -> tuple[np.ndarray, list[Outcome]]:
    """Clean correctness over n inputs and 1–5 attacks, each covering a prefix of them."""
    n = draw(st.integers(1, 30))
    clean = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
    attacks = []
    for i in range(draw(st.integers(1, 5))):
        m = draw(st.integers(1, n))
        robust = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=np.bool_) & clean[:m]
        attacks.append(Outcome(f"a{i}", robust, gradient_free=draw(st.booleans())))
    return clean, attacks


@given(outcomes())
@settings(max_examples=200, deadline=None)
def test_the_worst_case_is_below_every_attack_on_the_inputs_they_all_saw(
    data: tuple[np.ndarray, list[Outcome]],
) -> None:
    clean, attacks = data
    worst = worst_case(clean, attacks)
    m = min(len(o.robust) for o in attacks)
    assert len(worst.robust) == m and np.array_equal(worst.clean_correct, clean[:m])
    assert not bool((worst.robust & ~clean[:m]).any())
    for outcome, entry in zip(attacks, worst.log):
        assert not bool((worst.robust & ~outcome.robust[:m]).any())
        assert worst.robust_acc <= entry.attack_acc == float(outcome.robust[:m].mean())
    if all(len(o.robust) == len(clean) for o in attacks):  # the same inputs: below every attack's own accuracy
        assert all(worst.robust_acc <= float(o.robust.mean()) for o in attacks)
    # the log accounts for every input broken, once, and ends at the worst case
    assert sum(e.newly_broken for e in worst.log) == int(clean[:m].sum()) - int(worst.robust.sum())
    assert worst.log[-1].robust_acc == worst.robust_acc
    assert 0 <= worst.gradient_free_only <= int(clean[:m].sum()) - int(worst.robust.sum())
