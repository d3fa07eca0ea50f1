"""The statistics against values worked out another way: published figures and brute force."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from waza.compare import stats


def test_wilson_interval_matches_newcombes_worked_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 gives 0.2553 to 0.3662.
    low, high = stats.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert stats.wilson(0, 0) is None
    low, high = stats.wilson(0, 20)
    assert low == pytest.approx(0, abs=1e-12) and round(high, 4) == 0.1611  # the same table


def test_two_proportions_z_by_hand() -> None:
    # 45/100 against 60/100: pooled 0.525, spread sqrt(0.525 * 0.475 * 0.02) = 0.070622
    assert stats.two_proportions(45, 100, 60, 100) == pytest.approx(0.15 / 0.0706222, rel=1e-5)
    assert stats.two_proportions(0, 10, 0, 10) == 0.0


def _u_by_pairs(first: list[float], second: list[float]) -> float:
    """U counted pair by pair: second larger counts 1, a tie 1/2."""
    return sum(1.0 if b > a else 0.5 if b == a else 0.0 for a, b in itertools.product(first, second))


@pytest.mark.parametrize("seed", range(5))
def test_mann_whitney_agrees_with_pair_counting(seed: int) -> None:
    rng = random.Random(seed)
    first = [float(rng.randint(0, 30)) for _ in range(rng.randint(5, 60))]  # many ties
    second = [float(rng.randint(3, 33)) for _ in range(rng.randint(5, 60))]
    n1, n2, n = len(first), len(second), len(first) + len(second)
    counts = {value: (first + second).count(value) for value in set(first + second)}
    ties = sum(t**3 - t for t in counts.values())
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    shift = _u_by_pairs(first, second) - n1 * n2 / 2
    expected = (shift - math.copysign(min(0.5, abs(shift)), shift)) / sd
    assert stats.mann_whitney(first, second) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_quantile_matches_linear_interpolation() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.quantile(values, 0.95) == pytest.approx(95.05)
    assert stats.quantile([], 0.5) is None
    low, high = stats.quantile_interval(values, 0.95)
    assert low < 95.05 < high and high <= 100


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06 (monotone), 0.04 -> max so far 0.06
    assert stats.holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_p_values() -> None:
    assert stats.p_value(1.959964) == pytest.approx(0.05, abs=1e-6)
    assert stats.p_value(-2.326348, sided="less") == pytest.approx(0.01, abs=1e-6)
    assert stats.p_value(2.326348, sided="greater") == pytest.approx(0.01, abs=1e-6)
