"""A collector made before a fork (Gunicorn --preload, Celery prefork, multiprocessing) works in children."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import read_log
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer


def record(collector: RuntimeCollector, prefix: str, count: int) -> None:
    for n in range(count):
        with collector.session(f"Deploy app-{n}", session_id=f"{prefix}-{n}", skill_name="azure-deploy") as s:
            with s.tool("az", args=["webapp", "up"]):
                pass


def child(collector: RuntimeCollector, number: int) -> None:
    record(collector, f"child{number}", 200)  # and return without closing: multiprocessing skips atexit


def test_forked_children_lose_nothing_and_write_their_own_segments(tmp_path: Path) -> None:
    """3 children x 200 sessions and the parent's own all reach the folder once, in segments per pid."""
    collector = RuntimeCollector(tmp_path / "t", flush_interval=5)
    record(collector, "before", 10)  # queued in the parent at the fork: written by the parent alone
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=child, args=(collector, n)) for n in range(3)]
    for process in children:
        process.start()
    for process in children:
        process.join(60)
        assert process.exitcode == 0
    record(collector, "after", 10)
    collector.close()

    ids = [e["session_id"] for e in read_log(tmp_path / "t") if e["event_type"] == "session.ended"]
    expected = {f"child{c}-{n}" for c in range(3) for n in range(200)} | {
        f"{when}-{n}" for when in ("before", "after") for n in range(10)
    }
    assert sorted(ids) == sorted(expected)  # each once
    pids = {
        re.search(r"part-.*?-(\d+)-\d+-\d+\.jsonl", p.name).group(1) for p in (tmp_path / "t").rglob("part-*")
    }
    assert {str(p.pid) for p in children} | {str(os.getpid())} == pids
    assert TelemetryAnalyzer().analyze_file(tmp_path / "t")["total_sessions"] == 620


FORK = """
import os, sys
from waza.telemetry import RuntimeCollector

collector = RuntimeCollector(sys.argv[1])
pid = os.fork()
if pid == 0:
    sid = collector.start_session("in the child", session_id="child")
    collector.end_session(sid)
    done = collector.flush()  # no timeout: returns once the child's writer wrote it
    print("flushed", done, collector.dropped, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
collector.close()
"""


def test_flush_in_a_forked_child_returns(tmp_path: Path) -> None:
    """flush() without a timeout returns in a child of os.fork, with the child's session on disk."""
    result = subprocess.run(
        [sys.executable, "-c", FORK, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert "flushed True {}" in result.stdout, result.stdout + result.stderr
    assert [e["session_id"] for e in read_log(tmp_path)] == ["child", "child"]
