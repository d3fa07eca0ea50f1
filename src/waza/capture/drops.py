"""Counts what telemetry could not do, by reason, and logs each reason once."""

from __future__ import annotations

import logging
import threading
from collections import Counter

log = logging.getLogger("waza.telemetry")


class DropCounter:
    """Thread-safe counters of dropped records and failed calls, keyed by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._warned: set[str] = set()

    def after_fork(self) -> None:
        """In a forked child: a fresh lock and a ledger of the child's own losses."""
        self._lock = threading.Lock()
        self._counts = Counter()
        self._warned = set()

    def add(self, reason: str, count: int = 1, message: str | None = None) -> None:
        with self._lock:
            self._counts[reason] += count
        self.warn_once(reason, message or f"telemetry dropped a record ({reason})")

    def count(self, reason: str, count: int = 1) -> None:
        """Count without logging: for drops that configuration asked for, such as sampling."""
        with self._lock:
            self._counts[reason] += count

    def warn_once(self, reason: str, message: str) -> None:
        with self._lock:
            if reason in self._warned:
                return
            self._warned.add(reason)
        log.warning("%s; further occurrences are counted, not logged", message)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
