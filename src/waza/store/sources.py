"""Finds telemetry files under the given paths and tells their format by content."""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from waza.store.compacted import COMPACTED, each_once, manifest_segments
from waza.store.layout import is_segment

PEEK_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


class Format(StrEnum):
    EVENTS = "events"  # the event log: one event per line
    SESSION_LINES = "session-lines"  # one session object per line
    SESSION_LIST = "session-list"  # a JSON array of sessions
    EXPORT = "export"  # {"exported_at": ..., "sessions": [...]}
    PARQUET = "parquet"  # events compacted by `waza compact`
    DOCUMENT = "document"  # one JSON value over many lines: a session, events, an OTLP export
    OTLP = "otlp"  # OTLP JSON trace and log exports, one per line (the Collector's file exporter)


EVENT_FORMATS = (Format.EVENTS, Format.PARQUET)  # formats holding events, not sessions
# Formats only the Python reader reads; engines read them as an event log it writes.
TRANSLATED_FORMATS = (Format.DOCUMENT, Format.OTLP)


@dataclass(frozen=True)
class Source:
    path: Path  # for a file in an object store, the path part of its URL
    format: Format
    compressed: bool
    size: int
    url: str | None = None  # set for files in an object store, which only Spark reads


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether a path names an object-store prefix (s3a://, gs://, abfss://, hdfs://, file://)."""
    return isinstance(path, str) and "://" in path


@dataclass(frozen=True)
class Problem:
    """A place that could not be read: a whole file (line None) or one line of it."""

    path: str
    line: int | None
    reason: str

    def to_dict(self) -> dict[str, str | int | None]:
        return {"path": self.path, "line": self.line, "reason": self.reason}

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}"

    @property
    def vanished(self) -> bool:
        """A file listed a moment ago and gone now: compressed, compacted or pruned meanwhile."""
        return self.line is None and not os.path.lexists(self.path)


# How often a folder is read again when files moved under the reading (see Problem.vanished).
READ_ATTEMPTS = 10


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Source], list[Problem]]:
    """Every readable telemetry file under ``paths`` (folders recursively), and what was not."""
    sources: list[Source] = []
    problems: list[Problem] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            files = _telemetry_files(root, problems)
        elif root.is_file():
            files = [root]
        else:
            problems.append(Problem(str(root), None, "no such file or folder"))
            continue
        for path in files:
            found = classify(path)
            if isinstance(found, Problem) and found.reason == EMPTY and is_segment(path.name):
                continue  # a segment a writer has just opened: nothing in it yet
            (sources if isinstance(found, Source) else problems).append(found)
    return sources, problems


def _telemetry_files(root: Path, problems: list[Problem]) -> list[Path]:
    """The files of a folder that hold records, each record in exactly one of them (see
    ``compacted.each_once``); hidden files and folders left out."""
    files = [p.as_posix() for p in _walk(root, problems)]
    return [Path(name) for name in each_once(files, _local_manifest)]


def _local_manifest(name: str) -> list[str]:
    try:
        return manifest_segments(Path(name).read_text(encoding="utf-8"))
    except OSError:
        return []


def _walk(root: Path, problems: list[Problem]) -> Iterator[Path]:
    """The files below ``root`` but hidden ones; a folder that cannot be listed is a problem, never
    a silent gap.

    Records move while a store is listed: a segment is compressed beside itself, then compacted
    into Parquet elsewhere, each move writing the new file before the old one goes. So that no
    listing misses a record on the move, each folder is listed twice (a file renamed during one
    listing may be in neither name's place; it is in the second) and folders records move into
    (``compacted``) are listed after those they move from."""
    names: set[str] = set()
    folders: set[str] = set()
    for _ in range(2):
        try:
            with os.scandir(root) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        folders.add(entry.name)
                    elif entry.is_file():
                        names.add(entry.name)
        except OSError as error:
            reason = f"cannot list: {error.strerror or error}"
            problems.append(Problem(str(error.filename or root), None, reason))
            return
    yield from (root / name for name in sorted(names))
    for folder in sorted(folders, key=lambda name: (name == COMPACTED, name)):
        yield from _walk(root / folder, problems)


EMPTY = "empty file"
NOT_TELEMETRY = "not JSON telemetry"  # JSON or text, but of no shape waza knows


def classify(path: Path) -> Source | Problem:
    try:
        size = path.stat().st_size
        with open(path, "rb") as raw:
            head = raw.read(PEEK_BYTES)
        if head.startswith(PARQUET_MAGIC):
            return Source(path, Format.PARQUET, False, size)
        compressed = head.startswith(GZIP_MAGIC)
        if compressed:
            head = _gunzip_head(path)
    except (OSError, EOFError, zlib.error) as exc:
        return Problem(str(path), None, f"cannot read: {exc}")
    found = _format_of(head)
    if isinstance(found, Format):
        return Source(path, found, compressed, size)
    return Problem(str(path), None, found)


def _gunzip_head(path: Path) -> bytes:
    with gzip.open(path, "rb") as stream:
        return stream.read(PEEK_BYTES)


def _format_of(head: bytes) -> Format | str:
    """The format of a file from its first bytes, or the reason it is not telemetry."""
    if b"\x00" in head:
        return "binary file, not telemetry"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A peek may end inside a multi-byte character; anything earlier is not text.
        if exc.start < len(head) - 3:
            return "not UTF-8 text, not telemetry"
        text = head[: exc.start].decode("utf-8")
    text = text.lstrip("\ufeff \t\r\n")
    if not text:
        return EMPTY
    first_line, newline, rest = text.partition("\n")
    if text[0] == "[" and not (_is_json(first_line) and rest.strip()):
        # A document, unless its first line is a whole value; sessions, or else events.
        return Format.DOCUMENT if _lists_events(text) else Format.SESSION_LIST
    record = _json_object(first_line)
    if record is not None:
        return _format_of_record(record) or Format.EVENTS
    if _OTLP_START.match(text):  # an export request longer than the peek
        return Format.OTLP
    if text[0] == "{" and ('"sessions"' in text or not newline):
        # An export over many lines, or one line longer than the peek.
        return Format.EXPORT if '"sessions"' in text else Format.EVENTS
    # A bad first line must not cost the good ones after it. Records of a log start
    # their line; the indented lines of a pretty-printed document are not records.
    for line in rest.split("\n")[:-1]:  # the last piece may be cut by the peek
        found = _format_of_record(_json_object(line) or {}) if line.startswith("{") else None
        if found is not None:
            return found
    if text[0] == "{":
        return Format.DOCUMENT  # one value spread over lines: pretty-printed JSON
    return NOT_TELEMETRY


# The start of a one-line OTLP export (a pretty-printed one breaks the line after its brace).
_OTLP_START = re.compile(r'\{[ \t]*"(resourceSpans|resourceLogs)"[ \t]*:')


def _lists_events(text: str) -> bool:
    """Whether a JSON list holds events rather than sessions, from the first keys that tell."""
    event, session = text.find('"event_type"'), text.find('"start_time"')
    return event >= 0 and (session < 0 or event < session)


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _json_object(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _format_of_record(record: dict) -> Format | None:
    if "resourceSpans" in record or "resourceLogs" in record:
        return Format.OTLP
    if "event_type" in record:
        return Format.EVENTS
    if "sessions" in record:
        return Format.EXPORT
    if "session_id" in record and "start_time" in record:
        return Format.SESSION_LINES
    return None
