"""Bounded memory: caps on open sessions, events and values; what is cut is counted and shown."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import read_log
from waza.capture.limits import Limits
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer

RUN = """
import resource, sys
from waza.capture.limits import Limits
from waza.telemetry import RuntimeCollector

# Records come far faster than a disk takes them; a long flush interval lets the
# backlog between flushes queue instead of being dropped (see the writer's limit).
limits = Limits(max_open_sessions=1000, max_events_per_session=20)
collector = RuntimeCollector(sys.argv[1], limits=limits, flush_interval=30)
peaks = []
for n in range(200_000):
    sid = collector.start_session("prompt " * 20, {"n": n})
    for k in range(30 if n % 100 == 0 else 3):
        collector.record_event(sid, "tool.called", {"tool": "az", "k": k})
    if n % 4:  # every fourth session is left open
        collector.end_session(sid, "ok " * 20, True)
    if n % 20_000 == 19_999:
        collector.flush()
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
collector.close()
print(*peaks)
dropped = collector.dropped
print(dropped.get("abandoned_open_session_limit", 0), dropped.get("abandoned_shutdown", 0))
"""


def test_many_open_sessions_stay_bounded(tmp_path: Path) -> None:
    """200,000 sessions under a cap of 1,000 open: memory stops growing; analysis shows every cut."""
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(tmp_path)], capture_output=True, text=True, timeout=600, check=True
    )
    peaks_line, counts_line = result.stdout.strip().splitlines()
    peaks = [int(p) for p in peaks_line.split()]
    # After the cap is reached, peak memory stays flat: the last half adds under 10%.
    assert peaks[-1] <= peaks[len(peaks) // 2] * 1.10
    by_limit, at_shutdown = (int(x) for x in counts_line.split())
    assert by_limit + at_shutdown == 50_000  # every session left open was abandoned
    assert at_shutdown <= 1000

    report = TelemetryAnalyzer().analyze_file(tmp_path)
    assert report["total_sessions"] == 200_000
    assert report["incomplete_sessions"] == report["abandoned_sessions"] == 50_000
    assert report["cut"]["events_dropped"] == 2_000 * (30 - 20)


def test_long_values_are_cut_and_counted(tmp_path: Path) -> None:
    """A value longer than the cap is truncated and the cut is marked on the session."""
    with RuntimeCollector(tmp_path, limits=Limits(max_value_chars=100)) as collector:
        sid = collector.start_session("p" * 500)
        collector.record_event(sid, "x", {"blob": "b" * 1000, "short": "s"})
        collector.end_session(sid, "o" * 50)
    started, event, ended = read_log(tmp_path)
    assert (
        started["data"]["prompt"].startswith("p" * 100) and "TRUNCATED 400 chars" in started["data"]["prompt"]
    )
    assert event["data"]["short"] == "s" and len(event["data"]["blob"]) < 150
    assert ended["data"]["limits"] == {"values_truncated": 2}
    assert TelemetryAnalyzer().analyze_file(tmp_path)["cut"]["values_truncated"] == 2


def test_idle_sessions_are_abandoned(tmp_path: Path) -> None:
    """A session idle past the timeout is ended as abandoned, and later calls on it are counted."""
    with RuntimeCollector(tmp_path, limits=Limits(idle_timeout=0.05)) as collector:
        idle = collector.start_session("idle")
        time.sleep(0.1)
        assert collector.abandon_idle() == 1
        collector.record_event(idle, "late")
    assert collector.dropped == {"abandoned_idle_timeout": 1, "unknown_session": 1}
    kinds = [e["event_type"] for e in read_log(tmp_path)]
    assert kinds == ["session.started", "session.abandoned"]
    report = TelemetryAnalyzer().analyze_file(tmp_path)
    assert (report["incomplete_sessions"], report["abandoned_sessions"]) == (1, 1)
