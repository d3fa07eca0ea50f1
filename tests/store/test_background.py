"""Compaction in the background, beside writers, prune and analysis: every session once, and a
compaction killed at any moment changes no figure."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from tests.store.test_compaction import figures
from waza.cli import main
from waza.engine.compaction import compact
from waza.sample import write_sample
from waza.store.compacted import MANIFEST_SUFFIX
from waza.store.reader import load_sessions
from waza.store.retention import prune
from waza.telemetry import FolderSink, RuntimeCollector, TelemetryAnalyzer

TOOLS = 2


def test_writers_compacting_in_the_background_with_prune_and_analysis(tmp_path: Path) -> None:
    """Three collectors roll segments every 0.2 s, each compacting what it closes in a child process;
    prune and strict analyses loop meanwhile. No analysis fails or counts a session twice, and at
    the end every session written is there once, with its tool calls, and the old day is gone."""
    folder = tmp_path / "t"
    old_end = datetime.now(UTC) - timedelta(days=40)
    write_sample(folder, 50, seed=3, days=1, end=old_end, compress=True)  # a day prune removes
    stop = threading.Event()
    written: dict[str, list[str]] = {}
    sinks = []

    def write(name: str) -> None:
        sink = FolderSink(folder, segment_seconds=0.2, compact=True)
        sinks.append(sink)
        collector = RuntimeCollector(sink=sink, flush_interval=0.02, redact=False)
        ids = written.setdefault(name, [])
        while not stop.is_set():
            ids.append(f"{name}-{len(ids)}")
            with collector.session("Deploy app-1", session_id=ids[-1], skill_name="azure-deploy") as s:
                for _ in range(TOOLS):
                    with s.tool("az"):
                        pass
            time.sleep(0.002)
        assert collector.close()

    def prune_forever() -> None:
        while not stop.is_set():
            prune(folder, timedelta(days=30))
            time.sleep(0.2)

    workers = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(3)]
    workers.append(threading.Thread(target=prune_forever))
    for worker in workers:
        worker.start()
    counts = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < 6:
            report = TelemetryAnalyzer(strict=True).analyze_paths([folder])
            tools = sum(t["calls"] for t in report["tools"])
            assert tools == report["metrics"]["total_tool_calls"]
            counts.append((report["total_sessions"], tools, sum(map(len, written.values())) + 50 + 3))
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    for sink in sinks:
        assert sink.compaction.wait(60)
    assert len(counts) >= 3
    for total, tools, at_most in counts:  # never more than written (+ 3 being recorded)
        assert total <= at_most and tools <= TOOLS * at_most

    every = sorted(i for ids in written.values() for i in ids)
    assert list(folder.glob("compacted/date=*/*.parquet")), "nothing was compacted in the background"
    sessions, problems = load_sessions([folder])
    assert problems == [] and sorted(s.session_id for s in sessions) == every
    assert all(len(s.tool_calls) == TOOLS for s in sessions)
    report = TelemetryAnalyzer().analyze_paths([folder])
    assert report["total_sessions"] == len(every) and report["metrics"]["total_tool_calls"] == TOOLS * len(
        every
    )


def test_a_compaction_killed_at_any_moment_changes_no_figure(tmp_path: Path) -> None:
    """`waza compact` killed with SIGKILL at moments through its run: the figures stay those of
    before, the next run cleans up what the killed one left and compacts all."""
    folder = tmp_path / "t"
    write_sample(folder, 20_000, seed=11, days=3, compress=True)
    before = figures(folder)
    killed_mid_way = 0
    for delay in (0.5, 0.9, 1.3, 1.7, 2.1, 2.5, 2.9, 3.3):
        child = subprocess.Popen(
            [sys.executable, "-m", "waza", "compact", str(folder)], stdout=subprocess.DEVNULL
        )
        time.sleep(delay)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            killed_mid_way += 1
        child.wait()
        assert figures(folder) == before, f"killed after {delay} s"
        if child.returncode == 0:
            break
    assert killed_mid_way >= 2
    compact(folder)
    assert figures(folder) == before
    assert not list(folder.glob("date=*/part-*"))
    for day in folder.glob("compacted/date=*"):  # only committed files remain: a manifest for each
        committed = {m.name[: -len(MANIFEST_SUFFIX)] for m in day.glob(f"*{MANIFEST_SUFFIX}")}
        for name in (p.name for p in day.iterdir() if not p.name.endswith(MANIFEST_SUFFIX)):
            digest = name.removesuffix(".parquet").split("-", 1)[1]  # events-, sessions-, details-<digest>
            assert f"events-{digest}" in committed, name


def test_two_compactions_at_once_take_turns(tmp_path: Path) -> None:
    """Compactions started together on one store each see the other's commits: every segment is
    compacted once, and the figures stay."""
    folder = tmp_path / "t"
    write_sample(folder, 3000, seed=5, days=2, compress=True)
    before = figures(folder)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "waza", "compact", str(folder)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [child.communicate()[0] for child in children]
    assert all(child.returncode == 0 for child in children)
    compacted = [int(out.split()[1]) for out in outputs]  # "Compacted N segment(s), ..."
    assert sum(compacted) == 2 and sorted(compacted) == [0, 0, 2]
    assert figures(folder) == before


def test_compact_watch_keeps_compacting(tmp_path: Path) -> None:
    """`waza compact --watch 1s` compacts segments closed after it started, until stopped."""
    folder = tmp_path / "t"
    folder.mkdir()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "waza", "compact", str(folder), "--watch", "1s"], stdout=subprocess.DEVNULL
    )
    try:
        with RuntimeCollector(sink=FolderSink(folder, compact=False)) as collector:
            with collector.session("Deploy app-1", skill_name="azure-deploy") as s:
                s.event("tool.called", {"tool": "az"})
        deadline = time.monotonic() + 30
        while list(folder.glob("date=*/part-*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not list(folder.glob("date=*/part-*")) and list(folder.glob("compacted/date=*/*.parquet"))
        assert watcher.poll() is None
    finally:
        watcher.terminate()
        watcher.wait()
    assert TelemetryAnalyzer().analyze_file(folder)["total_sessions"] == 1


def test_watch_takes_an_interval(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compact", str(tmp_path), "--watch", "often"])
    assert result.exit_code == 2 and "is not an age" in result.output


def test_writers_compact_unless_told_not_to(tmp_path: Path, monkeypatch) -> None:
    """Background compaction is on by default; WAZA_COMPACTION=off, or compact=False, turns it off."""
    monkeypatch.delenv("WAZA_COMPACTION", raising=False)
    assert FolderSink(tmp_path).compaction is not None
    assert FolderSink(tmp_path, compact=False).compaction is None
    monkeypatch.setenv("WAZA_COMPACTION", "off")
    assert FolderSink(tmp_path).compaction is None
    assert FolderSink(tmp_path, compact=True).compaction is not None


def test_closed_segments_are_compressed_beside_the_writer_and_all_of_them_by_shutdown(
    tmp_path: Path, monkeypatch
) -> None:
    """A writer hands a closed segment over and goes on writing while it is compressed; shutdown
    compresses what still waits. Every line is read back once, and no plain segment is left."""
    from waza.store import folder_sink

    released = threading.Event()
    compress = folder_sink._compress

    def held_compress(path: Path) -> None:  # the first segment's compression waits to be released
        released.wait(60)
        compress(path)

    monkeypatch.setattr(folder_sink, "_compress", held_compress)
    folder = tmp_path / "t"
    sink = FolderSink(folder, segment_bytes=4096, compact=True)
    day, lines = _tool_calls(400)
    for line in lines:
        sink.append([(day, line)])
    # Written past many closes while none could be compressed: the writer waited for none.
    assert not released.is_set() and len(list(folder.glob("date=*/part-*.jsonl"))) > 5
    released.set()
    sink.shutdown()
    assert not list(folder.glob("date=*/part-*.jsonl")) and list(folder.glob("date=*/part-*.jsonl.gz"))
    assert sink.compaction is not None and sink.compaction.wait(60)
    sessions, problems = load_sessions([folder])
    assert problems == [] and sorted(s.session_id for s in sessions) == sorted(f"s{n}" for n in range(400))


def test_segments_a_full_disk_kept_from_compression_are_compressed_once_it_has_room(
    tmp_path: Path, monkeypatch
) -> None:
    """Compression that fails for want of room leaves the plain segment whole, and is tried again at the
    next close and at shutdown: no closed segment stays plain, so compaction takes every one."""
    from waza.store import folder_sink

    compress = folder_sink._compress
    room = threading.Event()
    refused: list[str] = []

    def full_disk(path: Path) -> None:
        if not room.is_set():
            refused.append(path.name)
            raise OSError(errno.ENOSPC, "No space left on device")
        compress(path)

    monkeypatch.setattr(folder_sink, "_compress", full_disk)
    folder = tmp_path / "t"
    sink = FolderSink(folder, segment_bytes=4096, compact=True)
    day, lines = _tool_calls(400)
    for line in lines[:200]:
        sink.append([(day, line)])
    assert sink.compaction is not None and sink.compaction.wait(60)
    assert refused and all((folder / f"date={day}" / name).exists() for name in refused)
    room.set()
    for line in lines[200:]:
        sink.append([(day, line)])
    sink.shutdown()
    assert not list(folder.glob("date=*/part-*.jsonl"))
    assert sink.compaction.wait(60)
    sessions, problems = load_sessions([folder])
    assert problems == [] and sorted(s.session_id for s in sessions) == sorted(f"s{n}" for n in range(400))


def _tool_calls(sessions: int) -> tuple[date, list[bytes]]:
    """Today, and a line of one tool call for each of that many sessions, s0, s1, ..."""
    day = datetime.now(UTC).date()
    lines = [
        f'{{"timestamp":"{day}T10:00:00+00:00","event_type":"tool.called","session_id":"s{n}",'
        f'"data":{{"tool":"az","n":{n}}},"event_id":"e{n}"}}'.encode()
        for n in range(sessions)
    ]
    return day, lines
