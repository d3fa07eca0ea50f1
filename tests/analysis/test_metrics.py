"""Every figure of the report against values computed in the test from the raw events."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import expected_metrics, write_jsonl
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer


def assert_matches(report: dict, expected: dict) -> None:
    assert report["total_sessions"] == expected["total_sessions"]
    assert report["completed_sessions"] == expected["completed_sessions"]
    assert report["skills"] == expected["skills"]
    metrics = report["metrics"]
    for key in ("success_rate", "avg_duration_ms", "avg_tool_calls_per_session"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-12), key
    assert metrics["total_tool_calls"] == expected["total_tool_calls"]


def test_event_log_metrics(sample_dir: Path, sample_raw) -> None:
    """Overall figures of an event-log folder match the definitions applied to the raw events."""
    report = TelemetryAnalyzer().analyze_file(sample_dir)
    assert_matches(report, expected_metrics(sample_raw))
    assert report["incomplete_sessions"] > 0  # the sample holds open sessions


def test_per_skill_metrics(sample_dir: Path, sample_raw) -> None:
    """Each skill's breakdown matches the definitions over that skill's sessions."""
    report = TelemetryAnalyzer().analyze_file(sample_dir)
    for skill, figures in report["skill_breakdown"].items():
        expected = expected_metrics(sample_raw, skill)
        assert figures["invocations"] == expected["total_sessions"]
        assert figures["success_rate"] == pytest.approx(expected["success_rate"], rel=1e-12)
        assert figures["avg_duration_ms"] == pytest.approx(expected["avg_duration_ms"], rel=1e-12)
        assert figures["total_tool_calls"] == expected["total_tool_calls"]


def test_skill_filter(sample_dir: Path, sample_raw) -> None:
    """skill_filter restricts every figure to that skill."""
    report = TelemetryAnalyzer().analyze_file(sample_dir, skill_filter="azure-cost")
    assert_matches(report, expected_metrics(sample_raw, "azure-cost"))


def test_files_and_memory_give_the_same_report(sample_dir: Path) -> None:
    """analyze_file (DuckDB on the files) equals analyze_sessions on the sessions loaded in Python."""
    analyzer = TelemetryAnalyzer()
    from_files = analyzer.analyze_file(sample_dir)
    from_memory = analyzer.analyze_sessions(RuntimeCollector.load_from_file(sample_dir))
    from_files.pop("input"), from_files.pop("storage")
    assert from_memory == from_files


def test_every_format_gives_the_same_figures(tmp_path: Path, sample_dir: Path, sample_raw) -> None:
    """Exports, session lists and session lines, plain or gzipped, analyse like the event log."""
    sessions = [s.to_dict() for s in RuntimeCollector.load_from_file(sample_dir)]
    thirds = [sessions[0::3], sessions[1::3], sessions[2::3]]
    folder = tmp_path / "mixed"
    write_jsonl(folder / "lines.jsonl", thirds[0])
    (folder / "list.json").write_text(json.dumps(thirds[1]))
    export = {"exported_at": "2026-11-01T00:00:00", "sessions": thirds[2]}
    (folder / "nested").mkdir()
    (folder / "nested" / "export.json.gz").write_bytes(gzip.compress(json.dumps(export).encode()))
    report = TelemetryAnalyzer().analyze_file(folder)
    assert_matches(report, expected_metrics(sample_raw))
    assert report["input"]["problems"] == []


def test_gzipped_event_log(tmp_path: Path, sample_dir: Path, sample_raw) -> None:
    """Gzipped event-log segments read like plain ones."""
    for path in sample_dir.rglob("*.jsonl"):
        target = tmp_path / "gz" / path.relative_to(sample_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_suffix(".jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
    assert_matches(TelemetryAnalyzer().analyze_file(tmp_path / "gz"), expected_metrics(sample_raw))


def test_session_split_across_files(tmp_path: Path, sample_raw) -> None:
    """A session whose events sit in several files (and days) folds into one session."""
    events = [e for session in sample_raw[:50] for e in session]
    write_jsonl(tmp_path / "a.jsonl", events[0::2])
    write_jsonl(tmp_path / "b" / "c.jsonl", events[1::2])
    assert_matches(TelemetryAnalyzer().analyze_file(tmp_path), expected_metrics(sample_raw[:50]))


def test_legacy_export_keeps_its_metrics(tmp_path: Path) -> None:
    """An export of earlier versions (naive times, duration_ms, no session events) keeps its figures."""
    sessions = []
    for n in range(30):
        start = f"2024-01-0{1 + n % 9}T10:{n:02d}:00.{n * 7919 % 1000000:06d}"
        end = f"2024-01-0{1 + n % 9}T10:{n:02d}:0{n % 10}.{n * 104729 % 1000000:06d}"
        tools = [{"tool": "az", "args": [str(k)]} for k in range(n % 4)]
        events = [
            {
                "timestamp": start,
                "event_type": "tool.called",
                "skill_name": None,
                "data": t,
                "session_id": f"s{n}",
            }
            for t in tools
        ]
        sessions.append(
            {
                "session_id": f"s{n}",
                "start_time": start,
                "end_time": end,
                "skill_name": ["azure-deploy", "azure-cost", None][n % 3],
                "prompt": "p",
                "output": "o",
                "events": events,
                "tool_calls": tools,
                "success": n % 5 != 0,
                "error": None,
                "duration_ms": None,
                "metadata": {},
            }
        )
    from datetime import datetime

    for s in sessions:  # as those versions computed it
        delta = datetime.fromisoformat(s["end_time"]) - datetime.fromisoformat(s["start_time"])
        s["duration_ms"] = int(delta.total_seconds() * 1000)
    path = tmp_path / "sessions.json"
    path.write_text(json.dumps({"exported_at": "2024-01-10T00:00:00", "sessions": sessions}, indent=2))

    # The earlier versions' formulas, over all (completed) sessions of the export.
    count = len(sessions)
    tool_total = sum(len(s["tool_calls"]) for s in sessions)
    report = TelemetryAnalyzer().analyze_file(path)
    assert report["total_sessions"] == count
    assert report["metrics"]["success_rate"] == pytest.approx(sum(s["success"] for s in sessions) / count)
    # Earlier versions truncated a float product; waza computes whole milliseconds exactly.
    # A session that ended before it started has no duration (and is reported).
    timed = [s["duration_ms"] for s in sessions if s["end_time"] >= s["start_time"]]
    assert report["ended_before_start"] == count - len(timed) > 0
    assert report["metrics"]["avg_duration_ms"] == pytest.approx(
        sum(timed) / len(timed), abs=1.0 / len(timed) + 1e-9
    )
    assert report["metrics"]["total_tool_calls"] == tool_total
    assert report["metrics"]["avg_tool_calls_per_session"] == pytest.approx(tool_total / count)
    assert report["skills"] == ["azure-cost", "azure-deploy"]
    assert report["skill_breakdown"]["azure-deploy"]["invocations"] == 10
    assert report["time_range"]["start"] == "2024-01-01T10:00:00+00:00"


def test_copy_of_a_folder_counts_twice(tmp_path: Path, sample_dir: Path, sample_raw) -> None:
    """Two folders given together are both read (no silent de-duplication of paths)."""
    shutil.copytree(sample_dir, tmp_path / "again")
    report = TelemetryAnalyzer().analyze_paths([sample_dir, tmp_path / "other-name"])
    assert report["total_sessions"] == len(sample_raw)
    assert report["input"]["problems"][0]["reason"] == "no such file or folder"
