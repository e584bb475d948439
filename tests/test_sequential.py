"""The anytime-valid test behind the sequential gate: its decisions, its bounds, and its error rate under optional stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustinv.sequential import SequentialTest
from robustinv.stats import wilson_interval

TEST = SequentialTest(0.95)


def test_clear_evidence_decides_and_weak_evidence_does_not() -> None:
    assert TEST.above(190, 200, 0.8) and not TEST.below(190, 200, 0.8)
    assert TEST.below(120, 200, 0.8) and not TEST.above(120, 200, 0.8)
    assert not TEST.above(165, 200, 0.8) and not TEST.below(165, 200, 0.8)  # 82.5%: too close to tell


def test_the_bounds_hold_the_rate_and_are_wider_than_a_fixed_n_interval() -> None:
    low, high = TEST.bounds(870, 1000)
    wilson_low, wilson_high = wilson_interval(0.87, 1000)
    assert low < wilson_low < 0.87 < wilson_high < high
    assert TEST.above(870, 1000, low - 1e-6) and not TEST.above(870, 1000, low + 1e-3)
    assert TEST.below(870, 1000, high + 1e-6) and not TEST.below(870, 1000, high - 1e-3)


def test_evidence_depends_on_the_count_and_grows_with_it() -> None:
    values = [TEST.evidence(s, 400, 0.82, above=True) for s in (328, 340, 350, 360)]
    assert values == sorted(values) and values[0] < TEST.threshold < values[-1]


@pytest.mark.parametrize("bound", [0.5, 0.85, 0.95])
def test_looking_after_every_batch_at_the_bound_decides_wrongly_at_most_alpha(bound: float) -> None:
    """10,000 Bernoulli streams whose accuracy is exactly the bound, looked at every 50 inputs up to 1,000.

    Any decision there is unsupported by the truth, in either direction; each must happen at most
    α = 5% of the time (Monte-Carlo slack: 3 standard errors of 10,000 draws).
    """
    streams, batch, looks = 10_000, 50, 20
    rng = np.random.default_rng(0)
    counts = rng.binomial(batch, bound, size=(streams, looks)).cumsum(1)
    sizes = batch * np.arange(1, looks + 1)
    above = np.array([TEST.smallest_deciding(int(n), bound, above=True) or n + 1 for n in sizes])
    below = np.array([_or_minus_one(TEST.smallest_deciding(int(n), bound, above=False)) for n in sizes])
    wrongly_above = (counts >= above).any(1).mean()
    wrongly_below = (counts <= below).any(1).mean()
    slack = 3 * math.sqrt(0.05 * 0.95 / streams)
    assert wrongly_above <= 0.05 + slack and wrongly_below <= 0.05 + slack
    # a fixed-n Wilson interval peeked at after every batch has no such guarantee
    wilson = np.array([wilson_interval(c / n, int(n)) for c, n in zip(counts[:2000].ravel(), np.tile(sizes, 2000))])
    peeked = (wilson[:, 0].reshape(2000, looks) > bound).any(1).mean()
    assert peeked > wrongly_above


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value
