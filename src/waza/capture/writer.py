"""A background thread that moves serialised events from a bounded queue into a sink."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import date

from waza.capture.drops import DropCounter
from waza.store.folder_sink import FolderSink

log = logging.getLogger("waza.telemetry")

_BATCH = 4096


class _FlushRequest:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class BackgroundWriter:
    """Batches records off the caller's thread; ``flush`` waits until earlier records are on disk."""

    def __init__(
        self,
        sink: FolderSink,
        drops: DropCounter,
        *,
        flush_interval: float = 1.0,
        max_queue: int = 1_000_000,
    ):
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if max_queue <= 0:
            raise ValueError("max_queue must be positive")
        self._sink = sink
        self._drops = drops
        self._interval = flush_interval
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="waza-writer", daemon=True)
        self._thread.start()

    def submit(self, day: date, line: bytes) -> None:
        if self._closed:
            self._drops.add("after_shutdown")
            return
        try:
            self._queue.put_nowait((day, line))
        except queue.Full:
            self._drops.add("queue_full")

    def flush(self, timeout: float | None = None) -> bool:
        if self._closed:
            return not self._thread.is_alive()
        request = _FlushRequest()
        self._queue.put(request)
        return request.done.wait(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Refuse new records, drain what is queued, close the sink. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < _BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if self._handle(items):
                return

    def _handle(self, items: list[object]) -> bool:
        """Write a batch in order; returns True once the stop marker was reached."""
        pending: list[tuple[date, bytes]] = []
        for item in items:
            if isinstance(item, tuple):
                pending.append(item)
                continue
            self._write(pending)
            pending = []
            if item is _STOP:
                self._guard(self._sink.shutdown)
                return True
            assert isinstance(item, _FlushRequest)
            self._guard(lambda: self._sink.flush(fsync=True))
            item.done.set()
        self._write(pending)
        # Hand each batch to the OS at once: a hard kill then loses only what is queued.
        self._guard(self._sink.flush)
        return False

    def _write(self, pending: list[tuple[date, bytes]]) -> None:
        if pending and not self._guard(lambda: self._sink.export(pending)):
            self._drops.add("write_error", len(pending))

    def _guard(self, action) -> bool:
        try:
            action()
            return True
        except OSError as exc:
            self._drops.warn_once("write_error", f"telemetry write failed: {exc}")
            return False
