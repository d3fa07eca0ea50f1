"""Turns what the engine computed into the JSON report (the keys earlier versions wrote, and more)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from waza.engine.duckdb_engine import Summary, Totals
from waza.model import format_time
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
    report: dict[str, Any] = {
        "total_sessions": totals.sessions,
        "skills": sorted(summary.per_skill),
        "metrics": _figures(totals),
        "skill_breakdown": breakdown,
        "time_range": {"start": _time(summary.first_start), "end": _time(summary.last_end)},
        "completed_sessions": totals.completed,
        "incomplete_sessions": totals.sessions - totals.completed,
        "skill_filter": skill_filter,
    }
    if sources is not None:
        report["input"] = {
            "files": len(sources),
            "bytes": sum(source.size for source in sources),
            "problems": [{"path": p.path, "line": p.line, "reason": p.reason} for p in problems or []],
        }
    return report
