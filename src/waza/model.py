"""The two record types: an event, and the session its events fold into."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from waza.schema import AGENT_INVOKED, SESSION_ENDED, SESSION_STARTED, SKILL_INVOKED, TOOL_CALLED

# How an error text names its type: "TimeoutError: ..." as recorded for an exception.
ERROR_TYPE_PREFIX = r"^([A-Za-z_][A-Za-z0-9_.]*): "


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: datetime | str) -> datetime:
    """An aware UTC datetime from an ISO 8601 string or datetime; no offset means UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return moment.isoformat() if moment.tzinfo is UTC else parse_time(moment).isoformat()


@dataclass
class TelemetryEvent:
    """One thing that happened during a skill session."""

    timestamp: datetime
    event_type: str
    skill_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    # Unique within its session, given where the event is born; a copy stored twice
    # (a writer's or a client's retry) carries the same id and is counted once.
    event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        record = {
            "timestamp": format_time(self.timestamp),
            "event_type": self.event_type,
            "skill_name": self.skill_name,
            "data": self.data,
            "session_id": self.session_id,
        }
        if self.event_id is not None:
            record["event_id"] = self.event_id
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TelemetryEvent:
        data = record.get("data")
        event_id = record.get("event_id")
        return cls(
            timestamp=parse_time(record["timestamp"]),
            event_type=str(record["event_type"]),
            skill_name=record.get("skill_name"),
            data=data if isinstance(data, dict) else {},
            session_id=record.get("session_id"),
            event_id=str(event_id) if event_id is not None else None,
        )


@dataclass
class SessionTelemetry:
    """A skill session: the prompt, what happened, and how it ended."""

    session_id: str
    start_time: datetime
    end_time: datetime | None = None
    skill_name: str | None = None
    prompt: str = ""
    output: str = ""
    events: list[TelemetryEvent] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    success: bool = True
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The duration a file stores for the session (earlier versions' exports, an end event that
    # records one): the session's duration, as those who wrote it computed it.
    recorded_duration_ms: float | None = field(default=None, compare=False, repr=False)

    @property
    def duration_ms(self) -> int:
        """Whole milliseconds from start to end, truncated toward zero (or as recorded); 0 while open."""
        if self.end_time is None:
            return 0
        if self.recorded_duration_ms is not None:
            return int(self.recorded_duration_ms)
        # Integer microseconds first: a float of seconds times 1000 can land just below a whole ms.
        micros = (self.end_time - self.start_time) // timedelta(microseconds=1)
        return int(micros / 1000)

    @property
    def completed(self) -> bool:
        return self.end_time is not None

    @property
    def skills(self) -> list[str]:
        """Every skill the session invoked, in order, repeats kept (``skill_name`` is the first);
        the session's own skill when it records no invocation."""
        invoked = [e.skill_name for e in self.events if e.event_type == SKILL_INVOKED and e.skill_name]
        return invoked or ([self.skill_name] if self.skill_name else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "start_time": format_time(self.start_time),
            "end_time": format_time(self.end_time) if self.end_time else None,
            "skill_name": self.skill_name,
            "skills": self.skills,
            "prompt": self.prompt,
            "output": self.output,
            "events": [event.to_dict() for event in self.events],
            "tool_calls": self.tool_calls,
            "success": self.success,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> SessionTelemetry:
        end_time = record.get("end_time")
        return cls(
            session_id=str(record["session_id"]),
            start_time=parse_time(record["start_time"]),
            end_time=parse_time(end_time) if end_time else None,
            skill_name=record.get("skill_name"),
            prompt=record.get("prompt") or "",
            output=record.get("output") or "",
            events=[TelemetryEvent.from_dict(event) for event in record.get("events") or []],
            tool_calls=_list_of(record.get("tool_calls")),
            # Only JSON true is success; a missing key is success, as earlier versions wrote it.
            success=record.get("success", True) is True,
            error=record.get("error"),
            metadata=dict(record.get("metadata") or {}),
            recorded_duration_ms=_number(record.get("duration_ms")) if end_time else None,
        )


def _list_of(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def fold_session(session_id: str, events: Iterable[TelemetryEvent]) -> SessionTelemetry:
    """Rebuild a session from its events (sorted by time, ties kept in the given order).

    An event stored more than once (the same ``event_id``) counts once.
    """
    ordered = sorted(once(events), key=lambda event: parse_time(event.timestamp))
    if not ordered:
        raise ValueError(f"session {session_id!r} has no events")
    started = next((e for e in ordered if e.event_type == SESSION_STARTED), None)
    ended = next((e for e in reversed(ordered) if e.event_type == SESSION_ENDED), None)
    begin = started.data if started else {}
    end = ended.data if ended else {}
    agents = [e.data for e in ordered if e.event_type == AGENT_INVOKED and e.data.get("agent") is not None]
    failed = next((agent for agent in agents if agent.get("success") is False), None)
    # A trace's root may hold no content; then the first agent span, model call or GenAI content
    # event that carries a prompt gives it.
    prompts = (e.data.get("prompt") for e in ordered if e.event_type != SESSION_STARTED)
    return SessionTelemetry(
        session_id=session_id,
        start_time=parse_time((started or ordered[0]).timestamp),
        end_time=parse_time(ended.timestamp) if ended else None,
        skill_name=next((e.skill_name for e in ordered if e.skill_name), None)
        or (str(agents[0]["agent"]) if agents else None)
        or begin.get("agent"),
        prompt=str(begin.get("prompt") or next((p for p in prompts if p), "")),
        output=str(end.get("output") or ""),
        events=[e for e in ordered if e.event_type not in (SESSION_STARTED, SESSION_ENDED)],
        tool_calls=[e.data for e in ordered if e.event_type == TOOL_CALLED],
        # An open session has not succeeded; analysis counts it apart in any case.
        success=end.get("success") is True and failed is None,
        error=end.get("error") if failed is None else end.get("error") or failed.get("error"),
        metadata=dict(begin.get("metadata") or {}),
        recorded_duration_ms=_number(end.get("duration_ms")),
    )


def session_events(session: SessionTelemetry) -> list[TelemetryEvent]:
    """The event-log form of a session: its events between session.started and session.ended."""
    sid = session.session_id
    started = TelemetryEvent(
        session.start_time,
        SESSION_STARTED,
        data={"prompt": session.prompt, "metadata": session.metadata},
        session_id=sid,
    )
    middle = [
        TelemetryEvent(e.timestamp, e.event_type, e.skill_name, e.data, sid, e.event_id)
        for e in session.events
        if e.event_type not in (SESSION_STARTED, SESSION_ENDED)
    ]
    if session.skill_name and not any(e.skill_name for e in middle):
        started.skill_name = session.skill_name
    events = [started, *middle]
    if session.end_time is not None:
        data = {"output": session.output, "success": session.success, "error": session.error}
        if session.recorded_duration_ms is not None:
            data["duration_ms"] = session.recorded_duration_ms
        events.append(TelemetryEvent(session.end_time, SESSION_ENDED, data=data, session_id=sid))
    return events


def once(events: Iterable[TelemetryEvent]) -> list[TelemetryEvent]:
    """The events with each ``event_id`` kept once (the first seen); events without one all stay."""
    seen: set[str] = set()
    kept = []
    for event in events:
        if event.event_id is not None:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        kept.append(event)
    return kept


def _starts_new_session(event: TelemetryEvent, current: list[TelemetryEvent]) -> bool:
    if not current:
        return False
    if event.event_type == SESSION_STARTED:
        return True
    return event.event_type == SKILL_INVOKED and any(e.event_type == SKILL_INVOKED for e in current)


def group_events(
    events: Iterable[TelemetryEvent],
    key: Callable[[TelemetryEvent], str | None] = lambda event: event.session_id,
) -> list[SessionTelemetry]:
    """Group loose events into sessions, as parsed from existing logs.

    Events are grouped by ``key`` (the session id by default). Events without a
    key are split, in time order, at each ``session.started`` and at each
    further ``skill.invoked``; such sessions get the id ``log-<n>``.
    """
    keyed: dict[str, list[TelemetryEvent]] = {}
    loose: list[TelemetryEvent] = []
    for event in events:
        session_id = key(event)
        if session_id is None:
            loose.append(event)
        else:
            keyed.setdefault(str(session_id), []).append(event)

    runs: list[list[TelemetryEvent]] = []
    for event in sorted(loose, key=lambda e: parse_time(e.timestamp)):
        if not runs or _starts_new_session(event, runs[-1]):
            runs.append([])
        runs[-1].append(event)
    for number, run in enumerate(runs, start=1):
        keyed[f"log-{number}"] = run

    sessions = [fold_session(session_id, group) for session_id, group in keyed.items()]
    sessions.sort(key=lambda s: (s.start_time, s.session_id))
    return sessions


def _number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (booleans are no numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
