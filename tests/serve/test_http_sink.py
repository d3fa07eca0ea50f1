"""A collector in another process ships to `waza serve` through HttpSink, and survives its absence."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import read_log
from tests.serve.test_server import free_port, server
from waza.telemetry import HttpSink, RuntimeCollector, TelemetryAnalyzer


def record(collector: RuntimeCollector, sessions: int, prefix: str) -> None:
    for n in range(sessions):
        sid = collector.start_session(f"prompt {n}", {"user_id": f"u{n % 5}"}, skill_name="azure-deploy",
                                      session_id=f"{prefix}-{n}")  # fmt: skip
        collector.record_event(sid, "tool.called", {"tool": "az"})
        collector.end_session(sid, "done", n % 10 != 0)


def test_sessions_arrive_through_the_server(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok")
    with server(tmp_path / "t", "--token-file", str(tmp_path / "token")) as (url, _):
        sink = HttpSink(url, token="tok")
        with RuntimeCollector(sink=sink, flush_interval=0.05) as collector:
            record(collector, 300, "s")
        assert sink.dropped == 0 and sink.pending == 0
    report = TelemetryAnalyzer().analyze_file(tmp_path / "t")
    assert report["total_sessions"] == 300 and report["metrics"]["total_tool_calls"] == 300
    assert report["metrics"]["success_rate"] == 0.9


def test_a_server_that_is_down_costs_no_exception_and_bounded_memory(tmp_path: Path) -> None:
    port = free_port()
    sink = HttpSink(f"http://127.0.0.1:{port}", max_lines=500, max_backoff=0.2, timeout=1)
    collector = RuntimeCollector(sink=sink, flush_interval=0.05)
    record(collector, 400, "down")  # 1,200 events, the server nowhere
    assert collector.flush(5) is False  # honest: nothing could be delivered
    assert sink.pending == 500 and sink.dropped == 700  # only the newest are kept
    record(collector, 10, "later")
    with server(tmp_path / "t", port=port):
        deadline = time.monotonic() + 20
        while sink.pending and time.monotonic() < deadline:  # the writer retries on its own
            time.sleep(0.1)
        assert sink.pending == 0 and collector.flush(5) is True
        collector.close()
    stored = read_log(tmp_path / "t")
    assert len(stored) == 500 and sink.dropped == 730  # the newest 500 lines, each once
    assert {f"later-{n}" for n in range(10)} <= {e["session_id"] for e in stored}
