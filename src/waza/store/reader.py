"""Reads telemetry into Python objects, for the API and for small inputs.

Analysis of large inputs does not come through here: the engine reads the
files itself. Both skip the same bad records and report them the same way.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from waza.errors import UnreadableInputError
from waza.model import (
    SESSION_STARTED,
    SessionTelemetry,
    TelemetryEvent,
    group_events,
    session_events,
    utc_now,
)
from waza.store.codec import MAX_READ_LINE_BYTES
from waza.store.sources import (
    EVENT_FORMATS,
    READ_ATTEMPTS,
    TRANSLATED_FORMATS,
    Format,
    Problem,
    Source,
    discover,
)

# How far ahead of this machine's clock a span may be stamped before it is refused.
CLOCK_SKEW = timedelta(days=1)

log = logging.getLogger("waza.telemetry")

PathLike = str | os.PathLike[str]


def open_text(source: Source) -> IO[str]:
    if source.compressed:
        return gzip.open(source.path, "rt", encoding="utf-8", errors="replace")
    return open(source.path, encoding="utf-8", errors="replace")


def numbered_lines(stream: IO[str], path: str, problems: list[Problem]) -> Iterator[tuple[int, str]]:
    """Each line with its number; one longer than the readers take is read through in pieces,
    never held whole, and reported instead of stopping the file."""
    number = 0
    while line := stream.readline(MAX_READ_LINE_BYTES):
        number += 1
        if len(line) < MAX_READ_LINE_BYTES or line.endswith("\n"):
            yield number, line
            continue
        length = len(line)
        while (rest := stream.readline(MAX_READ_LINE_BYTES)) and not rest.endswith("\n"):
            length += len(rest)
        length += len(rest)
        problems.append(
            Problem(path, number, f"a line of {length:,} characters is too long to read; skipped")
        )


def event_lines(source: Source, problems: list[Problem]) -> Iterator[TelemetryEvent]:
    """Valid events of an event-log file; each bad line becomes a Problem."""
    if source.format is Format.PARQUET:
        yield from parquet_events(source, problems)
        return
    try:
        with open_text(source) as stream:
            for number, line in numbered_lines(stream, str(source.path), problems):
                if not line.strip():
                    continue
                try:
                    event = TelemetryEvent.from_dict(json.loads(line))
                    if not event.session_id:
                        raise ValueError("event has no session_id")
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    problems.append(Problem(str(source.path), number, _reason(exc)))
                    continue
                yield event
    except (OSError, EOFError) as exc:
        problems.append(Problem(str(source.path), None, f"stopped reading: {exc}"))


def parquet_events(source: Source, problems: list[Problem]) -> Iterator[TelemetryEvent]:
    """Events of a compacted Parquet file (its ``data_json`` keeps each event's data whole)."""
    import duckdb  # the engine's own reader of Parquet; imported here to keep start-up light

    try:
        with duckdb.connect() as connection:
            path = str(source.path)
            stored = connection.execute("SELECT name FROM parquet_schema(?)", [path]).fetchall()
            event_id = "event_id" if ("event_id",) in stored else "NULL"  # absent in files of 0.2 and before
            columns = f"timestamp::VARCHAR, event_type, skill_name, data_json, session_id, {event_id}"
            rows = connection.execute(f"SELECT {columns} FROM read_parquet(?)", [path]).fetchall()
    except duckdb.Error as exc:
        problems.append(Problem(str(source.path), None, f"cannot read Parquet: {exc}"))
        return
    for timestamp, event_type, skill_name, data, session_id, event_id in rows:
        record = {"timestamp": timestamp, "event_type": event_type, "skill_name": skill_name}
        fields = {"data": json.loads(data or "{}"), "session_id": session_id, "event_id": event_id}
        yield TelemetryEvent.from_dict(record | fields)


def session_records(source: Source, problems: list[Problem]) -> Iterator[SessionTelemetry]:
    """Sessions from a session-shaped file (export, list, or one per line)."""
    path = str(source.path)
    try:
        with open_text(source) as stream:
            if source.format is Format.SESSION_LINES:
                records: Iterable[tuple[int | None, Any]] = (
                    (number, _loads(line))
                    for number, line in numbered_lines(stream, path, problems)
                    if line.strip()
                )
            else:
                document = json.load(stream)
                if source.format is Format.EXPORT:
                    document = document.get("sessions") if isinstance(document, dict) else None
                if not isinstance(document, list):
                    problems.append(Problem(path, None, "no list of sessions found"))
                    return
                records = ((None, item) for item in document)
            for index, (number, record) in enumerate(records):
                try:
                    if isinstance(record, Exception):
                        raise record
                    yield SessionTelemetry.from_dict(record)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    reason = _reason(exc) if number else f"session #{index + 1}: {_reason(exc)}"
                    problems.append(Problem(path, number, reason))
    except (OSError, EOFError, ValueError) as exc:
        problems.append(Problem(path, None, f"not valid JSON: {exc}"))


def translated_events(source: Source, problems: list[Problem]) -> Iterator[TelemetryEvent]:
    """Events of a file no engine scans itself: a JSON document over many lines, or OTLP exports."""
    path = str(source.path)
    try:
        with open_text(source) as stream:
            if source.format is Format.OTLP:
                for number, line in numbered_lines(stream, path, problems):
                    if line.strip():
                        yield from otlp_events(_loads(line), path, number, problems)
                return
            document = json.load(stream)
    except (OSError, EOFError) as exc:
        problems.append(Problem(path, None, f"stopped reading: {exc}"))
        return
    except ValueError as exc:
        problems.append(Problem(path, None, f"not valid JSON: {exc}"))
        return
    yield from _document_events(document, path, problems)


def _document_events(document: Any, path: str, problems: list[Problem]) -> Iterator[TelemetryEvent]:
    """A JSON value by what it holds: an OTLP export, sessions or events, alone or in a list."""
    if isinstance(document, dict) and ("resourceSpans" in document or "resourceLogs" in document):
        yield from otlp_events(document, path, None, problems)
        return
    if isinstance(document, dict) and isinstance(document.get("sessions"), list):
        document = document["sessions"]
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict) or not ("event_type" in item or "start_time" in item):
                raise ValueError("neither a session nor an event")
            if "event_type" not in item:
                yield from session_events(SessionTelemetry.from_dict(item))
                continue
            event = TelemetryEvent.from_dict(item)
            if not event.session_id:
                raise ValueError("event has no session_id")
            yield event
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            where = f"item #{index + 1}: " if isinstance(document, list) else ""
            problems.append(Problem(path, None, where + _reason(exc)))


def otlp_events(
    document: Any, path: str, line: int | None, problems: list[Problem]
) -> Iterator[TelemetryEvent]:
    """The events of one OTLP JSON trace or log export; what it refuses is reported at ``path:line``."""
    from waza.otel import otlp  # protobuf's machinery loads only for OTLP files

    logs = isinstance(document, dict) and "resourceLogs" in document and "resourceSpans" not in document
    try:
        if isinstance(document, Exception):
            raise document
        latest = utc_now() + CLOCK_SKEW
        if logs:
            export = otlp.from_json(document, otlp.ExportLogsServiceRequest)
            events, rejected, reason = otlp.log_events_of(export, latest)
        elif isinstance(document, dict):
            events, rejected, reason = otlp.json_events_of(document, latest)
        else:
            raise ValueError("an OTLP JSON export is an object")
    except ValueError as exc:
        problems.append(Problem(path, line, _reason(exc)))
        return
    if rejected:
        kind = "log records" if logs else "spans"
        problems.append(Problem(path, line, f"{rejected} {kind} refused: {reason}"))
    yield from events


def _loads(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        return exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg})"
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return f"invalid record ({exc})"


def load_sessions(
    paths: Iterable[PathLike], *, strict: bool = False
) -> tuple[list[SessionTelemetry], list[Problem]]:
    """All sessions under ``paths`` and the places that could not be read.

    A file listed and gone before it was read (compressed, compacted or pruned meanwhile) is no
    damage: the paths are listed and read again.
    """
    paths = list(paths)
    given = {str(Path(path)) for path in paths}  # a path that never existed is no move
    for _ in range(READ_ATTEMPTS):
        sessions, problems = _read(paths, strict)
        if not any(p.vanished for p in problems if p.path not in given):
            break
    if strict and problems:
        raise UnreadableInputError(str(problems[0]))
    return sessions, problems


def _read(paths: list[PathLike], strict: bool) -> tuple[list[SessionTelemetry], list[Problem]]:
    sources, problems = discover(paths)
    if strict and problems:
        return [], problems
    sessions: list[SessionTelemetry] = []
    events: list[TelemetryEvent] = []
    for source in sources:
        if source.format in EVENT_FORMATS:
            events.extend(event_lines(source, problems))
        elif source.format in TRANSLATED_FORMATS:
            events.extend(translated_events(source, problems))
        else:
            sessions.extend(session_records(source, problems))
    if strict and problems:
        return [], problems
    sessions.extend(group_events(events))
    sessions.sort(key=lambda s: (s.start_time, s.session_id))
    return sessions, problems


def metadata_keys(sources: Iterable[Source], sessions: int = 1_000) -> set[str]:
    """The metadata keys of the first ``sessions`` sessions in ``sources``: enough to name the usual ones."""
    keys: set[str] = set()
    ignored: list[Problem] = []
    for source in sources:
        if source.format in EVENT_FORMATS or source.format in TRANSLATED_FORMATS:
            read = event_lines if source.format in EVENT_FORMATS else translated_events
            found: Iterable[Any] = (
                e.data.get("metadata") for e in read(source, ignored) if e.event_type == SESSION_STARTED
            )
        else:
            found = (s.metadata for s in session_records(source, ignored))
        for metadata in found:
            keys.update(metadata if isinstance(metadata, dict) else ())
            sessions -= 1
            if sessions <= 0:
                return keys
    return keys


def read_sessions(path: PathLike) -> list[SessionTelemetry]:
    """Sessions from a file or folder of any supported format; bad places are logged."""
    sessions, problems = load_sessions([path])
    for problem in problems:
        log.warning("skipped %s", problem)
    return sessions
