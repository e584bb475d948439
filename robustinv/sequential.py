"""Anytime-valid tests of an accuracy against a bound: decide as soon as the evidence suffices, however often you look.

Each evaluated input is a Bernoulli observation (robust or not). To decide whether the true
accuracy p lies above a bound b, the test tracks the likelihood ratio of "p = p′" against
"p = b", mixed over p′ > b with a Beta prior centred on b (Robbins' method of mixtures; the
conjugate mixture of Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", 2021):

    M_n(b) = ∫_{p′ > b} (p′/b)^S ((1 − p′)/(1 − b))^(n − S) dπ(p′)

For every p ≤ b this is a nonnegative supermartingale with M_0 = 1, so by Ville's inequality
P(M_n(b) ≥ 1/α for some n) ≤ α: deciding "above b" when it first crosses 1/α is wrong with
probability at most α, at whichever looks and whenever one stops. "Below b" mirrors it. A
fixed-n interval (Wilson) looked at after every batch has no such guarantee.

M_n depends only on the count S of robust inputs and n, not on their order, so a decision can be
checked again from a result row (its accuracy and n) alone. The prior is a discrete grid over
(b, 1], itself a valid mixing distribution, so the guarantee does not rest on integration
accuracy. `PRIOR_STRENGTH` (the Beta's pseudo-count) was tuned here: the inputs needed to
separate accuracies 5 points apart near 85–90% at 95% are fewest around 30 (docs/gate.md, "Sequential gate").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PRIOR_STRENGTH = 30.0  # Beta(b·k, (1 − b)·k), truncated to one side of b
GRID = 4000  # points of the mixing distribution on each side of the bound
_BISECTIONS = 40


@dataclass(frozen=True)
class SequentialTest:
    """The anytime-valid test at `confidence` (each decision is wrong with probability at most 1 − confidence)."""

    confidence: float = 0.95

    @property
    def threshold(self) -> float:
        """log(1/α): the log-evidence at which a decision is made."""
        return math.log(1.0 / (1.0 - self.confidence))

    def evidence(self, successes: int, n: int, bound: float, *, above: bool) -> float:
        """log M_n(bound): the evidence that the accuracy lies above (or below) `bound` after S of n robust."""
        if not 0 <= successes <= n:
            raise ValueError(f"{successes} successes of {n} trials")
        if n == 0 or not 0.0 < bound < 1.0:
            return 0.0 if n == 0 else (-math.inf if (bound >= 1.0) == above else math.inf)
        side = np.linspace(bound, 1.0, GRID + 2)[1:-1] if above else np.linspace(0.0, bound, GRID + 2)[1:-1]
        a, b = bound * PRIOR_STRENGTH, (1.0 - bound) * PRIOR_STRENGTH
        log_prior = (a - 1) * np.log(side) + (b - 1) * np.log1p(-side)
        log_prior -= np.logaddexp.reduce(log_prior)
        log_ratio = successes * np.log(side / bound) + (n - successes) * np.log((1.0 - side) / (1.0 - bound))
        return float(np.logaddexp.reduce(log_prior + log_ratio))

    def above(self, successes: int, n: int, bound: float) -> bool:
        """Whether S of n establishes accuracy > `bound`."""
        return self.evidence(successes, n, bound, above=True) >= self.threshold

    def below(self, successes: int, n: int, bound: float) -> bool:
        """Whether S of n establishes accuracy < `bound`."""
        return self.evidence(successes, n, bound, above=False) >= self.threshold

    def bounds(self, successes: int, n: int) -> tuple[float, float]:
        """The anytime-valid lower and upper confidence bounds (each at `confidence`) after S of n robust.

        Lower: the largest b that "above b" is established for; upper: the smallest b for "below b".
        """
        if n == 0:
            return 0.0, 1.0
        rate = successes / n
        return (self._edge(successes, n, 0.0, rate, above=True), self._edge(successes, n, rate, 1.0, above=False))

    def _edge(self, successes: int, n: int, low: float, high: float, *, above: bool) -> float:
        """Where the established side ends: bisection on the bound (evidence is monotone in it)."""
        decided = self.above if above else self.below
        outer = low if above else high  # the end of the interval that is always rejected
        if not decided(successes, n, outer if 0.0 < outer < 1.0 else (1e-9 if above else 1 - 1e-9)):
            return outer
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            if decided(successes, n, middle) == above:
                low = middle
            else:
                high = middle
        return low if above else high

    def smallest_deciding(self, n: int, bound: float, *, above: bool) -> int | None:
        """The fewest robust inputs of n that establish "above" (or the most that establish "below"); None if none."""
        decided = self.above if above else self.below
        low, high = 0, n
        if not decided(n if above else 0, n, bound):
            return None
        while low < high:  # the evidence is monotone in S
            middle = (low + high) // 2
            if above:
                low, high = (low, middle) if decided(middle, n, bound) else (middle + 1, high)
            else:
                low, high = (middle + 1, high) if decided(middle + 1, n, bound) else (low, middle)
        return low
