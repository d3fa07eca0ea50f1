"""The figures beyond SPEC.md's four, and slicing, against values computed here from raw events."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from waza.cli import main
from waza.engine.slicing import Slice
from waza.telemetry import TelemetryAnalyzer


def percentile(values: list[float], share: float) -> float:
    """Linear interpolation between closest ranks (the documented definition)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * share
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sessions_of(raw: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One plain record per session, folded here from the raw events."""
    rows = []
    for events in raw:
        started = next(e for e in events if e["event_type"] == "session.started")
        ended = [e for e in events if e["event_type"] == "session.ended"]
        start = datetime.fromisoformat(started["timestamp"])
        end = datetime.fromisoformat(ended[-1]["timestamp"]) if ended else None
        micros = None if end is None else (end - start) // (end - start).resolution
        rows.append(
            {
                "id": started["session_id"],
                "skill": next(e["skill_name"] for e in events if e["skill_name"]),
                "start": start,
                "duration": None if micros is None else int(micros / 1000),
                "success": bool(ended) and ended[-1]["data"]["success"] is True,
                "tools": sum(e["event_type"] == "tool.called" for e in events),
                "user": started["data"]["metadata"]["user_id"],
                "environment": started["data"]["metadata"]["environment"],
            }
        )
    return rows


def test_duration_percentiles_and_users(sample_dir: Path, sample_raw) -> None:
    """p50/p90/p95/p99 and distinct users, overall and per skill."""
    rows = sessions_of(sample_raw)
    report = TelemetryAnalyzer().analyze_file(sample_dir)
    groups = {None: rows} | {s: [r for r in rows if r["skill"] == s] for s in {r["skill"] for r in rows}}
    for skill, members in groups.items():
        figures = report["metrics"] if skill is None else report["skill_breakdown"][skill]
        durations = [r["duration"] for r in members if r["duration"] is not None]
        for name, share in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            assert figures[f"duration_ms_{name}"] == pytest.approx(percentile(durations, share), rel=1e-12)
        assert figures["distinct_users"] == len({r["user"] for r in members})


def test_outlier_sessions(sample_dir: Path, sample_raw) -> None:
    """The slowest and the most tool-heavy sessions, ties ordered by id."""
    rows = sessions_of(sample_raw)
    report = TelemetryAnalyzer().analyze_file(sample_dir, scope=Slice(top=4))
    slowest = sorted((r for r in rows if r["duration"] is not None), key=lambda r: (-r["duration"], r["id"]))
    assert [s["session_id"] for s in report["slowest_sessions"]] == [r["id"] for r in slowest[:4]]
    heavy = sorted((r for r in rows if r["tools"]), key=lambda r: (-r["tools"], r["id"]))
    assert [(s["session_id"], s["tool_calls"]) for s in report["most_tool_calls"]] == [
        (r["id"], r["tools"]) for r in heavy[:4]
    ]


def test_per_day_trend(sample_dir: Path, sample_raw) -> None:
    """Sessions, success rate and users per UTC day of the start."""
    rows = sessions_of(sample_raw)
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[row["start"].astimezone(UTC).date().isoformat()].append(row)
    report = TelemetryAnalyzer().analyze_file(sample_dir)
    assert [d["day"] for d in report["per_day"]] == sorted(by_day)
    for day in report["per_day"]:
        members = by_day[day["day"]]
        completed = [r for r in members if r["duration"] is not None]
        assert day["sessions"] == len(members)
        assert day["success_rate"] == pytest.approx(sum(r["success"] for r in completed) / len(completed))
        assert day["distinct_users"] == len({r["user"] for r in members})


def test_since_until_where_and_by(sample_dir: Path, sample_raw) -> None:
    """Time and metadata filters select sessions; --by breaks the figures down by a metadata key."""
    rows = sessions_of(sample_raw)
    since, until = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 5, 12, tzinfo=UTC)
    scope = Slice(since=since, until=until, where=(("environment", "production"),), by="environment")
    report = TelemetryAnalyzer().analyze_file(sample_dir, scope=scope)
    chosen = [r for r in rows if since <= r["start"] < until and r["environment"] == "production"]
    assert report["total_sessions"] == len(chosen)
    assert report["metrics"]["total_tool_calls"] == sum(r["tools"] for r in chosen)
    assert list(report["breakdown"]["groups"]) == ["production"]

    by_env = TelemetryAnalyzer().analyze_file(sample_dir, scope=Slice(by="environment"))
    for environment, figures in by_env["breakdown"]["groups"].items():
        members = [r for r in rows if r["environment"] == environment]
        assert figures["invocations"] == len(members)
        durations = [r["duration"] for r in members if r["duration"] is not None]
        assert figures["avg_duration_ms"] == pytest.approx(sum(durations) / len(durations), rel=1e-12)


def test_by_day_and_by_skill(sample_dir: Path, sample_raw) -> None:
    """--by day and --by skill group the same sessions the per-day and per-skill figures do."""
    report = TelemetryAnalyzer().analyze_file(sample_dir, scope=Slice(by="day"))
    assert {day: g["invocations"] for day, g in report["breakdown"]["groups"].items()} == {
        d["day"]: d["sessions"] for d in report["per_day"]
    }
    by_skill = TelemetryAnalyzer().analyze_file(sample_dir, scope=Slice(by="skill"))["breakdown"]["groups"]
    assert {k: g["invocations"] for k, g in by_skill.items()} == {
        k: g["invocations"] for k, g in report["skill_breakdown"].items()
    }


def test_a_clock_stepped_back_is_reported_not_averaged(tmp_path: Path) -> None:
    """A session that ended before it started counts as completed, has no duration, and is reported."""
    from tests.conftest import write_jsonl
    from tests.tasks.test_convert import START, session_events

    lines = session_events("ok", "Deploy app-1", duration_ms=3000)
    backwards = session_events("skewed", "Deploy app-2", duration_ms=2000)
    for line in backwards:
        if line["event_type"] == "session.ended":
            line["timestamp"] = (START - timedelta(seconds=5)).isoformat()
    write_jsonl(tmp_path / "t" / "events.jsonl", lines + backwards)
    report = TelemetryAnalyzer().analyze_file(tmp_path / "t")
    assert report["completed_sessions"] == 2 and report["ended_before_start"] == 1
    assert report["metrics"]["avg_duration_ms"] == 3000 and report["metrics"]["duration_ms_p99"] == 3000
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "t")])
    assert "1 session(s) ended before they started" in result.output
