"""A collector in another process ships to `waza serve` through HttpSink, and survives its absence."""

from __future__ import annotations

import threading
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
    assert collector.dropped == {"buffer_full": 700}  # one ledger: the collector's shows the sink's losses
    record(collector, 10, "later")
    with server(tmp_path / "t", port=port):
        deadline = time.monotonic() + 20
        while sink.pending and time.monotonic() < deadline:  # the writer retries on its own
            time.sleep(0.1)
        assert sink.pending == 0 and collector.flush(5) is True
        collector.close()
    stored = read_log(tmp_path / "t")
    assert len(stored) == 500 and sink.dropped == 730  # the newest 500 lines, each once
    assert collector.dropped == {"buffer_full": 730}
    assert {f"later-{n}" for n in range(10)} <= {e["session_id"] for e in stored}


def test_with_a_spool_an_outage_and_a_restart_lose_nothing(tmp_path: Path) -> None:
    """The server is down while one process records and exits; a later process with the same spool
    delivers everything, each line once, and the spool ends empty."""
    port, spool = free_port(), tmp_path / "spool"
    sink = HttpSink(f"http://127.0.0.1:{port}", max_lines=500, max_backoff=0.2, timeout=1, spool=spool)
    with RuntimeCollector(sink=sink, flush_interval=0.05) as collector:
        record(collector, 400, "down")  # 1,200 events, 700 more than memory keeps
        assert collector.flush(2) is False
    assert sink.dropped == 0 and sink.pending == 1200  # on disk, not yet at the server
    with server(tmp_path / "t", port=port):
        later = HttpSink(f"http://127.0.0.1:{port}", max_backoff=0.2, spool=spool)
        with RuntimeCollector(sink=later, flush_interval=0.05) as collector:
            record(collector, 10, "later")
            assert collector.flush(10) is True
        assert later.pending == 0 and later.dropped == 0
    stored = read_log(tmp_path / "t")
    ids = [e["event_id"] for e in stored]
    assert len(ids) == 1230 and len(set(ids)) == 1230
    assert not list(spool.iterdir())


def test_a_full_spool_counts_what_it_could_not_keep(tmp_path: Path) -> None:
    port = free_port()
    sink = HttpSink(
        f"http://127.0.0.1:{port}", max_lines=100, max_backoff=0.2, timeout=1,
        spool=tmp_path / "spool", spool_max_bytes=100_000,
    )  # fmt: skip
    with RuntimeCollector(sink=sink, flush_interval=0.05) as collector:
        record(collector, 200, "full")
    spooled = sum(len(p.read_bytes().splitlines()) for p in (tmp_path / "spool").iterdir())
    assert 0 < spooled and sum(p.stat().st_size for p in (tmp_path / "spool").iterdir()) <= 100_000
    assert sink.dropped + spooled == 600 and sink.pending == spooled


def test_two_senders_sharing_a_spool_post_each_batch_once(tmp_path: Path) -> None:
    """Processes sharing a spool (a restart while the old one drains, forked workers) never send the
    same spooled batch twice: the stored log holds each event once, not merely counted once."""
    port, spool = free_port(), tmp_path / "spool"
    sink = HttpSink(f"http://127.0.0.1:{port}", max_lines=10, max_backoff=0.2, timeout=1, spool=spool)
    with RuntimeCollector(sink=sink, flush_interval=5) as collector:  # a queue that takes the burst
        record(collector, 10_000, "shared")
    assert not collector.dropped and sink.dropped == 0
    assert len(list(spool.iterdir())) > 5
    with server(tmp_path / "t", port=port) as (url, _):
        senders = [HttpSink(url, spool=spool) for _ in range(4)]
        threads = [threading.Thread(target=s.flush) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(s.pending == 0 for s in senders)
    ids = [e["event_id"] for e in read_log(tmp_path / "t")]
    assert len(ids) == 30_000 and len(set(ids)) == 30_000
