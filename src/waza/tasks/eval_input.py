"""A production session as the input of an eval task."""

from __future__ import annotations

from typing import Any

from waza.model import SessionTelemetry, format_time


def to_eval_input(session: SessionTelemetry) -> dict[str, Any]:
    """The SPEC.md task shape: id, name, inputs, and what the session captured."""
    return {
        "id": f"runtime-{session.session_id}",
        "name": f"Runtime session {session.session_id[:8]}",
        "description": f"Captured from runtime on {format_time(session.start_time)}",
        "inputs": {"prompt": session.prompt, "context": dict(session.metadata)},
        "captured": {
            "output": session.output,
            "tool_calls": list(session.tool_calls),
            "events": [event.to_dict() for event in session.events],
            "duration_ms": session.duration_ms,
            "success": session.success,
            "error": session.error,
            "skill_name": session.skill_name,
        },
    }
