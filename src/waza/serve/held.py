"""Sessions the sample left out, held until they end: a failure is stored whole, a success let go.

``waza serve`` keeps no state that a 2xx depends on: an event of a session the
sample left out is answered (``sampled: false`` where a route says so) and
stored only if its session turns out to fail. Until then it waits here, in the
memory of the worker that received it, within bounds: the sessions held, the
events each may hold, and how long one may stay quiet. A failed session is
stored with everything its worker held of it, and its later events (spans that
end after the root) are stored as they come. Events of one session spread over
several workers or replicas are held, and kept, by each worker apart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

MAX_SESSIONS = 10_000
MAX_EVENTS = 1_000  # per session; a session's later events are let go
IDLE_SECONDS = 900.0


class Event(Protocol):
    session_id: Any
    event_type: str
    data: dict[str, Any]


class HeldSessions:
    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        max_events: int = MAX_EVENTS,
        idle_seconds: float = IDLE_SECONDS,
    ):
        self.max_sessions = max_sessions
        self.max_events = max_events
        self.idle_seconds = idle_seconds
        self._held: OrderedDict[str, tuple[float, list[Any]]] = OrderedDict()  # quietest first
        self._kept: OrderedDict[str, None] = OrderedDict()  # failed sessions already stored

    def take(self, session_id: str, event: Any, *, ends: bool, failed: bool) -> list[Any]:
        """What to store now, given one more event of a session the sample left out."""
        if session_id in self._kept:
            return [event]
        if ends:
            _, held = self._held.pop(session_id, (0.0, []))
            if not failed:
                return []
            self._kept[session_id] = None
            while len(self._kept) > self.max_sessions:
                self._kept.popitem(last=False)
            return [*held, event]
        now = time.monotonic()
        _, held = self._held.pop(session_id, (now, []))
        if len(held) < self.max_events:
            held.append(event)
        self._held[session_id] = (now, held)
        while self._held and (
            len(self._held) > self.max_sessions
            or now - next(iter(self._held.values()))[0] > self.idle_seconds
        ):
            self._held.popitem(last=False)  # the quietest session is let go, as a success would be
        return []

    def _quietest(self) -> float:
        """When the quietest session held last had an event."""
        return next(iter(self._held.values()))[0]

    @property
    def sessions(self) -> int:
        return len(self._held)
