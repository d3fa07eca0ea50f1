"""RuntimeCollector: in memory, into a folder, from many threads, never raising into the host."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import read_log
from waza.cli import main
from waza.errors import UnknownSessionError
from waza.telemetry import RuntimeCollector


def test_end_session_returns_the_finished_session() -> None:
    """end_session returns the session with output, success, error and an end time."""
    collector = RuntimeCollector()
    sid = collector.start_session("p", {"user_id": "u"})
    collector.record_event(sid, "skill.invoked", skill_name="s")
    collector.record_event(sid, "tool.called", {"tool": "az"})
    session = collector.end_session(sid, "out", False, "boom")
    assert session is not None and session.end_time is not None
    assert (session.output, session.success, session.error) == ("out", False, "boom")
    assert (session.skill_name, session.tool_calls) == ("s", [{"tool": "az"}])
    assert collector.sessions == [session]


def test_unknown_session_is_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """Calls naming an unknown session are counted and logged once."""
    collector = RuntimeCollector()
    with caplog.at_level(logging.WARNING, logger="waza.telemetry"):
        for _ in range(3):
            collector.record_event("nope", "tool.called")
        assert collector.end_session("nope") is None
    assert collector.dropped == {"unknown_session": 4}
    assert len(caplog.records) == 1


def test_strict_collector_raises() -> None:
    """A strict collector raises on an unknown session id."""
    with pytest.raises(UnknownSessionError):
        RuntimeCollector(strict=True).record_event("nope", "tool.called")


def test_unserialisable_value_is_written_as_repr(tmp_path: Path) -> None:
    """A value JSON cannot hold is stored as its repr and counted; the event is kept."""
    with RuntimeCollector(tmp_path, redact=False) as collector:
        sid = collector.start_session("p")
        collector.record_event(sid, "custom", {"when": object, "n": 1})
        collector.end_session(sid)
    custom = [e for e in read_log(tmp_path) if e["event_type"] == "custom"]
    assert custom[0]["data"] == {"when": repr(object), "n": 1}
    assert collector.dropped == {"unserialisable_value": 1}


def test_nan_and_infinity_are_written_as_strict_json(tmp_path: Path) -> None:
    """NaN and infinities become null in the log (counted), and the JSON report holds no bare NaN."""
    with RuntimeCollector(tmp_path / "t", redact=False) as collector:
        sid = collector.start_session("p")
        collector.record_event(sid, "llm.request", {"model": "m", "tokens": {"input": 3}})
        collector.record_event(sid, "llm.response", {"model": "m", "latency_ms": float("nan")})
        collector.record_event(sid, "custom", {"scores": [1.5, float("inf"), -float("inf")]})
        collector.end_session(sid)
    refuse = {"parse_constant": lambda name: pytest.fail(f"bare {name} in the log")}
    lines = [
        json.loads(line, **refuse) for p in (tmp_path / "t").rglob("*.jsonl*") for line in gzip.open(p, "rt")
    ]
    assert [e["data"]["scores"] for e in lines if e["event_type"] == "custom"] == [[1.5, None, None]]
    assert collector.dropped == {"unserialisable_value": 2}
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "t"), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output, **refuse)["total_sessions"] == 1


def test_folder_log_reads_back_to_the_same_session(tmp_path: Path) -> None:
    """Events streamed to a folder fold back into the session end_session returned."""
    with RuntimeCollector(tmp_path) as collector:
        sid = collector.start_session("deploy", {"env": "prod"})
        collector.record_event(sid, "skill.invoked", skill_name="azure-deploy")
        collector.record_event(sid, "tool.called", {"tool": "az", "args": ["x"]})
        finished = collector.end_session(sid, "done", True)
    (loaded,) = RuntimeCollector.load_from_file(tmp_path)
    assert loaded.to_dict() == finished.to_dict()
    partition = {p.parent.name for p in tmp_path.rglob("*.jsonl.gz")}
    assert partition == {f"date={finished.start_time.date().isoformat()}"}


def test_flush_makes_records_visible(tmp_path: Path) -> None:
    """After flush() every event recorded before it is in the files."""
    collector = RuntimeCollector(tmp_path, flush_interval=60)
    sid = collector.start_session("p")
    for n in range(100):
        collector.record_event(sid, "tick", {"n": n})
    assert collector.flush(timeout=10)
    assert len(read_log(tmp_path)) == 101
    collector.close()


def test_records_after_close_are_counted(tmp_path: Path) -> None:
    """A closed collector drops new records and says so."""
    collector = RuntimeCollector(tmp_path)
    collector.close()
    collector.start_session("late")
    assert collector.dropped == {"after_shutdown": 1}


def test_sixteen_threads_lose_nothing(tmp_path: Path) -> None:
    """16 threads x 10,000 events into one folder collector: every line whole, none lost."""
    # 160,000 events at once outrun any writer; a long flush interval lets them all queue
    # (with the default, what exceeds one interval of writing is dropped and counted).
    collector = RuntimeCollector(tmp_path, flush_interval=30)
    threads_count, per_thread = 16, 10_000

    def work(worker: int) -> None:
        sid = collector.start_session(f"worker {worker}", session_id=f"w{worker}")
        for n in range(per_thread):
            collector.record_event(sid, "tick", {"worker": worker, "n": n})
        collector.end_session(sid)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    collector.close()

    seen: dict[int, list[int]] = {w: [] for w in range(threads_count)}
    for event in read_log(tmp_path):  # json.loads fails on any torn line
        if event["event_type"] == "tick":
            seen[event["data"]["worker"]].append(event["data"]["n"])
    assert all(ns == list(range(per_thread)) for ns in seen.values())
    assert collector.dropped == {}


def test_interpreter_exit_flushes(tmp_path: Path) -> None:
    """A process that never calls close() still leaves every event on disk."""
    script = (
        "from waza.telemetry import RuntimeCollector\n"
        f"c = RuntimeCollector({str(tmp_path)!r}, flush_interval=60)\n"
        "s = c.start_session('p')\n"
        "for n in range(500): c.record_event(s, 'tick', {'n': n})\n"
        "c.end_session(s)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert len(read_log(tmp_path)) == 502
