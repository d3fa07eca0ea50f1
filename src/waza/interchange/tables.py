"""``waza export --format parquet``: a sessions table and an events table for data teams.

``sessions.parquet`` has one row per session with its outcome, duration, tool calls,
token totals and metadata (as JSON text); ``events.parquet`` one row per event with
its data as JSON text. DuckDB writes both from the sessions the reader gives.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

from waza.model import SessionTelemetry, format_time, session_events
from waza.schema import LLM_REQUEST, token_count, token_total

SESSION_COLUMNS = {
    "session_id": "VARCHAR",
    "skill_name": "VARCHAR",
    "skills": "VARCHAR[]",
    "start_time": "TIMESTAMPTZ",
    "end_time": "TIMESTAMPTZ",
    "duration_ms": "BIGINT",
    "completed": "BOOLEAN",
    "success": "BOOLEAN",
    "error": "VARCHAR",
    "prompt": "VARCHAR",
    "output": "VARCHAR",
    "tool_calls": "BIGINT",
    "llm_calls": "BIGINT",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "total_tokens": "BIGINT",
    "metadata": "JSON",
}
EVENT_COLUMNS = {
    "session_id": "VARCHAR",
    "event_id": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "event_type": "VARCHAR",
    "skill_name": "VARCHAR",
    "data": "JSON",
}


def write_tables(sessions: Iterable[SessionTelemetry], directory: str | os.PathLike[str]) -> tuple[int, int]:
    """Write ``sessions.parquet`` and ``events.parquet`` into ``directory``; (sessions, events) written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    counts = [0, 0]
    with tempfile.TemporaryDirectory(prefix="waza-export-") as scratch:
        rows = Path(scratch, "sessions.jsonl"), Path(scratch, "events.jsonl")
        with (
            open(rows[0], "w", encoding="utf-8") as out_sessions,
            open(rows[1], "w", encoding="utf-8") as out_events,
        ):
            for session in sessions:
                out_sessions.write(json.dumps(_session_row(session), default=str) + "\n")
                counts[0] += 1
                for event in session_events(session):
                    record = event.to_dict() | {"data": json.dumps(event.data, default=str)}
                    out_events.write(json.dumps(record, default=str) + "\n")
                    counts[1] += 1
        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            for (name, columns), source in zip(
                (("sessions", SESSION_COLUMNS), ("events", EVENT_COLUMNS)), rows, strict=True
            ):
                _copy(connection, source, columns, target / f"{name}.parquet")
    return counts[0], counts[1]


def _copy(connection: duckdb.DuckDBPyConnection, rows: Path, columns: dict[str, str], target: Path) -> None:
    staged = target.with_name(f".{target.name}.tmp")
    described = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
    connection.execute(
        f"COPY (SELECT * FROM read_json(?, format = 'newline_delimited', columns = {described})) "
        "TO ? (FORMAT parquet, COMPRESSION zstd)",
        [str(rows), str(staged)],
    )
    os.replace(staged, target)


def _session_row(session: SessionTelemetry) -> dict[str, object]:
    requests = [e.data.get("tokens") for e in session.events if e.event_type == LLM_REQUEST]
    return {
        "session_id": session.session_id,
        "skill_name": session.skill_name,
        "skills": session.skills,
        "start_time": format_time(session.start_time),
        "end_time": format_time(session.end_time) if session.end_time else None,
        "duration_ms": session.duration_ms if session.completed else None,
        "completed": session.completed,
        "success": session.success if session.completed else None,
        "error": session.error,
        "prompt": session.prompt,
        "output": session.output,
        "tool_calls": len(session.tool_calls),
        "llm_calls": len(requests),
        "input_tokens": sum(token_count(t, "input") for t in requests),
        "output_tokens": sum(token_count(t, "output") for t in requests),
        "total_tokens": sum(token_total(t) for t in requests),
        "metadata": json.dumps(session.metadata, default=str),
    }
