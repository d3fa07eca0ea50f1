"""The statistics behind `waza compare` and `waza alert`, in plain Python.

Every test here is distribution-free or exact enough at the sample sizes
telemetry gives (large-sample normal approximations with tie and continuity
corrections), so no figure depends on durations being normally distributed:

- a success rate's interval is Wilson's score interval;
- two success rates are compared by the pooled two-proportion z-test;
- two samples of durations (or tokens, or costs) by the Mann-Whitney U test;
- two p95s by the quantile test (Mood's median test at the 95th percentile:
  how often each sample lies above the pooled p95), and each p95 has the
  distribution-free interval of order statistics;
- several tests at once are held to one error rate by Holm's step-down method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

STANDARD = NormalDist()


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return STANDARD.cdf(-z)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson's score interval for a proportion; None without trials."""
    if n == 0:
        return None
    z = STANDARD.inv_cdf(0.5 + confidence / 2)
    rate = successes / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportions(s1: int, n1: int, s2: int, n2: int) -> float:
    """z of the second rate against the first (pooled variance); 0 when either has no trials or
    the pooled rate is 0 or 1 (then the rates are equal)."""
    if not n1 or not n2:
        return 0.0
    pooled = (s1 + s2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return (s2 / n2 - s1 / n1) / spread if spread else 0.0


def mann_whitney(first: Sequence[float], second: Sequence[float]) -> float:
    """z of the second sample against the first by the Mann-Whitney U test (positive: the second
    tends to be larger), with the tie correction and a continuity correction."""
    n1, n2 = len(first), len(second)
    if not n1 or not n2:
        return 0.0
    pooled = sorted([(value, 1) for value in second] + [(value, 0) for value in first])
    rank_sum, ties, index = 0.0, 0.0, 0
    while index < len(pooled):
        end = index
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[index][0]:
            end += 1
        run = end - index + 1
        mid_rank = (index + end) / 2 + 1
        rank_sum += mid_rank * sum(label for _, label in pooled[index : end + 1])
        ties += run**3 - run
        index = end + 1
    n = n1 + n2
    u = rank_sum - n2 * (n2 + 1) / 2  # pairs in which the second sample is larger
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 0.0
    shift = u - mean
    shift -= math.copysign(min(0.5, abs(shift)), shift)
    return shift / math.sqrt(variance)


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile, interpolating linearly between the closest ranks (DuckDB's quantile_cont)."""
    if not sorted_values:
        return None
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def quantile_interval(
    sorted_values: Sequence[float], q: float, confidence: float = 0.95
) -> tuple[float, float] | None:
    """A distribution-free interval for the q-quantile: the order statistics whose ranks bound
    the binomial count of values below it (normal approximation); None when too few values."""
    n = len(sorted_values)
    z = STANDARD.inv_cdf(0.5 + confidence / 2)
    spread = z * math.sqrt(n * q * (1 - q))
    low, high = math.floor(n * q - spread), math.ceil(n * q + spread)
    if n == 0 or low < 1 or high > n:
        return None
    return sorted_values[low - 1], sorted_values[high - 1]


def quantile_test(first: Sequence[float], second: Sequence[float], q: float) -> float:
    """z of the second sample against the first at the q-quantile: how much more often the second
    lies above the pooled q-quantile (positive: the second's quantile is higher)."""
    pooled = sorted([*first, *second])
    cut = quantile(pooled, q)
    if cut is None:
        return 0.0
    above1 = sum(1 for value in first if value > cut)
    above2 = sum(1 for value in second if value > cut)
    return two_proportions(above1, len(first), above2, len(second))


def p_value(z: float, *, sided: str = "two") -> float:
    """The p-value of a z: two-sided, or one-sided for an increase ("greater") or decrease ("less")."""
    if sided == "greater":
        return normal_sf(z)
    if sided == "less":
        return normal_sf(-z)
    return min(1.0, 2 * normal_sf(abs(z)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values: rejecting those below alpha keeps the chance of any false
    rejection among them at most alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
