"""Analysis while segments roll, compress and compact under it: every run reads a whole, consistent folder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from waza.engine.compaction import compact
from waza.telemetry import FolderSink, RuntimeCollector, TelemetryAnalyzer


# Spark takes seconds per run: fewer runs, and a writer that leaves it some CPU.
@pytest.mark.parametrize(
    "engine, seconds, least_runs, pause", [("duckdb", 6, 5, 0.0005), ("spark", 30, 2, 0.005)]
)
def test_strict_analysis_during_writes_and_compaction_never_fails_or_miscounts(
    tmp_path: Path, engine: str, seconds: float, least_runs: int, pause: float
) -> None:
    """Each --strict run, with --details, counts at least every session flushed before it and never
    more than were written, while a collector rolls segments every 0.3 s and compaction loops."""
    folder = tmp_path / "t"
    sink = FolderSink(folder, segment_seconds=0.3, compact=False)  # compaction loops below
    collector = RuntimeCollector(sink=sink, flush_interval=0.02, redact=False)
    stop = threading.Event()
    ended = [0]

    def write() -> None:
        n = 0
        while not stop.is_set():
            with collector.session(f"prompt {n}", session_id=f"s{n}", skill_name="azure-deploy") as s:
                s.event("tool.called", {"tool": "az"})
            n += 1
            ended[0] = n
            time.sleep(pause)

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
        while time.monotonic() - started < seconds and len(runs) < 15:
            at_least = ended[0]  # sessions ended before the flush are on disk after it
            collector.flush()
            report = TelemetryAnalyzer(strict=True, engine=engine).analyze_paths([folder])
            at_most = ended[0] + 1  # the session being recorded may be counted, incomplete
            runs.append((at_least, report["completed_sessions"], report["total_sessions"], at_most))
            tools = sum(t["calls"] for t in report["tools"])
            assert tools == report["metrics"]["total_tool_calls"] == report["total_sessions"]
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        collector.close()
    assert len(runs) >= least_runs and runs[-1][1] > runs[0][1]
    assert not list(folder.rglob(".waza-snapshot-*"))  # what an analysis pinned goes with it
    for at_least, completed, total, at_most in runs:
        assert at_least <= completed <= total <= at_most, runs


def test_links_left_by_a_killed_analysis_are_removed_by_the_next(tmp_path: Path) -> None:
    """A Spark analysis killed mid-way leaves its hidden links; they are never counted, and the
    next analysis removes them."""
    folder = tmp_path / "t"
    with RuntimeCollector(folder, redact=False) as collector:
        for n in range(5):
            with collector.session(f"prompt {n}", skill_name="azure-deploy"):
                pass
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (partition,) = folder.glob("date=*")
    abandoned = partition / f".waza-snapshot-{child.stdout.strip()}-0000"  # its process is gone
    abandoned.mkdir()
    for segment in partition.glob("part-*"):
        os.link(segment, abandoned / segment.name)
    report = TelemetryAnalyzer(engine="spark").analyze_paths([folder])
    assert report["total_sessions"] == 5
    assert not abandoned.exists()
