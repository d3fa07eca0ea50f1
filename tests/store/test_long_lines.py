"""No value can make a line that stops an analysis: writers bound lines, readers skip what they cannot."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import read_log, write_jsonl
from tests.tasks.test_convert import session_events
from waza.cli import main
from waza.store.codec import MAX_LINE_BYTES
from waza.telemetry import RuntimeCollector


def test_a_huge_value_deep_in_data_is_cut_to_a_bounded_line(tmp_path: Path) -> None:
    """Tool arguments holding 700 strings of 60 KB become one marked line of at most 1 MiB."""
    with RuntimeCollector(tmp_path / "t") as collector:
        with (
            collector.session("Deploy", skill_name="azure-deploy") as s,
            s.tool("az", args=["x" * 60_000] * 700),
        ):
            pass
    lines = [p for p in (tmp_path / "t").rglob("*.jsonl.gz")]
    events = read_log(tmp_path / "t")
    (called,) = [e for e in events if e["event_type"] == "tool.called"]
    assert called["data"]["tool"] == "az" and called["data"]["_truncated_bytes"] > 40 * 2**20
    assert all(len(json.dumps(e)) <= MAX_LINE_BYTES for e in events) and lines
    assert collector.dropped == {"line_truncated": 1}
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "t"), "--strict", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)["metrics"]["total_tool_calls"] == 1


def test_a_line_too_long_to_read_is_skipped_and_reported(tmp_path: Path) -> None:
    """A 40 MB line among good ones: the others are analysed, the long one named by its line number."""
    good = session_events("s1", "Deploy app-1", tools=[("az", True)]) + session_events("s2", "Deploy app-2")
    path = write_jsonl(tmp_path / "t" / "events.jsonl", good)
    huge = json.dumps({"timestamp": "2026-11-20T09:00:00+00:00", "event_type": "custom",
                       "data": {"blob": "y" * 40_000_000}, "session_id": "s1"})  # fmt: skip
    text = path.read_text().splitlines()
    path.write_text("\n".join([*text[:2], huge, *text[2:]]) + "\n")
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "t"), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total_sessions"] == 2 and report["metrics"]["total_tool_calls"] == 1
    (problem,) = report["input"]["problems"]
    assert problem["line"] == 3 and "too long" in problem["reason"]
