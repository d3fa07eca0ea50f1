"""What the metric queries return: the figures of a group of sessions, and the summary of a slice."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Progress = Callable[[float], None]
Rows = tuple[list[str], list[tuple[Any, ...]]]


@dataclass
class Figures:
    """Every figure of one group of sessions, as the engine computed it."""

    sessions: int = 0
    completed: int = 0
    succeeded: int = 0
    duration_ms: int = 0  # sum over completed sessions that ended after they started
    timed: int = 0  # those sessions: a clock stepped back gives the others no duration
    ended_before_start: int = 0
    tool_calls: int = 0
    estimated: float = 0.0  # sessions weighted by 1/sample rate
    abandoned: int = 0
    events_dropped: int = 0
    values_truncated: int = 0
    users: int = 0
    duration_percentiles: list[float] | None = None  # p50, p90, p95, p99 of completed sessions
    first_start: datetime | None = None
    last_end: datetime | None = None

    @property
    def avg_duration_ms(self) -> float | None:
        return self.duration_ms / self.timed if self.timed else None


@dataclass
class Summary:
    """What the metric queries return; the report layer turns it into figures."""

    totals: Figures
    per_skill: dict[str, Figures]
    breakdown: dict[str | None, Figures] | None
    per_day: list[dict[str, Any]]
    slowest: list[tuple[str, str | None, int]]
    most_tools: list[tuple[str, str | None, int]]


def figures_of(record: dict[str, Any]) -> Figures:
    """The figures of one row of ``sql.FIGURES``."""
    numbers = {
        k: (float(v) if k == "estimated" else int(v))
        for k, v in record.items()
        if k not in ("duration_percentiles", "first_start", "last_end") and v is not None
    }
    return Figures(
        **numbers,
        duration_percentiles=record["duration_percentiles"],
        first_start=record["first_start"],
        last_end=record["last_end"],
    )


GROUP_KEYS = ("by_skill", "by_key", "skill_name", "breakdown")


def figures_by_group(
    records: Iterable[dict[str, Any]], by: str | None
) -> tuple[Figures, dict[str, Figures], dict[str | None, Figures] | None]:
    """Totals, per skill and per breakdown value, from the rows of FIGURES' grouping sets (each
    with the GROUP_KEYS columns that say which set it is of)."""
    totals, per_skill, per_key = Figures(), {}, {}
    for record in records:
        by_skill, by_key, skill, key = (record.pop(c) for c in GROUP_KEYS)
        figures = figures_of(record)
        if not by_skill:
            if skill is not None:
                per_skill[skill] = figures
        elif not by_key:
            per_key[key] = figures
        else:
            totals = figures
    breakdown = dict(sorted(per_key.items(), key=lambda item: (item[0] is None, item[0] or "")))
    return totals, dict(sorted(per_skill.items())), breakdown if by else None
