"""A process killed with SIGKILL while recording leaves a readable folder missing at most ~1 interval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from waza.telemetry import TelemetryAnalyzer

CHILD = """
import sys, time
from waza.telemetry import RuntimeCollector

collector = RuntimeCollector(sys.argv[1], flush_interval=float(sys.argv[2]), redact=False)
n = 0
while True:
    sid = collector.start_session("p", session_id=f"s{n}")
    collector.record_event(sid, "tick", {"n": n})
    collector.end_session(sid)
    if n % 50 == 0:
        print(n, time.monotonic(), flush=True)
    n += 1
    time.sleep(0.0002)
"""


def test_kill_minus_nine(tmp_path: Path) -> None:
    """Every session recorded more than one flush interval before the kill is on disk."""
    interval = 0.2
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), str(interval)], stdout=subprocess.PIPE, text=True
    )
    progress: list[tuple[int, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        line = child.stdout.readline()
        number, moment = line.split()
        progress.append((int(number), float(moment)))
    os.kill(child.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    child.wait(timeout=30)

    # Allow the interval plus the writer's own time for its last batch.
    safe = [n for n, moment in progress if moment < killed_at - 2 * interval - 0.2]
    assert safe, "the child recorded nothing in time"
    report = TelemetryAnalyzer().analyze_file(tmp_path)
    on_disk = set()
    for path in tmp_path.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn last line, reported below
            on_disk.add(event["session_id"])
    assert all(f"s{n}" in on_disk for n in range(max(safe) + 1))
    assert report["total_sessions"] >= max(safe) + 1
    # Problems, if any, are torn last lines of a segment, never a whole unreadable file.
    for problem in report["input"]["problems"]:
        lines = Path(problem["path"]).read_text().splitlines()
        assert problem["line"] == len(lines)
