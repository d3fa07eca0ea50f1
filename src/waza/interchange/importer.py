"""``waza import``: JSON logs of any shape, OTLP files and waza's own files into an event log.

Every imported event has an id that its source fixes: the id a line or span
carries, else a digest of the line (or of the event, for files that hold
sessions). Readers count each id of a session once, so importing the same
input again counts nothing twice. What cannot be imported is reported with
its file and line, and never costs the lines around it.

Large inputs are cut into pieces at line ends and imported by one process per
core, each writing segments of its own.
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from waza.capture.redact import Redactor
from waza.interchange.fields import FieldError, FieldMap, Stamps, line_id
from waza.model import TelemetryEvent, session_events, utc_now
from waza.store.codec import MAX_READ_LINE_BYTES, encode_line, fast_line
from waza.store.folder_sink import FolderSink
from waza.store.reader import CLOCK_SKEW, event_lines, otlp_events, session_records, translated_events
from waza.store.sources import (
    EVENT_FORMATS,
    NOT_TELEMETRY,
    TRANSLATED_FORMATS,
    Format,
    Problem,
    Source,
    classify,
)

# An event as the event log stores it, and its UTC day (the partition it is written to).
_Dated = tuple[date, dict[str, Any]]
# Lines written to the store at a time.
BATCH = 10_000
# Bad places kept to be shown one by one; past these only their number is kept.
PROBLEMS_SHOWN = 100
# Plain files are read in pieces of about this size, several at once; smaller inputs in this process.
PIECE_BYTES = 32 * 2**20


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

    def merge(self, other: ImportResult) -> None:
        self.events += other.events
        self.skipped += other.skipped
        self.problems += other.problems[: PROBLEMS_SHOWN - len(self.problems)]


@dataclass(frozen=True)
class _Piece:
    """Lines ``first_line``... of a file, from byte ``start`` to ``end`` (None: the whole file)."""

    path: Path
    source_format: SourceFormat
    source: Source
    start: int = 0
    end: int | None = None
    first_line: int = 1

    @property
    def size(self) -> int:
        return (self.end if self.end is not None else self.source.size) - self.start


def import_paths(
    paths: Iterable[str | os.PathLike[str]],
    directory: str | os.PathLike[str],
    *,
    source_format: SourceFormat = SourceFormat.AUTO,
    fields: FieldMap | None = None,
    redact: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ImportResult:
    """Import every file under ``paths`` into the event log at ``directory``.

    ``fields`` says where JSON lines keep waza's fields (and turns ``auto`` to JSON lines);
    ``progress`` is told the bytes of input read so far; ``workers``: processes (default: one per core).
    """
    result = ImportResult()
    pieces: list[_Piece] = []
    for path in files_of(paths, result):
        result.files += 1
        found = _resolve(path, source_format, fields)
        if isinstance(found, Problem):
            result.add(found)
        else:
            pieces += _pieces(found)
    workers = min(workers or os.cpu_count() or 1, len(pieces))
    done = 0
    if workers <= 1 or sum(p.size for p in pieces) <= PIECE_BYTES:
        for piece in pieces:
            result.merge(_import_piece(piece, directory, fields, redact))
            done += piece.size
            if progress:
                progress(done)
        return result
    # Spawned, not forked: the caller may hold threads (a forked child inherits their locks).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [(p, pool.submit(_import_piece, p, directory, fields, redact)) for p in pieces]
        for piece, job in jobs:
            result.merge(job.result())
            done += piece.size
            if progress:
                progress(done)
    return result


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


def _resolve(path: Path, source_format: SourceFormat, fields: FieldMap | None) -> _Piece | Problem:
    """The file as one piece, in the format it is read as; or why it cannot be imported."""
    found = classify(path)
    if isinstance(found, Problem):
        readable = found.reason == NOT_TELEMETRY
        if not (readable and (source_format is SourceFormat.JSONL or fields is not None)):
            return found
        found = Source(path, Format.EVENTS, _gzipped(path), _size(path))
    chosen = source_format
    if chosen is SourceFormat.AUTO:
        if found.format is Format.OTLP:
            chosen = SourceFormat.OTLP
        else:
            chosen = SourceFormat.JSONL if fields is not None else SourceFormat.WAZA
    if chosen is SourceFormat.OTLP and found.format is not Format.OTLP:
        return Problem(str(path), None, "not an OTLP JSON file (no resourceSpans or resourceLogs)")
    return _Piece(path, chosen, found)


def _pieces(whole: _Piece) -> list[_Piece]:
    """A plain file of lines cut at line ends into pieces of about PIECE_BYTES, numbered."""
    line_based = whole.source_format in (SourceFormat.JSONL, SourceFormat.OTLP)
    if not line_based or whole.source.compressed or whole.source.size <= PIECE_BYTES:
        return [whole]
    pieces = []
    start, line = 0, 1
    with open(whole.path, "rb") as stream:
        while start < whole.source.size:
            stream.seek(start + PIECE_BYTES)
            stream.readline()  # to the end of the line the cut falls in
            end = min(stream.tell(), whole.source.size)
            pieces.append(_Piece(whole.path, whole.source_format, whole.source, start, end, line))
            line += _newlines(stream, start, end)
            start = end
    return pieces


def _newlines(stream: BinaryIO, start: int, end: int) -> int:
    stream.seek(start)
    count = 0
    while start < end:
        block = stream.read(min(1 << 24, end - start))
        if not block:
            break
        count += block.count(b"\n")
        start += len(block)
    return count


def _import_piece(
    piece: _Piece, directory: str | os.PathLike[str], fields: FieldMap | None, redact: bool
) -> ImportResult:
    """Import one piece with a sink of this process's own (its segments are named by its pid)."""
    result = ImportResult()
    problems: list[Problem] = []
    # Segments are left closed for compaction: the writers' background runs or `waza compact`.
    sink = FolderSink(directory, compact=False)
    writer = _Writer(sink, Redactor() if redact else None)
    try:
        result.events = writer.write(_records_of(piece, fields, problems))
        writer.flush()
    finally:
        sink.shutdown()
    for problem in problems:
        result.add(problem)
    return result


def _records_of(piece: _Piece, fields: FieldMap | None, problems: list[Problem]) -> Iterator[_Dated]:
    """Each event of the piece as the event log stores it, with its UTC day."""
    if piece.source_format is SourceFormat.JSONL:
        mapping = fields or FieldMap.parse(None)
        stamps = Stamps(utc_now() + CLOCK_SKEW)
        for number, line, record in _records(piece, problems):
            try:
                yield mapping.record(record, line, stamps)
            except (FieldError, RecursionError) as error:
                problems.append(Problem(str(piece.path), number, str(error)))
    else:
        for event in _events(piece, problems):
            yield event.timestamp.astimezone(UTC).date(), event.to_dict()


def _events(piece: _Piece, problems: list[Problem]) -> Iterator[TelemetryEvent]:
    source = piece.source
    if piece.source_format is SourceFormat.OTLP:
        for number, _, record in _records(piece, problems):
            yield from otlp_events(record, str(piece.path), number, problems)
    elif source.format in EVENT_FORMATS:
        yield from _with_ids(event_lines(source, problems))
    elif source.format in TRANSLATED_FORMATS:
        yield from _with_ids(translated_events(source, problems))
    else:
        for session in session_records(source, problems):
            yield from _with_ids(session_events(session))


_decode = msgspec.json.Decoder().decode


def _records(piece: _Piece, problems: list[Problem]) -> Iterator[tuple[int, bytes, Any]]:
    """(line number, line, parsed JSON) of each line of the piece; a line that is no JSON is a problem."""
    path = str(piece.path)
    number = piece.first_line - 1
    try:
        with _open(piece) as stream:
            if piece.start:
                stream.seek(piece.start)
            left = piece.end - piece.start if piece.end is not None else None
            while left is None or left > 0:
                line = stream.readline(MAX_READ_LINE_BYTES)
                if not line:
                    break
                number += 1
                left = None if left is None else left - len(line)
                if len(line) == MAX_READ_LINE_BYTES and not line.endswith(b"\n"):
                    while (rest := stream.readline(MAX_READ_LINE_BYTES)) and not rest.endswith(b"\n"):
                        left = None if left is None else left - len(rest)
                    left = None if left is None else left - len(rest)
                    problems.append(Problem(path, number, "a line too long to read; skipped"))
                    continue
                if not line.strip():
                    continue
                try:
                    yield number, line, _decode(line)
                except (msgspec.DecodeError, RecursionError) as error:
                    problems.append(Problem(path, number, f"not valid JSON ({error})"))
    except (OSError, EOFError) as error:
        problems.append(Problem(path, None, f"stopped reading: {error}"))


def _open(piece: _Piece) -> BinaryIO:
    if piece.source.compressed:
        return gzip.open(piece.path, "rb")  # type: ignore[return-value]
    return open(piece.path, "rb")


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

    def write(self, records: Iterable[_Dated]) -> int:
        written = 0
        redact = self._redactor.record if self._redactor is not None else None
        for day, record in records:
            self._batch.append((day, fast_line(redact(record) if redact else record)))
            written += 1
            if len(self._batch) >= BATCH:
                self.flush()
        return written

    def flush(self) -> None:
        if self._batch:
            self._sink.append(self._batch)
            self._batch = []
