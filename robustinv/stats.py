"""Interval estimates of measured proportions: plain floats, no tensors, so records and reports stay light."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(fraction: float, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (95% by default) of a proportion measured as `fraction` of `n` trials.

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0% or 100%,
    where robust accuracies of standard and defended models often lie. NaN bounds when n is 0 or
    the fraction is NaN.
    """
    if n <= 0 or math.isnan(fraction):
        return math.nan, math.nan
    p = round(fraction * n) / n  # the fraction is a count over n; undo float noise
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
