"""How often `compare` and `alert` are right, over seeded simulations of production traffic.

Sessions are drawn from known distributions (success as a coin, durations
log-normal, tokens Poisson-like), so the truth of every trial is known.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from waza.compare.alert import Rule, evaluate
from waza.compare.comparison import compare
from waza.compare.outcomes import Outcome

AT = datetime(2026, 11, 20, tzinfo=UTC)


def draw(
    rng: np.random.Generator,
    n: int,
    *,
    success: float,
    skill: str = "azure-deploy",
    tail_stretch: float = 1.0,
) -> list[Outcome]:
    """``n`` sessions; ``tail_stretch`` lengthens the slowest 20% (median unchanged, p95 up by it)."""
    cut = 2000 * 1.5236  # the 80th percentile of exp(N(ln 2000, 0.5)): 2000 * e^(0.8416 * 0.5)
    durations = rng.lognormal(math.log(2000), 0.5, n)  # median 2,000 ms
    durations = np.where(durations > cut, durations * tail_stretch, durations).astype(int)
    tokens = rng.normal(6000, 800, n).astype(int)
    succeeded = rng.random(n) < success
    return [
        Outcome(f"s{index}", AT, skill, ok, duration, used, None)
        for index, (ok, duration, used) in enumerate(
            zip(succeeded.tolist(), durations.tolist(), tokens.tolist(), strict=True)
        )
    ]


def test_compare_finds_nothing_between_samples_of_one_distribution() -> None:
    """Two skills, four figures each and overall: 12 tests per comparison, and still at most 1 in
    100 comparisons calls anything significant (the default alpha); required: at least 95 in 100."""
    quiet = 0
    trials = 200
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        before = draw(rng, 300, success=0.9) + draw(rng, 200, success=0.8, skill="azure-cost")
        after = draw(rng, 300, success=0.9) + draw(rng, 200, success=0.8, skill="azure-cost")
        result = compare(before, after)
        quiet += not any(change.significant for change in result.changes)
    assert quiet >= 0.95 * trials, quiet


def test_compare_finds_a_planted_p95_increase() -> None:
    """The slowest 20% of sessions take 20% longer: p95 up 20%, median the same. The p95 of 2,000
    sessions varies by about 2.4%, so one trial's measured change is 0.2 give or take 0.04, and the
    mean of 40 give or take 0.007."""
    found = 0
    trials = 40
    changes = []
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        result = compare(draw(rng, 2000, success=0.9), draw(rng, 2000, success=0.9, tail_stretch=1.2))
        (p95,) = [c for c in result.changes if c.group == "(all)" and c.figure == "p95_duration_ms"]
        changes.append(p95.relative)
        found += p95.worse
        assert not any(c.worse for c in result.changes if c.figure == "success_rate")
    assert all(0.0 < change < 0.4 for change in changes), changes  # five deviations either side
    assert abs(sum(changes) / trials - 0.2) < 0.025, changes
    assert found >= 0.95 * trials, found


def test_alert_fires_on_a_three_point_drop_and_almost_never_without_one() -> None:
    """2,000 sessions per window, success 95% in the baseline: a drop to 92% fires in at least 95
    of 100 trials; with no change at most 1 in 100 fires (either check)."""
    rule = Rule(window=timedelta(hours=1), baseline=timedelta(days=7))
    fired = 0
    trials = 200
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        findings = evaluate(draw(rng, 20_000, success=0.95), draw(rng, 2000, success=0.92), rule)
        fired += any(f.firing and f.check == "success_rate" for f in findings)
    assert fired >= 0.95 * trials, fired
    false_alarms = 0
    trials = 1000
    for seed in range(trials):
        rng = np.random.default_rng(10_000 + seed)
        findings = evaluate(draw(rng, 4000, success=0.95), draw(rng, 2000, success=0.95), rule)
        false_alarms += any(f.firing for f in findings)
    assert false_alarms <= 0.01 * trials, false_alarms


def test_small_samples_never_fire() -> None:
    rule = Rule(window=timedelta(hours=1), baseline=timedelta(days=7), min_sessions=100)
    rng = np.random.default_rng(5)
    (finding,) = evaluate(draw(rng, 5000, success=0.99), draw(rng, 60, success=0.2), rule)
    assert (
        not finding.firing
        and finding.check == "sessions"
        and "fewer than --min-sessions 100" in finding.message
    )
