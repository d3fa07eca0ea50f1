"""Turns what the engine computed into the JSON report (the keys earlier versions wrote, and more).

The report's schema is documented in docs/report.md.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from waza.engine.results import Figures, Summary
from waza.engine.slicing import Slice
from waza.model import format_time
from waza.store.codec import finite
from waza.store.retention import PARTITION
from waza.store.sources import Problem, Source

PERCENTILES = ("p50", "p90", "p95", "p99")


def _ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def _percentiles(figures: Figures) -> dict[str, float | None]:
    values = figures.duration_percentiles or [None] * len(PERCENTILES)
    return {f"duration_ms_{name}": value for name, value in zip(PERCENTILES, values, strict=True)}


def _metrics(figures: Figures) -> dict[str, Any]:
    return _figures(figures, avg_tool_calls_per_session=_ratio(figures.tool_calls, figures.sessions))


def _group(figures: Figures) -> dict[str, Any]:
    """The figures of one skill or one breakdown value."""
    extra = {
        "incomplete_sessions": figures.sessions - figures.completed,
        "estimated_sessions": figures.estimated,
    }
    return {"invocations": figures.sessions, **_figures(figures, **extra)}


def _figures(figures: Figures, **extra: Any) -> dict[str, Any]:
    """What the overall metrics and every group report alike, with ``extra`` before the percentiles."""
    return {
        "success_rate": _ratio(figures.succeeded, figures.completed),
        "avg_duration_ms": figures.avg_duration_ms,
        "total_tool_calls": figures.tool_calls,
        **extra,
        **_percentiles(figures),
        "distinct_users": figures.users,
    }


def _filters(scope: Slice) -> dict[str, Any]:
    return {
        "skill": scope.skill,
        "since": _time(scope.since),
        "until": _time(scope.until),
        "where": {key: value for key, value in scope.where},
        "by": scope.by,
        "user_key": scope.user_key,
    }


def build_report(
    summary: Summary,
    *,
    scope: Slice | None = None,
    sources: list[Source] | None = None,
    problems: list[Problem] | None = None,
) -> dict[str, Any]:
    """The report as a plain dict, ready for ``json.dump`` as strict JSON (no NaN)."""
    scope = scope or Slice()
    totals = summary.totals
    report: dict[str, Any] = {
        "total_sessions": totals.sessions,
        "skills": sorted(summary.per_skill),
        "metrics": _metrics(totals),
        "skill_breakdown": {skill: _group(figures) for skill, figures in summary.per_skill.items()},
        "time_range": {"start": _time(totals.first_start), "end": _time(totals.last_end)},
        "completed_sessions": totals.completed,
        "incomplete_sessions": totals.sessions - totals.completed,
        "abandoned_sessions": totals.abandoned,
        "estimated_sessions": totals.estimated,
        "sampled": abs(totals.estimated - totals.sessions) > 1e-9,
        "cut": {"events_dropped": totals.events_dropped, "values_truncated": totals.values_truncated},
        "ended_before_start": totals.ended_before_start,
        "slowest_sessions": [
            {"session_id": sid, "skill": skill, "duration_ms": value} for sid, skill, value in summary.slowest
        ],
        "most_tool_calls": [
            {"session_id": sid, "skill": skill, "tool_calls": value}
            for sid, skill, value in summary.most_tools
        ],
        "per_day": [
            {
                "day": row["day"].isoformat(),
                "sessions": row["sessions"],
                "estimated_sessions": row["estimated"],
                "success_rate": _ratio(row["succeeded"], row["completed"]),
                "avg_duration_ms": row["avg_duration_ms"],
                "distinct_users": row["users"],
            }
            for row in summary.per_day
        ],
        "skill_filter": scope.skill,
        "filters": _filters(scope),
    }
    if summary.breakdown is not None:
        report["breakdown"] = {
            "by": scope.by,
            "groups": {
                str(key) if key is not None else None: _group(f) for key, f in summary.breakdown.items()
            },
        }
    if sources is not None:
        stored = sum(source.size for source in sources)
        report["input"] = {
            "files": len(sources),
            "bytes": stored,
            "problems": [p.to_dict() for p in problems or []],
        }
        report["storage"] = _storage(report, sources, stored)
    return finite(report)


def _partition_day(path: Path) -> str | None:
    for part in path.parts:
        match = PARTITION.match(part)
        if match:
            return match.group(1)
    return None


def _storage(report: dict[str, Any], sources: list[Source], stored: int) -> dict[str, Any]:
    """Bytes on disk overall, per session and per day, so growth can be watched.

    Bytes are counted per ``date=`` partition of the event log (files outside
    partitions under the day ``null``); sessions per UTC day of their start.
    """
    bytes_by_day: dict[str | None, int] = {}
    for source in sources:
        day = _partition_day(source.path)
        bytes_by_day[day] = bytes_by_day.get(day, 0) + source.size
    sessions_by_day = {row["day"]: row["sessions"] for row in report["per_day"]}
    days = sorted(set(sessions_by_day) | {day for day in bytes_by_day if day is not None})
    per_day = [
        {"day": day, "sessions": sessions_by_day.get(day, 0), "bytes": bytes_by_day.get(day, 0)}
        for day in days
    ]
    if None in bytes_by_day:
        per_day.append({"day": None, "sessions": 0, "bytes": bytes_by_day[None]})
    sessions = report["total_sessions"]
    return {"bytes": stored, "bytes_per_session": _ratio(stored, sessions), "per_day": per_day}
