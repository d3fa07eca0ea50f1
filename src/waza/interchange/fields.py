"""Where a JSON log keeps the fields of an event, as ``--map`` says: dotted paths and times.

A log line names its fields its own way; ``--map event_type=event,timestamp=ts`` says
which of its fields holds each of waza's. A field not mapped is looked for under
waza's own name. Times may be epoch seconds, milliseconds, microseconds or
nanoseconds (told apart by size) or ISO 8601 text; a time without a zone is UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

FIELDS = ("event_type", "timestamp", "session_id", "skill_name", "data", "event_id")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FieldError(ValueError):
    """A line that cannot become an event; the message says which field and why."""


@dataclass(frozen=True)
class FieldMap:
    """Which field of a log line holds each of waza's fields; ``session_key`` names the sessions of
    lines that hold no session id."""

    paths: dict[str, str]
    session_key: str | None = None
    _steps: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_steps", {name: tuple(path.split(".")) for name, path in self.paths.items()}
        )

    @classmethod
    def parse(cls, text: str | None, session_key: str | None = None) -> FieldMap:
        """``event_type=event,timestamp=ts``; ValueError saying what is wrong."""
        paths = {name: name for name in FIELDS}
        for pair in (text or "").split(","):
            if not pair.strip():
                continue
            name, equals, path = (part.strip() for part in pair.partition("="))
            if not equals or not path:
                raise ValueError(f"--map takes FIELD=PATH pairs, not {pair.strip()!r}")
            if name not in FIELDS:
                raise ValueError(f"--map: {name!r} is not one of {', '.join(FIELDS)}")
            paths[name] = path
        return cls(paths, session_key.strip() if session_key and session_key.strip() else None)

    def record(self, record: Any, line: bytes, stamps: Stamps) -> tuple[date, dict[str, Any]]:
        """The event one log line holds, as the event log stores it, and its UTC day (``line``: its
        bytes, which name it when it has no id)."""
        if not isinstance(record, dict):
            raise FieldError("not a JSON object")
        event_type = self._get(record, "event_type")
        if event_type in (None, ""):
            raise FieldError(f"no event type at {self.paths['event_type']!r}")
        timestamp = self._get(record, "timestamp")
        if timestamp is None:
            raise FieldError(f"no time at {self.paths['timestamp']!r}")
        session_id = self._get(record, "session_id")
        if session_id in (None, "") and self.session_key is not None:
            session_id = lookup(record, self.session_key)
        if session_id in (None, "") or isinstance(session_id, dict | list):
            raise FieldError(
                f"no session id at {self.paths['session_id']!r}"
                + ("" if self.session_key is None else f" nor at {self.session_key!r}")
                + ": map one with --map session_id=PATH or group lines with --session-key PATH"
            )
        day, text = stamps(timestamp)
        skill = self._get(record, "skill_name")
        event_id = self._get(record, "event_id")
        return day, {
            "timestamp": text,
            "event_type": str(event_type),
            "skill_name": None if skill in (None, "") else str(skill),
            "data": self._data(record),
            "session_id": str(session_id),
            # The line's digest when it names no id: the same line imported again is the same event.
            "event_id": str(event_id) if event_id not in (None, "") else line_id(line),
        }

    def _get(self, record: dict[str, Any], name: str) -> Any:
        """The value of waza's field ``name``: nested keys walked straight, else ``lookup``'s search."""
        steps = self._steps[name]
        if len(steps) == 1:  # a key without dots is where lookup would find it, or nowhere
            return record.get(steps[0])
        value: Any = record
        for key in steps:
            value = value.get(key) if isinstance(value, dict) else None
        return value if value is not None else lookup(record, self.paths[name])

    def _data(self, record: dict[str, Any]) -> dict[str, Any]:
        """The mapped data field; when the line has none, every field not mapped to another."""
        data = self._get(record, "data")
        if data is None:
            mapped = {p.split(".")[0] for name, p in self.paths.items() if name != "data"}
            mapped |= {self.session_key.split(".")[0]} if self.session_key else set()
            return {key: value for key, value in record.items() if key not in mapped}
        return data if isinstance(data, dict) else {"value": data}


def lookup(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted path; a key that itself holds dots (``gen_ai.system``) is found too."""
    if path in record:
        return record[path]
    head, dot, rest = path.partition(".")
    while dot:
        inner = record.get(head)
        if isinstance(inner, dict):
            found = lookup(inner, rest)
            if found is not None:
                return found
        step, dot, rest = rest.partition(".")
        head = f"{head}.{step}"
    return None


class Stamps:
    """Times as the event log writes them (ISO 8601 in UTC, as ``datetime.isoformat``), each with
    its UTC day; refused before 2000 and after ``latest``. Written from the number of
    microseconds, the day's text made once for the times that fall in it, as a log's do."""

    def __init__(self, latest: datetime) -> None:
        self._latest = _micros_of(latest)
        self._days: int | None = None
        self._day = EPOCH.date()
        self._day_text = ""

    def __call__(self, value: Any) -> tuple[date, str]:
        micros = _micros(value)
        if not _EARLIEST <= micros <= self._latest:
            try:
                at = EPOCH + timedelta(microseconds=micros)
            except OverflowError:
                raise FieldError(f"time {value!r} is out of range") from None
            raise FieldError(f"time {str(value)[:40]!r} ({at:%Y-%m-%d}) is before 2000 or in the future")
        days, micros = divmod(micros, _DAY)
        if days != self._days:
            self._days, self._day = days, (EPOCH + timedelta(days=days)).date()
            self._day_text = self._day.isoformat()
        seconds, fraction = divmod(micros, 10**6)
        hours, seconds = divmod(seconds, 3600)
        minutes, seconds = divmod(seconds, 60)
        clock = f"{self._day_text}T{hours:02d}:{minutes:02d}:{seconds:02d}"
        return self._day, f"{clock}.{fraction:06d}+00:00" if fraction else f"{clock}+00:00"


def _micros(value: Any) -> int:
    """Microseconds since the epoch from epoch seconds, milliseconds, microseconds or nanoseconds,
    or ISO text (UTC when it has no zone); FieldError for anything else."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                at = datetime.fromisoformat(text)
            except ValueError:
                raise FieldError(f"time {value[:40]!r} is neither a number nor ISO 8601") from None
            return _micros_of(at.replace(tzinfo=UTC) if at.tzinfo is None else at)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise FieldError(f"time {str(value)[:40]!r} is neither a number nor ISO 8601")
    # Epoch numbers told apart by size: past 10^11 seconds (year 5138) a number is milliseconds, and so on.
    size = abs(value)
    scale = 10**9 if size >= 10**17 else 10**6 if size >= 10**14 else 10**3 if size >= 10**11 else 1
    # Whole numbers in integer arithmetic: a float holds epoch nanoseconds only to 256 ns.
    if isinstance(value, int):
        return value * 10**6 // scale
    if size == float("inf"):
        raise FieldError(f"time {value!r} is out of range")
    return round(value * 1e6 / scale)


def _micros_of(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


_EARLIEST = _micros_of(datetime(2000, 1, 1, tzinfo=UTC))
_DAY = 86_400 * 10**6


def line_id(line: bytes) -> str:
    return "line-" + hashlib.sha256(line.strip()).hexdigest()[:24]
