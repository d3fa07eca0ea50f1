"""The report of whole days read from the ``rolled`` table: rollups added up (see rollup_sql.py).

An engine that has one answers a slice of whole UTC days, by skill or all, broken
down by skill or day, from it; any other slice reads the sessions themselves,
as do the lists of sessions that stand out when ``--top`` asks for more than
the rollups list.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from waza.engine import rollup_sql, sql
from waza.engine.results import GROUP_KEYS, Summary, figures_by_group
from waza.engine.slicing import DEFAULT_USER_KEY, Slice

if TYPE_CHECKING:
    from waza.engine.base import Engine


def covers(scope: Slice) -> bool:
    """Whether rollups hold every figure of ``scope``: whole days, no metadata condition."""
    return (
        not scope.where
        and scope.user_key == DEFAULT_USER_KEY
        and scope.by in (None, "skill", "day")
        and all(_midnight(moment) for moment in (scope.since, scope.until) if moment is not None)
    )


def _midnight(moment: datetime) -> bool:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return utc.time() == time(0)


def _scope(engine: Engine, scope: Slice) -> None:
    """Name the rolled groups of ``scope`` ``scoped`` (values quoted: views take no parameters)."""
    parts = ["true"]
    if scope.skill is not None:
        parts.append(f"skill_name = {sql.literal(scope.skill)}")
    if scope.since is not None:
        parts.append(f"day >= DATE '{_day(scope.since).isoformat()}'")
    if scope.until is not None:
        parts.append(f"day < DATE '{_day(scope.until).isoformat()}'")
    engine._view("scoped", sql.fill(rollup_sql.SCOPED, where=" AND ".join(parts)))


def _day(moment: datetime) -> date:
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def summary(engine: Engine, scope: Slice) -> Summary:
    """``Engine.summary`` of a slice ``covers`` accepts."""
    _scope(engine, scope)
    breakdown = {None: "NULL", "skill": "skill_name", "day": "day"}[scope.by]
    fills = {
        "breakdown": f"({breakdown})::VARCHAR",
        "by_key": "grouping(breakdown)" if scope.by else "1",
        "breakdown_value": "breakdown" if scope.by else "NULL",
    }
    groups: dict[tuple, dict[str, Any]] = {}
    for statement, breakdown_set in (
        (rollup_sql.FIGURE_COUNTS, ", (breakdown)"),
        (rollup_sql.FIGURE_USERS, ", (breakdown)"),
        (rollup_sql.FIGURE_DURATIONS, ", (breakdown, value)"),
    ):
        filled = sql.fill(statement, **fills, breakdown_set=breakdown_set if scope.by else "")
        for record in engine._records(filled):
            key = tuple(record[c] for c in GROUP_KEYS)
            groups.setdefault(key, {"first_start": None, "last_end": None}).update(record)
    for record in groups.values():
        record["duration_percentiles"] = record.pop("percentiles", None)
    totals, per_skill, breakdown = figures_by_group(groups.values(), scope.by)
    return Summary(
        totals=totals,
        per_skill=per_skill,
        breakdown=breakdown,
        per_day=engine._records(rollup_sql.PER_DAY),
        slowest=_listed(engine, scope, "slowest", sql.SLOWEST),
        most_tools=_listed(engine, scope, "most_tools", sql.MOST_TOOLS),
    )


def _listed(engine: Engine, scope: Slice, kind: str, from_sessions: str) -> list[tuple]:
    """The first sessions of a list, from the rollups' lists while they hold them all."""
    if scope.top <= engine._rolled_lists():
        return engine._rows(sql.fill(rollup_sql.LISTED, kind=kind, limit=int(scope.top)))[1]
    where = engine._condition(scope)
    return engine._rows(sql.fill(from_sessions, where=where.sql, limit=int(scope.top)), where.params)[1]


def details(engine: Engine, scope: Slice) -> dict[str, list[dict[str, Any]]]:
    """``Engine.details`` of a slice ``covers`` accepts."""
    _scope(engine, scope)
    top_errors = dict(engine._rows(rollup_sql.TOOL_ERRORS)[1])
    tools = [row | {"top_error": top_errors.get(row["tool"])} for row in engine._records(rollup_sql.TOOLS)]
    return {
        "tools": tools,
        "skills_loaded": engine._records(rollup_sql.SKILLS_LOADED),
        "llm": engine._records(rollup_sql.LLM),
        "errors": engine._records(rollup_sql.ERRORS),
    }
