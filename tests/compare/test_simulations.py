"""How often `compare` and `alert` are right, over seeded simulations of production traffic.

Sessions are drawn from known distributions (success as a coin, durations
log-normal, tokens Poisson-like), so the truth of every trial is known.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from waza.compare.alert import Rule, evaluate
from waza.compare.comparison import compare
from waza.compare.outcomes import Outcome

AT = datetime(2026, 11, 20, tzinfo=UTC)


def draw(
    rng: random.Random,
    n: int,
    *,
    success: float,
    skill: str = "azure-deploy",
    tail_stretch: float = 1.0,
) -> list[Outcome]:
    """``n`` sessions; ``tail_stretch`` lengthens the slowest 20% (median unchanged, p95 up by it)."""
    cut = 2000 * 1.5236  # the 80th percentile of exp(N(ln 2000, 0.5)): 2000 * e^(0.8416 * 0.5)
    out = []
    for index in range(n):
        duration = rng.lognormvariate(7.6009, 0.5)  # median 2,000 ms
        if duration > cut:
            duration *= tail_stretch
        tokens = int(rng.gauss(6000, 800))
        out.append(Outcome(f"s{index}", AT, skill, rng.random() < success, int(duration), tokens, None))
    return out


def test_compare_finds_nothing_between_samples_of_one_distribution() -> None:
    """Two skills, four figures each and overall: 12 tests per comparison, and still at most 1 in
    100 comparisons calls anything significant (the default alpha); required: at least 95 in 100."""
    quiet = 0
    trials = 200
    for seed in range(trials):
        rng = random.Random(seed)
        before = draw(rng, 300, success=0.9) + draw(rng, 200, success=0.8, skill="azure-cost")
        after = draw(rng, 300, success=0.9) + draw(rng, 200, success=0.8, skill="azure-cost")
        result = compare(before, after)
        quiet += not any(change.significant for change in result.changes)
    assert quiet >= 0.95 * trials, quiet


def test_compare_finds_a_planted_p95_increase() -> None:
    """The slowest 20% of sessions take 20% longer: p95 up 20%, median the same."""
    found = 0
    trials = 40
    for seed in range(trials):
        rng = random.Random(1000 + seed)
        result = compare(draw(rng, 2000, success=0.9), draw(rng, 2000, success=0.9, tail_stretch=1.2))
        (p95,) = [c for c in result.changes if c.group == "(all)" and c.figure == "p95_duration_ms"]
        assert 0.1 < p95.relative < 0.3
        found += p95.worse
        assert not any(c.worse for c in result.changes if c.figure == "success_rate")
    assert found >= 0.95 * trials, found


def test_alert_fires_on_a_three_point_drop_and_almost_never_without_one() -> None:
    """2,000 sessions per window, success 95% in the baseline: a drop to 92% fires in at least 95
    of 100 trials; with no change at most 1 in 100 fires (either check)."""
    rule = Rule(window=timedelta(hours=1), baseline=timedelta(days=7))
    fired = 0
    trials = 200
    for seed in range(trials):
        rng = random.Random(seed)
        findings = evaluate(draw(rng, 20_000, success=0.95), draw(rng, 2000, success=0.92), rule)
        fired += any(f.firing and f.check == "success_rate" for f in findings)
    assert fired >= 0.95 * trials, fired
    false_alarms = 0
    trials = 1000
    for seed in range(trials):
        rng = random.Random(10_000 + seed)
        findings = evaluate(draw(rng, 4000, success=0.95), draw(rng, 2000, success=0.95), rule)
        false_alarms += any(f.firing for f in findings)
    assert false_alarms <= 0.01 * trials, false_alarms


def test_small_samples_never_fire() -> None:
    rule = Rule(window=timedelta(hours=1), baseline=timedelta(days=7), min_sessions=100)
    rng = random.Random(5)
    (finding,) = evaluate(draw(rng, 5000, success=0.99), draw(rng, 60, success=0.2), rule)
    assert (
        not finding.firing
        and finding.check == "sessions"
        and "fewer than --min-sessions 100" in finding.message
    )
