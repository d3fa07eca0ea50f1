"""Analysis while segments roll, compress and compact under it: every run reads a whole, consistent folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from waza.store.compaction import compact
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer


def test_strict_analysis_during_writes_and_compaction_never_fails_or_miscounts(tmp_path: Path) -> None:
    """Each --strict run, with --details, counts at least every session flushed before it and never
    more than were written, while a collector rolls segments every 0.3 s and compaction loops."""
    folder = tmp_path / "t"
    collector = RuntimeCollector(folder, segment_seconds=0.3, flush_interval=0.02, redact=False)
    stop = threading.Event()
    ended = [0]

    def write() -> None:
        n = 0
        while not stop.is_set():
            with collector.session(f"prompt {n}", session_id=f"s{n}", skill_name="azure-deploy") as s:
                s.event("tool.called", {"tool": "az"})
            n += 1
            ended[0] = n
            time.sleep(0.0005)

    def compact_forever() -> None:
        while not stop.is_set():
            compact(folder)
            time.sleep(0.1)

    workers = [threading.Thread(target=write), threading.Thread(target=compact_forever)]
    for worker in workers:
        worker.start()
    runs = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < 6 and len(runs) < 15:
            at_least = ended[0]  # sessions ended before the flush are on disk after it
            collector.flush()
            report = TelemetryAnalyzer(strict=True).analyze_paths([folder], details=True)
            at_most = ended[0] + 1  # the session being recorded may be counted, incomplete
            runs.append((at_least, report["completed_sessions"], report["total_sessions"], at_most))
            tools = sum(t["calls"] for t in report["tools"])
            assert tools == report["metrics"]["total_tool_calls"] == report["total_sessions"]
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        collector.close()
    assert len(runs) >= 5 and runs[-1][1] > runs[0][1]
    for at_least, completed, total, at_most in runs:
        assert at_least <= completed <= total <= at_most, runs
