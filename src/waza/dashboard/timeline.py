"""One session as a timeline: each event at its offset from the start, with what it says.

Entries are plain data (text and numbers); the page puts them on screen as
text, so nothing from telemetry is ever read as markup.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from waza.model import TelemetryEvent, fold_session
from waza.schema import ERROR, LLM_REQUEST, SKILL_INVOKED, TOOL_CALLED

# What a timeline keeps of one session: enough to see what happened, bounded in size.
MAX_EVENTS = 300
MAX_TEXT = 400


def timeline(session_id: str, events: list[TelemetryEvent]) -> dict[str, Any]:
    """The session's prompt, outcome and events, in order, each with its offset in milliseconds."""
    session = fold_session(session_id, events)
    start = session.start_time
    ordered = sorted(events, key=lambda e: (e.timestamp, e.event_type))
    return {
        "session_id": session_id,
        "skill": session.skill_name,
        "prompt": _clip(session.prompt),
        "output": _clip(session.output),
        "success": session.success if session.end_time is not None else None,
        "error": _clip(session.error),
        "duration_ms": session.duration_ms,
        "events": [_entry(event, start) for event in ordered[:MAX_EVENTS]],
        "events_left_out": max(0, len(ordered) - MAX_EVENTS),
    }


def _entry(event: TelemetryEvent, start: datetime) -> dict[str, Any]:
    data = event.data if isinstance(event.data, dict) else {}
    entry: dict[str, Any] = {
        "at_ms": round((event.timestamp - start).total_seconds() * 1000),
        "type": event.event_type,
        "name": _clip(_name(event, data)),
        "duration_ms": _number(data.get("duration_ms", data.get("latency_ms"))),
        "failed": event.event_type == ERROR or data.get("success") is False or bool(data.get("error")),
        "text": _clip(_text(event.event_type, data)),
    }
    return entry


def _name(event: TelemetryEvent, data: dict[str, Any]) -> str | None:
    for key in ("tool", "model", "agent", "skill_name", "error_type"):
        if isinstance(data.get(key), str):
            return data[key]
    return event.skill_name if event.event_type == SKILL_INVOKED else None


def _text(kind: str, data: dict[str, Any]) -> str | None:
    """What the event says, in a line: arguments, result, tokens, error or message."""
    parts = []
    if kind == TOOL_CALLED and "args" in data:
        parts.append(f"args {_compact(data['args'])}")
    if kind == LLM_REQUEST and isinstance(data.get("tokens"), dict):
        parts.append(", ".join(f"{key} {value}" for key, value in data["tokens"].items()))
    for key in ("result", "message", "error"):
        if data.get(key) not in (None, ""):
            parts.append(f"{key} {_compact(data[key])}" if key == "result" else str(_compact(data[key])))
    return "; ".join(parts) or None


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "…"
