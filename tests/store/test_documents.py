"""Pretty-printed JSON and OTLP JSON files are read for what they hold, through every reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve.test_otlp import otlp_json
from tests.store.test_sources import sessions_of
from waza.model import session_events
from waza.sample import sample_sessions
from waza.store.reader import load_sessions
from waza.store.sources import Format, discover
from waza.telemetry import TelemetryAnalyzer

TRACES = ["4bf92f3577b34da6a3ce929d0e0e4736", "5bf92f3577b34da6a3ce929d0e0e4737"]


def analyze_cli(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "waza", "analyze", *args, "--format", "json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def sessions():
    return sessions_of(list(sample_sessions(6, seed=3)))


def test_pretty_printed_sessions_and_events_are_read(tmp_path: Path, sessions) -> None:
    """A session, a list of events and an export, each indented over many lines, count as what they hold."""
    (tmp_path / "session.json").write_text(json.dumps(sessions[0].to_dict(), indent=2))
    events = [e.to_dict() for s in sessions[1:3] for e in session_events(s)]
    (tmp_path / "events.json").write_text(json.dumps(events, indent=4))
    export = {"exported_at": "2026-11-08T00:00:00", "sessions": [s.to_dict() for s in sessions[3:]]}
    (tmp_path / "export.json").write_text(json.dumps(export, indent=1, sort_keys=True))
    formats = {s.path.name: s.format for s in discover([tmp_path])[0]}
    assert formats["session.json"] is Format.DOCUMENT and formats["events.json"] is Format.DOCUMENT

    loaded, problems = load_sessions([tmp_path])
    assert problems == [] and sorted(s.session_id for s in loaded) == sorted(s.session_id for s in sessions)
    report = analyze_cli(str(tmp_path))
    assert report["total_sessions"] == 6 and report["input"]["problems"] == []
    assert report["metrics"]["total_tool_calls"] == sum(len(s.tool_calls) for s in sessions)
    completed = [s for s in sessions if s.completed]
    assert report["metrics"]["success_rate"] == pytest.approx(
        sum(s.success for s in completed) / len(completed)
    )


def test_otlp_json_files_are_read_line_by_line_and_whole(tmp_path: Path) -> None:
    """The Collector's file exporter layout (one export per line) and one indented export both read."""
    lines = [json.dumps(otlp_json(trace)) for trace in TRACES]
    (tmp_path / "traces.jsonl").write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    (tmp_path / "one.json").write_text(json.dumps(otlp_json("6bf92f3577b34da6a3ce929d0e0e4738"), indent=2))
    formats = {s.path.name: s.format for s in discover([tmp_path])[0]}
    assert formats == {"traces.jsonl": Format.OTLP, "one.json": Format.DOCUMENT}

    report = analyze_cli(str(tmp_path))
    assert report["total_sessions"] == 3 and report["skills"] == ["azure-cost"]
    assert report["llm"][0]["input_tokens"] == 3 * 42
    (problem,) = report["input"]["problems"]
    assert (problem["path"].endswith("traces.jsonl"), problem["line"]) == (True, 2)
    assert TelemetryAnalyzer().analyze_file(tmp_path)["total_sessions"] == 3
