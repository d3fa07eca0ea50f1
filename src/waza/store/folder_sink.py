"""Appends serialised events to day-partitioned JSONL segments in a telemetry folder."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from waza.store.background import BackgroundCompaction, background_compaction_wanted
from waza.store.layout import partition_name, segment_name, writer_tag
from waza.store.retention import prune

log = logging.getLogger("waza.telemetry")

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_SEGMENT_SECONDS = 15 * 60


class PartialWrite(OSError):
    """Storing a batch failed after its first ``stored`` lines were stored."""

    def __init__(self, error: OSError, stored: int):
        super().__init__(error.errno, f"{error.strerror or error} (after {stored:,} lines were stored)")
        self.stored = stored


@dataclass
class _Segment:
    path: Path
    fd: int
    size: int
    opened: float


class FolderSink:
    """Writes lines into ``<dir>/date=YYYY-MM-DD/part-<host>-<pid>-<start>-<seq>.jsonl``.

    One writer owns a sink; segment names are unique per process, so writers
    never share a file. A segment is closed when it reaches ``segment_bytes`` or
    ``segment_seconds``, or at shutdown; a closed segment is compressed to
    ``.jsonl.gz`` (readers prefer the ``.gz`` when a crash left both) and
    compacted to Parquet, both in the background (see store/background.py),
    unless ``compact`` is False, or left unset with ``WAZA_COMPACTION=off``:
    then it is compressed at once.
    With ``retention_days``, partitions older than that are deleted as segments close.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
        compress: bool = True,
        compact: bool | None = None,
        retention_days: int | None = None,
        sync_new_files: bool = False,
    ):
        if segment_bytes <= 0 or segment_seconds <= 0:
            raise ValueError("segment_bytes and segment_seconds must be positive")
        if retention_days is not None and retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.compress = compress
        self.retention_days = retention_days
        # Compaction takes closed (compressed) segments only.
        if compact is None:
            compact = background_compaction_wanted()
        self.compaction = BackgroundCompaction(self.directory, _compress) if compact and compress else None
        # With fsync per batch, a new segment's name must be on disk too: its folder is fsynced.
        self.sync_new_files = sync_new_files
        self._tag = writer_tag()
        self._started = time.time_ns() // 1000
        self._sequence = 0
        self._open: dict[date, _Segment] = {}
        # The folder exists from the start, so that one with no session yet (all
        # sampled out, say) reads as empty rather than missing.
        with contextlib.suppress(OSError):  # a folder that cannot be made fails the first write, counted
            self.directory.mkdir(parents=True, exist_ok=True)

    def append(self, batch: Iterable[tuple[date, bytes]]) -> None:
        """Append each line (without newline) to the segment of its day, in batch order.

        A failed write is undone (the segment is cut back to its size before) and
        raises ``PartialWrite`` with how many lines of the batch were stored before
        it, so that the writer retries only the rest: never a torn or doubled line.
        """
        stored = 0
        try:
            for day, run in itertools.groupby(batch, key=lambda item: item[0]):
                lines = [line for _, line in run]
                start = 0
                while start < len(lines):
                    # Fill the open segment up to its size limit, then the next one.
                    room = self.segment_bytes - self._segment(day).size
                    end, size = start, 0
                    while end < len(lines) and (end == start or size + len(lines[end]) + 1 <= room):
                        size += len(lines[end]) + 1
                        end += 1
                    self._append(day, b"\n".join(lines[start:end]) + b"\n")
                    stored += end - start
                    start = end
                    if self._open[day].size >= self.segment_bytes:
                        self._close_stored(day)
        except OSError as error:
            raise PartialWrite(error, stored) from error

    def flush(self, *, fsync: bool = False) -> None:
        if fsync:
            for segment in self._open.values():
                os.fsync(segment.fd)

    def shutdown(self) -> None:
        for day in list(self._open):
            self._close(day)
        if self.compaction is not None:
            self.compaction.compress_waiting()

    def after_fork(self) -> None:
        """In a forked child: close the parent's segments unwritten to, and name new ones by this pid."""
        for segment in self._open.values():
            with contextlib.suppress(OSError):
                os.close(segment.fd)  # the parent goes on writing and closes them itself
        self._open.clear()
        self._tag = writer_tag()
        self._started = time.time_ns() // 1000
        self._sequence = 0

    def reset(self) -> None:
        """Forget open segments after an error (the folder may be gone); later writes reopen."""
        for segment in self._open.values():
            try:
                os.close(segment.fd)
            except OSError:
                pass
        self._open.clear()

    def _append(self, day: date, payload: bytes) -> None:
        segment = self._segment(day)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(segment.fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.size)
            if not segment.size:  # a segment opened for this write: leave no empty file behind
                with contextlib.suppress(OSError):
                    os.close(self._open.pop(day).fd)
                    segment.path.unlink()
            raise
        segment.size += len(payload)

    def _segment(self, day: date) -> _Segment:
        segment = self._open.get(day)
        if segment is not None and time.monotonic() - segment.opened >= self.segment_seconds:
            self._close(day)
            segment = None
        if segment is not None and os.fstat(segment.fd).st_nlink:
            return segment
        if segment is not None:  # someone deleted the file or its folder: start a new one
            os.close(self._open.pop(day).fd)
        folder = self.directory / partition_name(day)
        folder.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        path = folder / segment_name(self._tag, self._started, self._sequence)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.sync_new_files:
            _fsync_folder(folder)
            _fsync_folder(self.directory)
        segment = _Segment(path, fd, os.fstat(fd).st_size, time.monotonic())
        self._open[day] = segment
        return segment

    def rotate_aged(self) -> None:
        """Close segments open longer than ``segment_seconds`` (the writer calls this each cycle)."""
        now = time.monotonic()
        for day, segment in list(self._open.items()):
            if now - segment.opened >= self.segment_seconds:
                self._close(day)

    def _close_stored(self, day: date) -> None:
        """Close a full segment whose lines are stored; a failure here loses nothing, so it fails nothing."""
        try:
            self._close(day)
        except OSError as error:
            log.warning("telemetry segment of %s could not be closed cleanly: %s", day, error)

    def _close(self, day: date) -> None:
        """Make the segment's lines durable (an error here is a loss, and raises), then compress it (in
        the background when compaction runs there) and apply retention (an error there loses nothing:
        the plain segment is read as it is)."""
        segment = self._open.pop(day)
        os.fsync(segment.fd)
        os.close(segment.fd)
        try:
            if self.compress and segment.size and self.compaction is not None:
                self.compaction.request(segment.path)  # compressed, then compacted, off the write path
            elif self.compress and segment.size:
                _compress(segment.path)
            elif not segment.size:
                segment.path.unlink(missing_ok=True)
            if self.retention_days is not None:
                prune(self.directory, timedelta(days=self.retention_days), wait=False)
        except OSError as error:
            log.warning("telemetry segment %s stays uncompressed: %s", segment.path.name, error)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _compress(path: Path) -> None:
    """Replace ``x.jsonl`` by ``x.jsonl.gz`` without a moment where neither is whole."""
    target = path.with_name(path.name + ".gz")
    temporary = path.with_name("." + target.name + ".tmp")  # hidden: readers skip it
    try:
        with open(path, "rb") as source, open(temporary, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as packed:
                shutil.copyfileobj(source, packed, 1 << 20)
            raw.flush()
            os.fsync(raw.fileno())
    except OSError:
        temporary.unlink(missing_ok=True)  # the plain segment stays whole
        raise
    os.replace(temporary, target)
    path.unlink()
