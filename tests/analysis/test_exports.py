"""Exports, as SPEC.md's quick start and earlier versions wrote them, give the whole report.

Every expected value is counted here from the export file itself."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from waza.telemetry import RuntimeCollector, TelemetryAnalyzer

TOOLS = ("az", "git", "kubectl")
MODELS = ("gpt-4.1", "gpt-4.1-mini")
# Whole-millisecond durations that version 0.1's float arithmetic stored a millisecond short.
SHORT = [k for k in range(1, 20_000) if int(timedelta(milliseconds=k).total_seconds() * 1000) != k]


def earlier_export(path: Path, sessions: int, seed: int) -> dict:
    """An export as version 0.1 wrote it: no event ids, tokens as a dict or a plain number, and
    ``duration_ms`` as ``int((end - start).total_seconds() * 1000)``, which float rounding can
    leave a millisecond below the truncated difference of the timestamps."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    written = []
    for n in range(sessions):
        begin = start + timedelta(seconds=rng.randrange(86_400), microseconds=rng.randrange(1_000_000))
        took = (
            timedelta(milliseconds=rng.choice(SHORT))
            if n % 2
            else timedelta(microseconds=rng.randrange(10**7))
        )
        clock = begin
        skill = rng.choice(("azure-deploy", "azure-cost"))
        events = [{"timestamp": begin, "event_type": "skill.invoked", "skill_name": skill, "data": {}}]
        failure = None
        for _ in range(rng.randrange(4)):
            tool = rng.choice(TOOLS)
            events.append({"timestamp": clock, "event_type": "tool.called", "data": {"tool": tool}})
            clock += took / 8
            ok = rng.random() < 0.8
            done = {"tool": tool, "success": ok, **({} if ok else {"error": "Conflict: busy"})}
            events.append({"timestamp": clock, "event_type": "tool.completed", "data": done})
            failure = failure or (None if ok else "Conflict: busy")
        model = rng.choice(MODELS)
        tokens = rng.choice(
            [rng.randrange(50, 900), {"input": rng.randrange(100), "output": rng.randrange(50)}]
        )
        events.append(
            {"timestamp": clock, "event_type": "llm.request", "data": {"model": model, "tokens": tokens}}
        )
        if rng.random() < 0.1:
            events.append(
                {
                    "timestamp": clock,
                    "event_type": "error",
                    "data": {"error_type": "Timeout", "message": "Timeout: slow"},
                }
            )
            failure = failure or "Timeout: slow"
        end = begin + took
        written.append(
            {
                "session_id": f"s-{seed}-{n}",
                "start_time": begin.isoformat(),
                "end_time": end.isoformat(),
                "skill_name": skill,
                "prompt": "Deploy",
                "output": "",
                "events": [
                    {**e, "timestamp": e["timestamp"].isoformat(), "session_id": f"s-{seed}-{n}"}
                    for e in events
                ],
                "tool_calls": [e["data"] for e in events if e["event_type"] == "tool.called"],
                "success": failure is None,
                "error": failure,
                "duration_ms": int((end - begin).total_seconds() * 1000),
                "metadata": {"user_id": f"u{n % 7}"},
            }
        )
    document = {"exported_at": start.isoformat(), "total_sessions": sessions, "sessions": written}
    path.write_text(json.dumps(document), encoding="utf-8")
    return document


def expected_details(sessions: list[dict]) -> dict:
    """Tool calls and failures per tool, requests and total tokens per model, errors by type."""
    events = [e for s in sessions for e in s["events"]]
    calls = Counter(e["data"]["tool"] for e in events if e["event_type"] == "tool.called")
    failed = Counter(
        e["data"]["tool"] for e in events if e["event_type"] == "tool.completed" and not e["data"]["success"]
    )
    requests, tokens = Counter(), Counter()
    for e in events:
        if e["event_type"] == "llm.request":
            given = e["data"].get("tokens", 0)
            requests[e["data"]["model"]] += 1
            tokens[e["data"]["model"]] += (
                given if isinstance(given, int) else given["input"] + given["output"]
            )
    errors = Counter()
    for s in sessions:  # each error text once per session, under the type it begins with
        texts = {e["data"]["message"] for e in s["events"] if e["event_type"] == "error"}
        texts |= {
            e["data"]["error"]
            for e in s["events"]
            if e["event_type"] == "tool.completed" and "error" in e["data"]
        }
        errors.update(text.split(":")[0] for text in texts)
    return {"calls": calls, "failed": failed, "requests": requests, "tokens": tokens, "errors": errors}


def assert_details(report: dict, expected: dict) -> None:
    assert {t["tool"]: t["calls"] for t in report["tools"]} == dict(expected["calls"])
    assert {t["tool"]: round(t["failure_rate"] * t["completed"]) for t in report["tools"]} == {
        tool: expected["failed"][tool] for tool in expected["calls"]
    }
    assert {m["model"]: m["requests"] for m in report["llm"]} == dict(expected["requests"])
    assert {m["model"]: m["total_tokens"] for m in report["llm"]} == dict(expected["tokens"])
    assert {e["error_type"]: e["count"] for e in report["errors"]} == dict(expected["errors"])


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_an_earlier_versions_export_gives_its_numbers(tmp_path: Path, engine: str) -> None:
    """Per-skill and overall average durations equal the earlier version's mean of the stored
    ``duration_ms`` to 1e-9, and tools, models, tokens and errors are those the file holds."""
    document = earlier_export(tmp_path / "sessions-2026-10.json", 300, seed=5)
    sessions = document["sessions"]
    rounded = [
        s
        for s in sessions
        if s["duration_ms"]
        != (datetime.fromisoformat(s["end_time"]) - datetime.fromisoformat(s["start_time"]))
        // timedelta(milliseconds=1)
    ]
    assert rounded  # some stored durations differ from the timestamps': the test can tell them apart

    report = TelemetryAnalyzer(engine=engine).analyze_paths([tmp_path / "sessions-2026-10.json"])
    by_skill = defaultdict(list)
    for s in sessions:
        by_skill[s["skill_name"]].append(s["duration_ms"])
    for skill, durations in by_skill.items():
        got = report["skill_breakdown"][skill]["avg_duration_ms"]
        assert got == pytest.approx(sum(durations) / len(durations), rel=1e-9, abs=0)
    overall = [s["duration_ms"] for s in sessions]
    assert report["metrics"]["avg_duration_ms"] == pytest.approx(sum(overall) / len(overall), rel=1e-9, abs=0)
    assert_details(report, expected_details(sessions))


def test_the_quick_start_export_gives_the_whole_report(tmp_path: Path) -> None:
    """SPEC.md's quick start, then `waza analyze` on the export: tools, models, tokens and errors."""
    collector = RuntimeCollector()
    for n in range(20):
        session_id = collector.start_session(
            prompt="Deploy my app to Azure", metadata={"user_id": f"user{n % 4}", "environment": "production"}
        )
        collector.record_event(session_id, "skill.invoked", skill_name="azure-deploy")
        tool = TOOLS[n % 3]
        collector.record_event(session_id, "tool.called", data={"tool": tool, "args": ["webapp", "create"]})
        ok = n % 5 != 0
        completed = {"tool": tool, "success": ok, **({} if ok else {"error": "QuotaExceeded: no cores"})}
        collector.record_event(session_id, "tool.completed", data=completed)
        collector.record_event(session_id, "llm.request", data={"model": MODELS[n % 2], "tokens": 100 + n})
        collector.end_session(session_id, output="Deployed to https://myapp.azurewebsites.net", success=ok)
    collector.export_to_file(tmp_path / "telemetry" / "sessions-2024-01.json")

    document = json.loads((tmp_path / "telemetry" / "sessions-2024-01.json").read_text())
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "telemetry" / "sessions-2024-01.json"])
    assert report["total_sessions"] == 20
    assert_details(report, expected_details(document["sessions"]))
