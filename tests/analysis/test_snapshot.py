"""Analysis while segments roll, compress and compact under it: every run reads a whole, consistent folder."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from waza.engine.compaction import compact
from waza.engine.snapshot import Snapshot
from waza.model import TelemetryEvent
from waza.store.sources import discover
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
        # At least least_runs however slow the first (a JVM starting), then as many as time allows.
        while len(runs) < least_runs or (time.monotonic() - started < seconds and len(runs) < 15):
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
    assert runs[-1][1] > runs[0][1]
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


def test_files_moving_at_any_moment_of_the_listing_are_counted_once(tmp_path: Path) -> None:
    """Segments are compressed and compacted at every moment of an analysis's listing and reading
    in turn: each time, every session is counted, once."""
    store = tmp_path / "store"
    ids = _store_with_every_stage(store)
    listed = _entries_listed(store, lambda: None)
    assert listed > 10
    for moment in range(listed + 1):
        folder = tmp_path / f"at-{moment}"
        shutil.copytree(store, folder)

        def move(folder: Path = folder) -> None:
            for segment in folder.rglob("part-*.jsonl"):
                _compress(segment)
            compact(folder)

        report = _analysed_moving_at(folder, moment, move)
        assert (report["total_sessions"], report["completed_sessions"]) == (len(ids), len(ids)), moment


def _store_with_every_stage(folder: Path) -> set[str]:
    """A store with compacted Parquet, a compressed segment and a closed one not yet compressed,
    and a session whose events lie in all three; the ids of its sessions."""
    ids: set[str] = set()
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    spanning = ("session.started", "tool.called", "session.ended")
    for stage in range(3):
        events = []
        for n in range(4):
            sid = f"{stage}-{n}"
            events += [
                TelemetryEvent(day, "session.started", "azure-deploy", {}, sid, f"{sid}-a"),
                TelemetryEvent(day, "tool.called", None, {"tool": "az"}, sid, f"{sid}-b"),
                TelemetryEvent(day, "session.ended", None, {"success": True}, sid, f"{sid}-c"),
            ]
            ids.add(sid)
        events.append(TelemetryEvent(day, spanning[stage], "azure-deploy", {}, "spanning", f"span-{stage}"))
        ids.add("spanning")
        day += timedelta(minutes=1)
        segment = folder / f"date={day:%Y-%m-%d}" / f"part-test-{stage}.jsonl"
        segment.parent.mkdir(parents=True, exist_ok=True)
        segment.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events), encoding="utf-8")
        if stage < 2:
            _compress(segment)
        if stage == 0:
            compact(folder)
    return ids


def _compress(segment: Path) -> None:
    """As a writer closing a segment does: the compressed file first, then the plain one goes."""
    packed = segment.with_name(segment.name + ".gz")
    staged = segment.with_name(f".{packed.name}.tmp")
    staged.write_bytes(gzip.compress(segment.read_bytes()))
    os.replace(staged, packed)
    segment.unlink()


def _entries_listed(folder: Path, move) -> int:
    with _moving(folder, None, move) as counter:
        TelemetryAnalyzer(strict=True).analyze_paths([folder])
    return counter[0]


def _analysed_moving_at(folder: Path, moment: int, move) -> dict:
    with _moving(folder, moment, move):
        return TelemetryAnalyzer(strict=True).analyze_paths([folder])


@contextlib.contextmanager
def _moving(folder: Path, moment: int | None, move):
    """Run ``move`` once, after the ``moment``-th entry any listing of ``folder`` yields; yields
    the count of entries listed."""
    real = os.scandir
    counter = [0]
    moving = [False]

    class Listing:
        def __init__(self, entries) -> None:
            self._entries = entries

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self._entries.close()

        def close(self) -> None:
            self._entries.close()

        def __iter__(self):
            return self

        def __next__(self):
            if counter[0] == moment and not moving[0]:
                moving[0] = True
                move()
            entry = next(self._entries)
            counter[0] += 1
            return entry

    def scandir(path="."):
        entries = real(path)
        inside = not isinstance(path, int) and Path(path).is_relative_to(folder)
        return Listing(entries) if inside and not moving[0] else entries

    os.scandir = scandir
    try:
        yield counter
    finally:
        os.scandir = real


def test_a_log_written_minutes_ago_is_linked_but_for_each_writers_last_segment(tmp_path: Path) -> None:
    """Reading a plain log just written copies only the segment each writer may still append to
    (its last of the day): the rest is linked, so analysing a large fresh log needs no second copy
    of it on disk. Lines appended to the last segment after listing are not read."""
    folder = tmp_path / "t"
    writers = []
    for _ in range(2):  # two writers, told apart by their start time in the segment names
        sink = FolderSink(folder, segment_bytes=4096, compress=False)
        collector = RuntimeCollector(sink=sink, redact=False)
        for n in range(60):
            with collector.session(f"prompt {n}", skill_name="azure-deploy") as s:
                s.event("tool.called", {"tool": "az"})
        collector.flush()
        writers.append((collector, sink))
        time.sleep(0.002)
    segments = sorted(folder.glob("date=*/part-*.jsonl"))
    last = {max(p for p in segments if p.name.startswith(prefix)) for prefix in _writer_prefixes(segments)}
    assert len(last) == 2 and len(segments) > 10

    sources, _ = discover([folder])
    before = {p: p.read_bytes() for p in last}
    snapshot = Snapshot()
    try:
        pinned = {s.path: pin.path for s, pin in zip(sources, snapshot.pin(sources), strict=True)}
        assert {p for p, pin in pinned.items() if not pin.samefile(p)} == last  # copied, not linked
        for segment in last:
            with open(segment, "a", encoding="utf-8") as out:
                out.write('{"appended": "after listing"}\n')
            assert pinned[segment].read_bytes() == before[segment]
    finally:
        snapshot.release()
        for collector, _ in writers:
            collector.close()
    report = TelemetryAnalyzer().analyze_paths([folder])
    assert report["total_sessions"] == 120


def _writer_prefixes(segments: list[Path]) -> set[str]:
    """part-<host>-<pid>-<start>- of each writer, from the names (the sequence is last)."""
    return {p.name.rsplit("-", 1)[0] + "-" for p in segments}
