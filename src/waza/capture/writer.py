"""A background thread that turns recorded events into lines in a sink.

The caller's thread only appends the event to a deque; redaction, encoding
and writing happen here, in batches, so recording stays cheap and a slow disk
never blocks the skill.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

from waza.capture.drops import DropCounter
from waza.model import TelemetryEvent
from waza.store.codec import bounded_line

# Wake the writer early once this many records wait, so batches stay moderate.
HIGH_WATER = 8192
# How long a stopping writer keeps retrying lines a failed write (a full disk) held back.
SHUTDOWN_RETRY_SECONDS = 10.0
# A batch is written once it holds this many lines or bytes, so that a producer
# that never lets the queue run empty still sees its records reach the sink, and
# the writer holds at most one batch of encoded lines besides the queue.
BATCH_LINES = 4096
BATCH_BYTES = 4 * 2**20

Process = Callable[[dict[str, Any]], dict[str, Any]]


class Sink(Protocol):
    """Where the writer puts lines: a folder (FolderSink) or a server (HttpSink).

    ``append`` raises OSError when the lines could not be stored; the writer then
    calls ``reset`` and offers them again later.
    """

    def append(self, batch: list[tuple[date, bytes]]) -> None: ...
    def flush(self, *, fsync: bool = False) -> None: ...
    def rotate_aged(self) -> None: ...
    def reset(self) -> None: ...
    def shutdown(self) -> None: ...
    def after_fork(self) -> None:
        """In a forked child: let go of the parent's files and connections, name new ones as the child's."""


class _FlushRequest:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.stored = False  # whether everything before it reached the sink's storage


_STOP = object()


class BackgroundWriter:
    """Batches events off the caller's thread; ``flush`` waits until earlier ones are on disk."""

    def __init__(
        self,
        sink: Sink,
        drops: DropCounter,
        *,
        process: Process | None = None,
        flush_interval: float = 1.0,
        max_queue: int = 1_000_000,
    ):
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if max_queue <= 0:
            raise ValueError("max_queue must be positive")
        self._sink = sink
        self._drops = drops
        if hasattr(sink, "use_ledger"):  # a sink that can lose lines it took (a server's) counts them here
            sink.use_ledger(drops)
        self._process = process
        self._interval = flush_interval
        self._max_queue = max_queue
        # What the queue may hold: max_queue, and once the writer has measured its
        # speed, no more than it writes in one interval. A producer that outruns the
        # disk then loses records, counted as queue_full, rather than letting the
        # backlog (and what a hard kill loses) grow past one interval.
        self._limit = max_queue
        self._progress = time.monotonic()  # when the writer last wrote a batch or was called
        self._closed = False
        self._stored_all = False  # set at shutdown: whether every line reached the sink
        self._start()
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_in_child(reference))

    def _start(self) -> None:
        self._pending: deque[object] = deque()
        self._retry: list[tuple[date, bytes]] = []  # lines a failed write left behind
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waza-writer", daemon=True)
        self._thread.start()

    def after_fork(self) -> None:
        """In a forked child: a writer of its own, with an empty queue and the sink reopened for it.

        What the parent had queued is the parent's to write; the child writes only
        what it records itself, to segments named with its own pid.
        """
        self._sink.after_fork()
        self._progress = time.monotonic()
        if not self._closed:
            self._start()

    def submit(self, event: TelemetryEvent) -> None:
        if self._closed:
            self._drops.add("after_shutdown")
            return
        # deque.append is atomic; the length check is a soft bound, which is enough here.
        pending = len(self._pending)
        if pending >= self._limit or (pending >= HIGH_WATER and self._stalled()):
            self._drops.add("queue_full")
            return
        self._pending.append(event)
        if pending + 1 >= HIGH_WATER and not self._wake.is_set():
            self._progress = time.monotonic()  # the writer's clock starts when it is called
            self._wake.set()

    def _stalled(self) -> bool:
        """Whether the writer has written nothing for an interval although records wait.

        A host thread that holds the interpreter and lets go of it only for short
        system calls can starve the writer's thread; the queue must not grow then.
        """
        return time.monotonic() - self._progress > self._interval

    def flush(self, timeout: float | None = None) -> bool:
        """True once everything recorded before is stored; False at the timeout, or while the sink
        still holds lines it could not store (a full disk, a server that is down)."""
        if self._closed:
            return not self._thread.is_alive()
        request = _FlushRequest()
        self._pending.append(request)
        self._wake.set()
        return request.done.wait(timeout) and request.stored

    def shutdown(self, timeout: float | None = None) -> bool:
        """Refuse new records, drain what is queued, close the sink. Safe to call twice.

        True once every record is stored; False at the timeout, or when lines had to be
        given up (the disk stayed full, counted as ``write_error``).
        """
        if not self._closed:
            self._closed = True
            self._pending.append(_STOP)
            self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive() and self._stored_all

    def _run(self) -> None:
        while True:
            if len(self._pending) < HIGH_WATER:  # under load there is no waiting
                self._wake.wait(self._interval)
            self._wake.clear()
            if self._drain():
                return

    def _drain(self) -> bool:
        """Write what was queued when the drain began, in order and in bounded batches.

        Records queued meanwhile wait for the next round, which also gives the sink
        its turn to close aged segments. True once the stop marker was reached.
        """
        lines: list[tuple[date, bytes]] = []
        size = 0
        began = self._progress = time.monotonic()
        for done in range(1, len(self._pending) + 1):
            item = self._pending.popleft()
            if isinstance(item, TelemetryEvent):
                line = self._encode(item)
                if line is not None:
                    lines.append((item.timestamp.date(), line))
                    size += len(line)
                    if len(lines) >= BATCH_LINES or size >= BATCH_BYTES:
                        self._write(lines)
                        lines, size = [], 0
                        self._progress = time.monotonic()
                        self._measure(done, self._progress - began)
                continue
            self._write(lines)
            lines, size = [], 0
            if item is _STOP:
                self._retry_before_stopping()
                if self._retry:
                    self._drops.add("write_error", len(self._retry))
                self._stored_all = not self._retry and self._guard(self._sink.shutdown)
                return True
            if isinstance(item, _FlushRequest):
                flushed = self._guard(lambda: self._sink.flush(fsync=True))
                item.stored = flushed and not self._retry and not getattr(self._sink, "pending", 0)
                item.done.set()
        self._write(lines)
        self._guard(self._sink.rotate_aged)
        return False

    def _retry_before_stopping(self) -> None:
        """Lines a full disk held back get a last while to be stored, rather than being given up at once."""
        deadline = time.monotonic() + SHUTDOWN_RETRY_SECONDS
        pause = 0.05
        while self._retry and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(1.0, pause * 2)
            self._write([])

    def _measure(self, records: int, seconds: float) -> None:
        """Bound the queue by what this writer gets through in one interval, as a busy round shows it.

        Measured while the producer runs, so a writer starved of the interpreter
        (the host thread holding the GIL) gets a smaller queue, not a longer backlog.
        """
        if seconds > 0:
            per_interval = int(records / seconds * self._interval)
            self._limit = min(self._max_queue, max(HIGH_WATER, per_interval))

    def _encode(self, event: TelemetryEvent) -> bytes | None:
        try:
            record = event.to_dict()
            if self._process is not None:
                record = self._process(record)
            line, cut = bounded_line(record, self._count_unserialisable)
            if cut:
                self._drops.add("line_truncated", message="telemetry cut an event over 1 MiB down to size")
            return line
        except Exception as exc:  # one bad record must not stop the writer
            self._drops.add("error", message=f"telemetry could not encode an event: {exc}")
            return None

    def _count_unserialisable(self) -> None:
        message = "telemetry stored a value JSON cannot hold as its repr()"
        self._drops.add("unserialisable_value", message=message)

    def _write(self, lines: list[tuple[date, bytes]]) -> None:
        """Write new lines after any left from a failed write; keep what was not stored for retry.

        A sink that stored part of the batch before failing says how many lines
        (``stored`` on its error): only the rest is offered again, so none is doubled.
        """
        batch = self._retry + lines
        if not batch:
            return
        try:
            self._sink.append(batch)
            self._retry = []
            return
        except OSError as error:
            self._drops.warn_once("write_failed", f"telemetry write failed, will retry: {error}")
            batch = batch[getattr(error, "stored", 0) :]
        self._guard(self._sink.reset)
        overflow = len(batch) - self._max_queue
        if overflow > 0:  # the oldest lines go first when the disk stays unusable
            self._drops.add("write_error", overflow)
            batch = batch[overflow:]
        self._retry = batch

    def _guard(self, action: Callable[[], Any]) -> bool:
        try:
            action()
            return True
        except OSError as exc:
            self._drops.warn_once("write_failed", f"telemetry write failed, will retry: {exc}")
            return False


def _restart_in_child(reference: weakref.ref[BackgroundWriter]) -> None:
    writer = reference()
    if writer is not None:
        writer.after_fork()
