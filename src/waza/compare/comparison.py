"""Two sets of sessions side by side: every headline figure, overall and per skill, with its change
and whether the change is significant.

The tests (see ``stats.py``) are two-sided; all the tests of one comparison
are held together to ``alpha`` by Holm's method, so comparing two samples of
one distribution flags nothing in at least 1 - alpha of cases, however many
skills and figures there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from waza.analysis.analyzer import PathLike
from waza.analysis.details import Prices
from waza.compare import stats
from waza.compare.outcomes import Outcome, load_outcomes
from waza.engine.slicing import Slice
from waza.errors import UsageError
from waza.store.sources import Problem

ALL = "(all)"
FIGURES = ("success_rate", "avg_duration_ms", "p95_duration_ms", "tokens_per_session", "cost_per_session")
# A figure got worse when it moved this way.
WORSE_WHEN = {
    "success_rate": -1,
    "avg_duration_ms": 1,
    "p95_duration_ms": 1,
    "tokens_per_session": 1,
    "cost_per_session": 1,
}
# Fewer completed sessions than this on either side are shown, never tested.
MIN_SESSIONS = 10
P95 = 0.95


@dataclass
class Change:
    """One figure of one group (a skill, or all sessions) in both sets."""

    group: str
    figure: str
    baseline: float | None
    current: float | None
    baseline_sessions: int
    current_sessions: int
    baseline_interval: tuple[float, float] | None = None  # 95% interval, where one is defined
    current_interval: tuple[float, float] | None = None
    z: float | None = None  # None: not tested (too few sessions)
    p_value: float | None = None  # two-sided, before adjustment
    adjusted_p: float | None = None  # Holm-adjusted over the whole comparison
    significant: bool = False

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def relative(self) -> float | None:
        if self.change is None or not self.baseline:
            return None
        return self.change / self.baseline

    @property
    def worse(self) -> bool:
        return self.significant and (self.z or 0) * WORSE_WHEN[self.figure] > 0

    @property
    def better(self) -> bool:
        return self.significant and (self.z or 0) * WORSE_WHEN[self.figure] < 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "change": self.change,
            "relative_change": self.relative,
            "worse": self.worse,
            "better": self.better,
        }


@dataclass
class Comparison:
    alpha: float
    changes: list[Change] = field(default_factory=list)

    def worse(self, figures: Sequence[str] = FIGURES) -> list[Change]:
        return [change for change in self.changes if change.worse and change.figure in figures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "method": "two-sided tests, Holm-adjusted over the whole comparison",
            "changes": [change.to_dict() for change in self.changes],
        }


def compare(baseline: list[Outcome], current: list[Outcome], *, alpha: float = 0.01) -> Comparison:
    """Every figure of ``current`` against ``baseline``, overall and per skill."""
    skills = sorted({o.skill for o in baseline + current if o.skill is not None})
    groups = [(ALL, baseline, current)] + [
        (skill, [o for o in baseline if o.skill == skill], [o for o in current if o.skill == skill])
        for skill in skills
    ]
    comparison = Comparison(alpha)
    costed = all(o.cost is not None for o in baseline + current) and bool(baseline + current)
    tokened = any(o.tokens for o in baseline + current)
    for name, before, after in groups:
        comparison.changes += _group(name, before, after, tokens=tokened, cost=costed)
    tested = [(change, change.p_value) for change in comparison.changes if change.p_value is not None]
    for (change, _), adjusted in zip(tested, stats.holm([p for _, p in tested]), strict=True):
        change.adjusted_p = adjusted
        change.significant = adjusted < alpha
    return comparison


def _group(
    name: str, before: list[Outcome], after: list[Outcome], *, tokens: bool, cost: bool
) -> list[Change]:
    testable = len(before) >= MIN_SESSIONS and len(after) >= MIN_SESSIONS

    def change(
        figure: str, first: float | None, second: float | None, z: Callable[[], float], **intervals: Any
    ) -> Change:
        made = Change(name, figure, first, second, len(before), len(after), **intervals)
        if testable:
            made.z = z()
            made.p_value = stats.p_value(made.z)
        return made

    wins = [sum(o.success for o in before), sum(o.success for o in after)]
    durations = [sorted(o.duration_ms for o in side if o.duration_ms is not None) for side in (before, after)]
    changes = [
        change(
            "success_rate",
            _ratio(wins[0], len(before)),
            _ratio(wins[1], len(after)),
            lambda: stats.two_proportions(wins[0], len(before), wins[1], len(after)),
            baseline_interval=stats.wilson(wins[0], len(before)),
            current_interval=stats.wilson(wins[1], len(after)),
        ),
        change(
            "avg_duration_ms",
            _mean(durations[0]),
            _mean(durations[1]),
            lambda: stats.mann_whitney(durations[0], durations[1]),
        ),
        change(
            "p95_duration_ms",
            stats.quantile(durations[0], P95),
            stats.quantile(durations[1], P95),
            lambda: stats.quantile_test(durations[0], durations[1], P95),
            baseline_interval=stats.quantile_interval(durations[0], P95),
            current_interval=stats.quantile_interval(durations[1], P95),
        ),
    ]
    if tokens:
        used = [[float(o.tokens) for o in side] for side in (before, after)]
        changes.append(
            change("tokens_per_session", _mean(used[0]), _mean(used[1]), lambda: stats.mann_whitney(*used))
        )
    if cost:
        spent = [[o.cost or 0.0 for o in side] for side in (before, after)]
        changes.append(
            change("cost_per_session", _mean(spent[0]), _mean(spent[1]), lambda: stats.mann_whitney(*spent))
        )
    return changes


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def compare_paths(
    paths: Sequence[PathLike],
    baseline: Slice,
    current: Slice,
    *,
    alpha: float = 0.01,
    prices: Prices | None = None,
    engine: str = "duckdb",
    master: str | None = None,
) -> tuple[Comparison, list[Problem]]:
    """Two stores (``paths`` = baseline, current), or one store's two slices: compared.

    A side without completed sessions is a ``UsageError``: nothing would be compared.
    """
    common: dict[str, Any] = {"engine": engine, "master": master, "prices": prices}
    if len(paths) == 1:
        (before, after), problems = load_outcomes(paths, [baseline, current], **common)
    elif len(paths) == 2:
        (before,), problems = load_outcomes(paths[:1], [baseline], **common)
        (after,), more = load_outcomes(paths[1:], [current], **common)
        problems += more
    else:
        raise UsageError("give two paths (BASELINE CURRENT), or one path and the baseline's time span")
    for name, side in (("baseline", before), ("current", after)):
        if not side:
            raise UsageError(f"no completed sessions in the {name}: check the paths and time options")
    return compare(before, after, alpha=alpha), problems
