"""Appends serialised events to day-partitioned JSONL segments in a telemetry folder."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import BinaryIO

from waza.store.layout import partition_name, segment_name, writer_tag

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


class FolderSink:
    """Writes lines into ``<dir>/date=YYYY-MM-DD/part-<host>-<pid>-<start>-<seq>.jsonl``.

    One writer owns a sink; segments are never shared between processes, so
    concurrent writers (threads of one collector aside) never interleave lines.
    """

    def __init__(self, directory: str | os.PathLike[str], *, segment_bytes: int = DEFAULT_SEGMENT_BYTES):
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._tag = writer_tag()
        self._started = time.time_ns() // 1000
        self._sequence = 0
        self._open: dict[date, tuple[BinaryIO, int]] = {}

    def export(self, batch: Iterable[tuple[date, bytes]]) -> None:
        """Append each line (without newline) to the segment of its day."""
        by_day: dict[date, list[bytes]] = {}
        for day, line in batch:
            by_day.setdefault(day, []).append(line)
        for day, lines in by_day.items():
            payload = b"\n".join(lines) + b"\n"
            handle, written = self._segment(day)
            handle.write(payload)
            self._open[day] = (handle, written + len(payload))

    def flush(self, *, fsync: bool = False) -> None:
        for handle, _ in self._open.values():
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())

    def shutdown(self) -> None:
        self.flush(fsync=True)
        for handle, _ in self._open.values():
            handle.close()
        self._open.clear()

    def _segment(self, day: date) -> tuple[BinaryIO, int]:
        current = self._open.get(day)
        if current and current[1] < self.segment_bytes and not current[0].closed:
            return current
        if current:
            current[0].close()
        folder = self.directory / partition_name(day)
        folder.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        path = folder / segment_name(self._tag, self._started, self._sequence)
        handle = open(path, "ab")  # noqa: SIM115 - kept open across batches, closed on shutdown
        self._open[day] = (handle, 0)
        return handle, 0
