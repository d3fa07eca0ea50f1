"""Turns what the engine computed into the JSON report (the keys earlier versions wrote, and more)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from waza.engine.duckdb_engine import Summary, Totals
from waza.model import format_time
from waza.store.retention import PARTITION
from waza.store.sources import Problem, Source


def _ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


def _figures(totals: Totals) -> dict[str, Any]:
    return {
        "success_rate": _ratio(totals.succeeded, totals.completed),
        "avg_duration_ms": totals.avg_duration_ms,
        "total_tool_calls": totals.tool_calls,
        "avg_tool_calls_per_session": _ratio(totals.tool_calls, totals.sessions),
    }


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def build_report(
    summary: Summary,
    *,
    skill_filter: str | None = None,
    sources: list[Source] | None = None,
    problems: list[Problem] | None = None,
) -> dict[str, Any]:
    """The report as a plain dict, ready for ``json.dump``."""
    totals = summary.totals
    breakdown = {
        skill: {
            "invocations": figures.sessions,
            "success_rate": _ratio(figures.succeeded, figures.completed),
            "avg_duration_ms": figures.avg_duration_ms,
            "total_tool_calls": figures.tool_calls,
            "incomplete_sessions": figures.sessions - figures.completed,
        }
        for skill, figures in summary.per_skill.items()
    }
    sampled = abs(totals.estimated - totals.sessions) > 1e-9
    report: dict[str, Any] = {
        "total_sessions": totals.sessions,
        "skills": sorted(summary.per_skill),
        "metrics": _figures(totals),
        "skill_breakdown": breakdown,
        "time_range": {"start": _time(summary.first_start), "end": _time(summary.last_end)},
        "completed_sessions": totals.completed,
        "incomplete_sessions": totals.sessions - totals.completed,
        "abandoned_sessions": totals.abandoned,
        "estimated_sessions": totals.estimated,
        "sampled": sampled,
        "cut": {"events_dropped": totals.events_dropped, "values_truncated": totals.values_truncated},
        "skill_filter": skill_filter,
    }
    if sources is not None:
        stored = sum(source.size for source in sources)
        report["input"] = {
            "files": len(sources),
            "bytes": stored,
            "problems": [{"path": p.path, "line": p.line, "reason": p.reason} for p in problems or []],
        }
        report["storage"] = _storage(summary, sources, stored)
    return report


def _partition_day(path: Path) -> str | None:
    for part in path.parts:
        match = PARTITION.match(part)
        if match:
            return match.group(1)
    return None


def _storage(summary: Summary, sources: list[Source], stored: int) -> dict[str, Any]:
    """Bytes on disk overall, per session and per day, so growth can be watched.

    Bytes are counted per ``date=`` partition of the event log (files outside
    partitions under the day ``null``); sessions per UTC day of their start.
    """
    bytes_by_day: dict[str | None, int] = {}
    for source in sources:
        day = _partition_day(source.path)
        bytes_by_day[day] = bytes_by_day.get(day, 0) + source.size
    sessions_by_day = {day.isoformat(): (count, estimated) for day, count, estimated in summary.per_day}
    days = sorted(set(sessions_by_day) | {day for day in bytes_by_day if day is not None})
    per_day: list[dict[str, Any]] = []
    for day in days:
        count, estimated = sessions_by_day.get(day, (0, 0.0))
        row = {"day": day, "sessions": count, "estimated_sessions": estimated}
        per_day.append(row | {"bytes": bytes_by_day.get(day, 0)})
    if None in bytes_by_day:
        per_day.append({"day": None, "sessions": 0, "estimated_sessions": 0.0, "bytes": bytes_by_day[None]})
    sessions = summary.totals.sessions
    return {
        "bytes": stored,
        "bytes_per_session": stored / sessions if sessions else None,
        "per_day": per_day,
    }
