"""Shipping events to `waza serve`: ``RuntimeCollector(sink=HttpSink(url))``.

The collector's background writer hands lines over; the sink keeps them in a
bounded buffer and posts them in NDJSON batches to ``/telemetry/batch``. A
batch leaves the buffer only once the server acknowledged it, which means it
is on the server's disk. While the server is down or overloaded, sending
backs off exponentially (up to ``max_backoff`` seconds) and the buffer keeps
the newest ``max_lines`` lines; older ones are dropped, counted and logged
once. With a ``spool`` folder they go to disk instead, as do the lines left
at shutdown, and are sent before newer ones by this sink or the next one
given the folder. Nothing raises into the host.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from waza.capture.drops import DropCounter
from waza.capture.spool import Spool

if TYPE_CHECKING:
    import httpx


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
        spool: str | Path | None = None,
        spool_max_bytes: int = 256 * 2**20,
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
        self._spool = Spool(spool, spool_max_bytes) if spool is not None else None
        self._lock = threading.Lock()
        self.max_lines = max_lines
        self.max_backoff = max_backoff
        self._delay = 0.0
        self._next_attempt = 0.0
        self.dropped = 0  # lines given up on: buffer overflow, refused by the server, or left at shutdown
        self._ledger = DropCounter()  # the collector's, once it uses this sink (see use_ledger)

    # The sink protocol the collector's writer drives.

    def append(self, batch: Iterable[tuple[date, bytes]]) -> None:
        with self._lock:
            self._buffer.extend(line for _, line in batch)
            overflow = [self._buffer.popleft() for _ in range(len(self._buffer) - self.max_lines)]
            if overflow:
                self._set_aside(overflow, "buffer_full", "waza serve is not keeping up")
        self._send(respect_backoff=True)

    def flush(self, *, fsync: bool = False) -> None:
        self._send(respect_backoff=False)

    def rotate_aged(self) -> None:
        self._send(respect_backoff=True)  # the writer calls this every cycle: a retry tick

    def reset(self) -> None:
        pass

    def use_ledger(self, ledger: DropCounter) -> None:
        """Count lost lines, by reason, where the collector counts its own: ``collector.dropped``."""
        self._ledger = ledger

    def after_fork(self) -> None:
        """In a forked child: a connection pool of its own; what the parent buffered is the parent's."""
        self._client = self._client_factory()
        self._buffer = deque()
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        self._send(respect_backoff=False)
        with self._lock:
            if self._buffer:
                self._set_aside(list(self._buffer), "unsent", "events not delivered before shutdown")
                self._buffer.clear()
        self._client.close()

    @property
    def pending(self) -> int:
        """Lines not yet acknowledged by the server, in memory and in the spool."""
        return len(self._buffer) + (self._spool.lines if self._spool else 0)

    # --------------------------------------------------------------------

    def _send(self, *, respect_backoff: bool) -> None:
        """Post spooled batches, oldest first, then the buffer, until done or the server fails."""
        with self._lock:
            while not (respect_backoff and time.monotonic() < self._next_attempt):
                if self._spool is not None:
                    with self._spool.oldest() as claim:
                        if claim is not None:
                            if self._post(claim.lines):
                                claim.delivered()
                                continue
                            return
                if not self._buffer:
                    return
                lines = self._next_batch()
                if not self._post(lines):
                    return
                for _ in lines:
                    self._buffer.popleft()

    def _post(self, lines: list[bytes]) -> bool:
        """Send one batch; False when it should be sent again later (the sink then backs off)."""
        try:
            response = self._client.post("/telemetry/batch", content=b"\n".join(lines) + b"\n")
        except self._http_error as error:
            self._back_off(f"cannot reach waza serve, will retry: {error}")
            return False
        if response.status_code in RETRY_STATUSES:
            self._back_off(f"waza serve answered {response.status_code}, will retry")
            return False
        self._delay = 0.0
        if response.status_code >= 400:  # refused for good (bad data, bad token): retrying cannot help
            self._drop(
                len(lines), f"refused_{response.status_code}", f"waza serve refused: {response.text[:200]}"
            )
        else:
            rejected = len(response.json().get("rejected") or [])
            if rejected:
                self._drop(rejected, "rejected_lines", "waza serve rejected lines of a batch")
        return True

    def _next_batch(self) -> list[bytes]:
        return next(_batches(self._buffer), [])

    def _set_aside(self, lines: list[bytes], reason: str, why: str) -> None:
        """Lines the buffer cannot keep: to the spool if there is one, else dropped."""
        lost = len(lines)
        if self._spool is not None:
            lost = self._spool.put(list(_batches(lines)))
            self._warn("spooled", f"{why}; events are kept in {self._spool.folder} until it is back")
            reason = "spool_full"
            why = f"the spool {self._spool.folder} is full or cannot be written"
        if lost:
            self._drop(lost, reason, f"{why}; {lost} events dropped")

    def _back_off(self, message: str) -> None:
        self._delay = min(self.max_backoff, max(0.1, self._delay * 2))
        self._next_attempt = time.monotonic() + self._delay
        self._warn("unreachable", message)

    def _drop(self, count: int, reason: str, message: str) -> None:
        self.dropped += count
        self._ledger.add(reason, count, message)

    def _warn(self, reason: str, message: str) -> None:
        self._ledger.warn_once(reason, message)


def _batches(lines: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Consecutive batches of at most BATCH_LINES lines and about BATCH_BYTES."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and (len(batch) >= BATCH_LINES or size + len(line) > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        yield batch
