"""``waza import``: JSON logs of any shape, OTLP files and waza's own files into an event log.

Every imported event has an id that its source fixes: the id a line or span
carries, else a digest of the line (or of the event, for files that hold
sessions). Readers count each id of a session once, so importing the same
input again counts nothing twice. What cannot be imported is reported with
its file and line, and never costs the lines around it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from enum import StrEnum
from pathlib import Path
from typing import Any

from waza.capture.redact import Redactor
from waza.interchange.fields import FieldError, FieldMap, line_id
from waza.model import TelemetryEvent, session_events, utc_now
from waza.store.codec import bounded_line, encode_line
from waza.store.folder_sink import FolderSink
from waza.store.reader import (
    CLOCK_SKEW,
    event_lines,
    numbered_lines,
    open_text,
    session_records,
    translated_events,
)
from waza.store.sources import EVENT_FORMATS, TRANSLATED_FORMATS, Format, Problem, Source, classify

# Lines written to the store at a time.
BATCH = 10_000
# Bad lines kept to be shown one by one; past these only their number is kept.
PROBLEMS_SHOWN = 100


class SourceFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"  # JSON lines of any shape, read through a FieldMap
    OTLP = "otlp"  # the OpenTelemetry Collector's file exporter: an export request per line
    WAZA = "waza"  # event logs, compacted stores, exports and session files of any waza version


@dataclass
class ImportResult:
    files: int = 0
    events: int = 0
    skipped: int = 0  # lines, files or records not imported, each a Problem
    problems: list[Problem] = field(default_factory=list)  # the first PROBLEMS_SHOWN of them

    def add(self, problem: Problem) -> None:
        self.skipped += 1
        if len(self.problems) < PROBLEMS_SHOWN:
            self.problems.append(problem)


def import_paths(
    paths: Iterable[str | os.PathLike[str]],
    directory: str | os.PathLike[str],
    *,
    source_format: SourceFormat = SourceFormat.AUTO,
    fields: FieldMap | None = None,
    redact: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import every file under ``paths`` into the event log at ``directory``.

    ``fields`` says where JSON lines keep waza's fields (and turns ``auto`` to JSON lines);
    ``progress`` is told the bytes of input read so far, as reading goes on.
    """
    result = ImportResult()
    redactor = Redactor() if redact else None
    # Segments are left closed for compaction: the writers' background runs or `waza compact`.
    sink = FolderSink(directory, compact=False)
    writer = _Writer(sink, redactor)
    done = 0
    try:
        for path in files_of(paths, result):
            result.files += 1
            problems: list[Problem] = []
            within = functools.partial(_advance, progress, done)
            events = _events(path, source_format, fields, problems, within)
            result.events += writer.write(events)
            for problem in problems:
                result.add(problem)
            done += _size(path)
            if progress:
                progress(done)
        writer.flush()
    finally:
        sink.shutdown()
    return result


def _advance(progress: Callable[[int], None] | None, before: int, read: int) -> None:
    if progress is not None:
        progress(before + read)


def files_of(paths: Iterable[str | os.PathLike[str]], result: ImportResult) -> Iterator[Path]:
    """The files under ``paths``, folders walked in name order, hidden files left out."""
    for given in paths:
        root = Path(given)
        if root.is_file():
            yield root
        elif root.is_dir():
            for folder, folders, names in sorted(os.walk(root)):
                folders[:] = sorted(f for f in folders if not f.startswith("."))
                yield from (Path(folder, n) for n in sorted(names) if not n.startswith("."))
        else:
            result.add(Problem(str(root), None, "no such file or folder"))


def total_bytes(paths: Iterable[str | os.PathLike[str]]) -> int:
    return sum(_size(path) for path in files_of(paths, ImportResult()))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _events(
    path: Path,
    source_format: SourceFormat,
    fields: FieldMap | None,
    problems: list[Problem],
    progress: Callable[[int], Any],
) -> Iterator[TelemetryEvent]:
    found = classify(path)
    if isinstance(found, Problem) and source_format is not SourceFormat.JSONL:
        if source_format is SourceFormat.AUTO and fields is not None and "not JSON telemetry" in found.reason:
            found = Source(path, Format.EVENTS, _gzipped(path), _size(path))
        else:
            problems.append(found)
            return
    source = found if isinstance(found, Source) else Source(path, Format.EVENTS, _gzipped(path), _size(path))
    chosen = source_format
    if chosen is SourceFormat.AUTO:
        chosen = (
            SourceFormat.OTLP
            if source.format is Format.OTLP
            else SourceFormat.JSONL
            if fields is not None
            else SourceFormat.WAZA
        )
    if chosen is SourceFormat.JSONL:
        yield from _mapped_events(source, fields or FieldMap.parse(None), problems, progress)
    elif chosen is SourceFormat.OTLP:
        if source.format is not Format.OTLP:
            problems.append(Problem(str(path), None, "not an OTLP JSON file (resourceSpans or resourceLogs)"))
            return
        yield from translated_events(source, problems)
    elif source.format in EVENT_FORMATS:
        yield from _with_ids(event_lines(source, problems))
    elif source.format in TRANSLATED_FORMATS:
        yield from _with_ids(translated_events(source, problems))
    else:
        for session in session_records(source, problems):
            yield from _with_ids(session_events(session))


def _mapped_events(
    source: Source, fields: FieldMap, problems: list[Problem], progress: Callable[[int], Any]
) -> Iterator[TelemetryEvent]:
    latest = utc_now() + CLOCK_SKEW
    path = str(source.path)
    read = 0
    try:
        with open_text(source) as stream:
            for number, line in numbered_lines(stream, path, problems):
                read += len(line)
                if number % BATCH == 0 and not source.compressed:
                    progress(read)
                if not line.strip():
                    continue
                try:
                    yield fields.event(json.loads(line), line.encode("utf-8", "replace"), latest)
                except json.JSONDecodeError as error:
                    problems.append(Problem(path, number, f"not valid JSON ({error.msg})"))
                except (FieldError, RecursionError) as error:
                    problems.append(Problem(path, number, str(error)))
    except (OSError, EOFError) as error:
        problems.append(Problem(path, None, f"stopped reading: {error}"))


def _with_ids(events: Iterable[TelemetryEvent]) -> Iterator[TelemetryEvent]:
    """Events as they are, those without an id named by a digest of what they hold."""
    for event in events:
        if event.event_id is None:
            event.event_id = line_id(encode_line(event.to_dict()))
        yield event


def _gzipped(path: Path) -> bool:
    try:
        with open(path, "rb") as raw:
            return raw.read(2) == b"\x1f\x8b"
    except OSError:
        return False


class _Writer:
    """Redacts, encodes and appends events to the sink in batches; counts what it wrote."""

    def __init__(self, sink: FolderSink, redactor: Redactor | None):
        self._sink = sink
        self._redactor = redactor
        self._batch: list[tuple[Any, bytes]] = []

    def write(self, events: Iterable[TelemetryEvent]) -> int:
        written = 0
        for event in events:
            record = event.to_dict()
            if self._redactor is not None:
                record = self._redactor.record(record)
            self._batch.append((event.timestamp.astimezone(UTC).date(), bounded_line(record)[0]))
            written += 1
            if len(self._batch) >= BATCH:
                self.flush()
        return written

    def flush(self) -> None:
        if self._batch:
            self._sink.append(self._batch)
            self._batch = []
