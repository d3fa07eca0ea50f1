"""Shipping events to `waza serve`: ``RuntimeCollector(sink=HttpSink(url))``.

The collector's background writer hands lines over; the sink keeps them in a
bounded buffer and posts them in NDJSON batches to ``/telemetry/batch``. A
batch leaves the buffer only once the server acknowledged it, which means it
is on the server's disk. While the server is down or overloaded, sending
backs off exponentially (up to ``max_backoff`` seconds) and the buffer keeps
the newest ``max_lines`` lines; older ones are dropped, counted and logged
once. Nothing raises into the host.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("waza.telemetry")

BATCH_LINES = 5_000
BATCH_BYTES = 2 * 2**20
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class HttpSink:
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        max_lines: int = 100_000,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
    ):
        if max_lines <= 0 or max_backoff <= 0:
            raise ValueError("max_lines and max_backoff must be positive")
        import httpx  # only a collector that ships over HTTP pays for importing it

        headers = {"content-type": "application/x-ndjson"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http_error = httpx.HTTPError
        self._client_factory = functools.partial(
            httpx.Client, base_url=url.rstrip("/"), headers=headers, timeout=timeout
        )
        self._client: httpx.Client = self._client_factory()
        self._buffer: deque[bytes] = deque()
        self._lock = threading.Lock()
        self.max_lines = max_lines
        self.max_backoff = max_backoff
        self._delay = 0.0
        self._next_attempt = 0.0
        self.dropped = 0  # lines given up on: buffer overflow, refused by the server, or left at shutdown
        self._warned: set[str] = set()

    # The sink protocol the collector's writer drives.

    def export(self, batch: Iterable[tuple[date, bytes]]) -> None:
        with self._lock:
            self._buffer.extend(line for _, line in batch)
            overflow = len(self._buffer) - self.max_lines
            for _ in range(max(0, overflow)):
                self._buffer.popleft()
            if overflow > 0:
                self._drop(
                    overflow, "buffer_full", "waza serve is not keeping up; the oldest events are dropped"
                )
        self._send(respect_backoff=True)

    def flush(self, *, fsync: bool = False) -> None:
        self._send(respect_backoff=False)

    def rotate_aged(self) -> None:
        self._send(respect_backoff=True)  # the writer calls this every cycle: a retry tick

    def reset(self) -> None:
        pass

    def after_fork(self) -> None:
        """In a forked child: a connection pool of its own; what the parent buffered is the parent's."""
        self._client = self._client_factory()
        self._buffer = deque()
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        self._send(respect_backoff=False)
        with self._lock:
            if self._buffer:
                self._drop(len(self._buffer), "unsent", "events not delivered before shutdown")
                self._buffer.clear()
        self._client.close()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # --------------------------------------------------------------------

    def _send(self, *, respect_backoff: bool) -> None:
        with self._lock:
            while self._buffer:
                if respect_backoff and time.monotonic() < self._next_attempt:
                    return
                lines = self._next_batch()
                try:
                    response = self._client.post("/telemetry/batch", content=b"\n".join(lines) + b"\n")
                except self._http_error as error:
                    self._back_off(f"cannot reach waza serve, will retry: {error}")
                    return
                if response.status_code in RETRY_STATUSES:
                    self._back_off(f"waza serve answered {response.status_code}, will retry")
                    return
                for _ in lines:
                    self._buffer.popleft()
                self._delay = 0.0
                if (
                    response.status_code >= 400
                ):  # refused for good (bad data, bad token): retrying cannot help
                    self._drop(
                        len(lines),
                        f"refused_{response.status_code}",
                        f"waza serve refused: {response.text[:200]}",
                    )
                else:
                    rejected = len(response.json().get("rejected") or [])
                    if rejected:
                        self._drop(rejected, "rejected_lines", "waza serve rejected lines of a batch")

    def _next_batch(self) -> list[bytes]:
        lines, size = [], 0
        for line in self._buffer:
            if lines and (len(lines) >= BATCH_LINES or size + len(line) > BATCH_BYTES):
                break
            lines.append(line)
            size += len(line) + 1
        return lines

    def _back_off(self, message: str) -> None:
        self._delay = min(self.max_backoff, max(0.1, self._delay * 2))
        self._next_attempt = time.monotonic() + self._delay
        self._warn("unreachable", message)

    def _drop(self, count: int, reason: str, message: str) -> None:
        self.dropped += count
        self._warn(reason, message)

    def _warn(self, reason: str, message: str) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning("%s", message)
