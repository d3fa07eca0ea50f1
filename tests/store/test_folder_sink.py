"""The folder sink: rotation, gzip on close, retention, and surviving a broken disk."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import fill, read_log
from waza.cli import main
from waza.store import folder_sink
from waza.store.compacted import LOCK
from waza.telemetry import FolderSink, RuntimeCollector


def record(collector: RuntimeCollector, count: int, start: int = 0, *, noise: bool = False) -> None:
    """Events of ~250 bytes; with ``noise`` their padding is random, which gzip cannot shrink."""
    sid = collector.start_session("p")
    for n in range(start, start + count):
        collector.record_event(sid, "tick", {"n": n, "pad": os.urandom(100).hex() if noise else "x" * 200})
    collector.end_session(sid)


def ticks(folder: Path) -> list[int]:
    return [e["data"]["n"] for e in read_log(folder) if e["event_type"] == "tick"]


def test_segments_rotate_by_size_and_close_as_gzip(tmp_path: Path) -> None:
    """Small segments roll over; every closed one is gzip; no line is lost or doubled."""
    with RuntimeCollector(sink=FolderSink(tmp_path, segment_bytes=20_000), flush_interval=0.05) as collector:
        record(collector, 2000)
    segments = sorted(tmp_path.rglob("part-*"))
    assert len(segments) > 10
    assert all(p.name.endswith(".jsonl.gz") for p in segments)
    assert sorted(ticks(tmp_path)) == list(range(2000))


def test_segments_rotate_by_age(tmp_path: Path) -> None:
    """A segment older than segment_seconds is closed at the next write."""
    collector = RuntimeCollector(sink=FolderSink(tmp_path, segment_seconds=0.05))
    record(collector, 10)
    collector.flush()
    time.sleep(0.1)
    record(collector, 10, start=10)
    collector.flush()
    assert len(list(tmp_path.rglob("*.jsonl.gz"))) >= 1
    collector.close()
    assert sorted(ticks(tmp_path)) == list(range(20))


def test_retention_deletes_old_partitions(tmp_path: Path) -> None:
    """With retention_days, partitions older than the limit go when a segment closes."""
    today = datetime.now(UTC).date()
    old = tmp_path / f"date={today - timedelta(days=40)}"
    recent = tmp_path / f"date={today - timedelta(days=3)}"
    for folder in (old, recent):
        folder.mkdir()
        (folder / "part-x.jsonl").write_text("")
    with RuntimeCollector(sink=FolderSink(tmp_path, retention_days=30)) as collector:
        record(collector, 5)
    assert not old.exists() and recent.exists()


def test_prune_command(tmp_path: Path) -> None:
    """waza prune lists with --dry-run, deletes without it, and never touches other folders."""
    today = datetime.now(UTC).date()
    old = tmp_path / f"date={today - timedelta(days=31)}"
    keep = tmp_path / f"date={today - timedelta(days=29)}"
    other = tmp_path / "notes"
    for folder in (old, keep, other):
        folder.mkdir()
    runner = CliRunner()
    dry = runner.invoke(main, ["prune", str(tmp_path), "--older-than", "30d", "--dry-run"])
    assert dry.exit_code == 0 and old.name in dry.output and old.exists()
    done = runner.invoke(main, ["prune", str(tmp_path), "--older-than", "30d"])
    assert done.exit_code == 0 and not old.exists() and keep.exists() and other.exists()
    assert runner.invoke(main, ["prune", str(tmp_path), "--older-than", "soon"]).exit_code == 2


def test_deleted_folder_is_recreated(tmp_path: Path) -> None:
    """Deleting the folder under a running collector does not raise; later events land anew."""
    folder = tmp_path / "t"
    collector = RuntimeCollector(folder)
    record(collector, 5)
    collector.flush()
    shutil.rmtree(folder)
    record(collector, 5, start=5)
    collector.close()
    assert sorted(ticks(folder)) == [5, 6, 7, 8, 9]


def test_full_disk_is_retried_without_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """While writes fail with ENOSPC nothing raises; once space is back every event is written once."""
    real_write = os.write
    disk_full = True

    def failing_write(fd: int, data: bytes) -> int:
        if disk_full:
            real_write(fd, bytes(data)[: len(data) // 2])  # a partial write, then the error
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(folder_sink.os, "write", failing_write)
    collector = RuntimeCollector(tmp_path, flush_interval=0.02)
    with caplog.at_level(logging.WARNING, logger="waza.telemetry"):
        record(collector, 300)
        assert collector.flush(timeout=2) is False  # the lines wait for room: not stored yet
        disk_full = False
        record(collector, 300, start=300)
        assert collector.flush(timeout=5) is True
        collector.close()
    assert sorted(ticks(tmp_path)) == list(range(600))
    assert any("will retry" in message for message in caplog.messages)


def test_a_segment_that_cannot_be_compressed_at_close_is_still_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk full just when close() compresses the last segment: its lines are already durable, so
    close() says everything is stored, and the plain segment is read back whole."""

    def no_room(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folder_sink, "_compress", no_room)
    collector = RuntimeCollector(tmp_path, flush_interval=0.02)
    record(collector, 50)
    assert collector.close() is True
    assert list(tmp_path.rglob("*.jsonl")) and not list(tmp_path.rglob("*.gz"))
    assert sorted(ticks(tmp_path)) == list(range(50))


def test_a_real_full_disk_loses_and_doubles_nothing(small_disk: Path) -> None:
    """Writes, rollovers and compression failing with ENOSPC on a full file system: once space is back,
    every event is stored once, no empty segment or temporary file is left, and --strict reads it all."""
    folder = small_disk / "t"
    sink = FolderSink(folder, segment_bytes=64 * 1024)
    collector = RuntimeCollector(sink=sink, flush_interval=0.02, redact=False)
    record(collector, 100)
    assert collector.flush(timeout=5)
    filler = fill(small_disk)
    # Room for a segment's lines but not for its compressed copy too: a segment fills,
    # then compressing it at rollover fails after its lines were stored.
    os.truncate(filler, filler.stat().st_size - 50 * 1024)
    record(collector, 400, start=100, noise=True)  # ~100 KB
    time.sleep(0.5)  # the writer retries against the full disk
    filler.unlink()
    record(collector, 300, start=500)
    collector.close()

    assert sorted(ticks(folder)) == list(range(800))  # all, and each once
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != LOCK]  # the lock holds no data
    assert not [p for p in files if p.stat().st_size == 0 or p.name.endswith(".tmp")], files
    result = CliRunner().invoke(main, ["analyze", str(folder), "--strict", "--format", "json"])
    assert result.exit_code == 0, result.output


def test_prune_counts_ages_exactly(tmp_path: Path) -> None:
    """With 12h, yesterday's partition stays until noon today (its day ended at midnight) and goes after."""
    from waza.store.retention import prune

    today = datetime(2026, 11, 27, tzinfo=UTC)
    yesterday = tmp_path / "date=2026-11-26"
    yesterday.mkdir()
    morning, afternoon = today + timedelta(hours=7, minutes=30), today + timedelta(hours=12, minutes=1)
    assert prune(tmp_path, timedelta(hours=12), now=morning) == [] and yesterday.exists()
    assert prune(tmp_path, timedelta(minutes=15), dry_run=True, now=morning) == [yesterday]
    assert prune(tmp_path, timedelta(hours=12), now=afternoon) == [yesterday] and not yesterday.exists()


def test_closing_on_a_full_disk_waits_for_room(small_disk: Path) -> None:
    """close() while the disk is full keeps retrying for a while: room made meanwhile loses nothing,
    and close() says whether everything was stored."""
    collector = RuntimeCollector(small_disk / "t", flush_interval=0.02, redact=False)
    filler = fill(small_disk)
    record(collector, 200)
    threading.Timer(0.5, filler.unlink).start()
    assert collector.close() is True
    assert sorted(ticks(small_disk / "t")) == list(range(200)) and collector.dropped == {}
