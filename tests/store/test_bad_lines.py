"""One bad line never costs a good one, in the Python reader and in the DuckDB engine alike."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waza.analysis.analyzer import TelemetryAnalyzer
from waza.sample import sample_sessions
from waza.store.reader import load_sessions

EVENTS = [event for session in sample_sessions(12, seed=9) for event in session]
GARBAGE = st.sampled_from(
    [
        "{",
        "not json",
        "[1, 2]",
        '"text"',
        "null",
        '{"event_type": "x", "session_id": "s"}',
        '{"timestamp": "yesterday", "event_type": "x", "session_id": "s"}',
        '{"timestamp": "2024-01-01T00:00:00", "event_type": "x"}',
        '{"timestamp": "2024-01-01T00:00:00", "event_type": "tool.called", "session_id": "s", "data": ',
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(EVENTS)), GARBAGE), max_size=6))
def test_garbage_lines_are_reported_and_skipped(insertions) -> None:
    """Inserted bad lines are named by number; sessions and metrics are those of the clean file."""
    lines = [json.dumps(event) for event in EVENTS]
    for position, garbage in sorted(insertions, reverse=True):
        lines.insert(position, garbage)
    bad_numbers = {n for n, line in enumerate(lines, 1) if line not in {json.dumps(e) for e in EVENTS}}
    with tempfile.TemporaryDirectory() as folder:
        clean, dirty = Path(folder, "clean"), Path(folder, "dirty")
        clean.mkdir()
        dirty.mkdir()
        (clean / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
        (dirty / "log.jsonl").write_text("\n".join(lines) + "\n")

        sessions, problems = load_sessions([dirty])
        assert {p.line for p in problems} == bad_numbers
        assert sessions == load_sessions([clean])[0]

        analyzer = TelemetryAnalyzer()
        dirty_report, clean_report = analyzer.analyze_file(dirty), analyzer.analyze_file(clean)
        assert {p["line"] for p in dirty_report.pop("input")["problems"]} == bad_numbers
        clean_report.pop("input")
        dirty_report.pop("storage"), clean_report.pop("storage")  # the dirty file is larger
        assert dirty_report == clean_report
