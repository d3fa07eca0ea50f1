"""What the ingest routes accept and answer: every field typed and bounded, unknown fields refused.

The structs are the one definition: msgspec decodes and checks request bodies
against them (strictly: no string is taken for a number) and derives the
published OpenAPI schema from them (``openapi.py``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import msgspec

MAX_ID = 256
MAX_NAME = 128
MAX_TEXT = 256 * 1024
MAX_BATCH_LINES = 10_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)

SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
EventId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_ID,
        description="Unique within the session; an event sent again with the same id is counted once, "
        "so a client may retry whenever an answer is lost.",
    ),
]
# Published as a pattern, checked by check_event_type: msgspec would call Python's
# re on every value, and Python's "$" lets a final newline through.
EVENT_TYPE_PATTERN = "^[A-Za-z0-9_.:-]+$"
EventType = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_NAME, extra_json_schema={"pattern": EVENT_TYPE_PATTERN})
]
_EVENT_TYPE = re.compile("[A-Za-z0-9_.:-]+")
_known_event_types: set[str] = set()  # event types are few and repeat: each is checked once
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Timestamp = Annotated[
    datetime,
    msgspec.Meta(
        description="RFC 3339; UTC when it carries no offset; not before 2000 nor more than a day ahead.",
        extra_json_schema={"format": "date-time"},
    ),
]


RejectedLines = msgspec.Meta(description="Each refused line of a batch: its number and what is wrong.")


class Refusal(Exception):
    """A request the server will not take: its status and what is wrong, in one line."""

    def __init__(self, status: int, message: str, **details: Any):
        super().__init__(message)
        self.status = status
        self.details = details


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class SessionStart(_Strict):
    prompt: Text = ""
    metadata: dict[str, Any] = {}
    session_id: (
        Annotated[SessionId, msgspec.Meta(description="Made up by the server when absent.")] | None
    ) = None
    skill_name: Name | None = None
    timestamp: Timestamp | None = None


class EventIn(_Strict):
    event_type: EventType
    data: dict[str, Any] = {}
    skill_name: Name | None = None
    timestamp: Timestamp | None = None
    event_id: EventId | None = None

    def __post_init__(self) -> None:
        check_event_type(self.event_type)


class SessionEnd(_Strict):
    output: Text = ""
    success: bool = True
    error: Text | None = None
    timestamp: Timestamp | None = None


class SessionStarted(msgspec.Struct):
    session_id: str
    sampled: Annotated[bool, msgspec.Meta(description="False when the sampler left this session out.")]


class Accepted(msgspec.Struct):
    ok: bool = True


class Health(msgspec.Struct):
    status: str = "ok"


class BatchResult(msgspec.Struct):
    accepted: int
    rejected: Annotated[list[dict[str, Any]], RejectedLines]


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """The body of every refusal."""

    error: Annotated[str, msgspec.Meta(description="What is wrong, in one line.")]
    rejected: Annotated[list[dict[str, Any]], RejectedLines] = []


# The refusals every write route can give, published in the OpenAPI schema.
REFUSALS: dict[int, str] = {
    400: "The body is not JSON, or no line of a batch is an event.",
    401: "A bearer token is configured and this one is missing or wrong.",
    413: "The body is larger than the server takes.",
    422: "A field is missing, of the wrong type, unknown or out of bounds.",
    503: "The event log cannot be written. The error says how many of the request's events were "
    "stored before it failed; sending the request again is safe for events that carry an event_id.",
}

Body = TypeVar("Body", SessionStart, EventIn, SessionEnd)
_DECODERS = {kind: msgspec.json.Decoder(kind) for kind in (SessionStart, EventIn, SessionEnd)}


def not_utf8(body: bytes) -> str | None:
    """Why ``body`` is no UTF-8, or None (msgspec tells it from bad JSON in some versions only)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.reason
    return None


def decode(body: bytes, kind: type[Body]) -> Body:
    """The request body as ``kind``, or a Refusal: 400 when it is not JSON, 422 when it does not fit."""
    try:
        item = _DECODERS[kind].decode(body)
    except msgspec.ValidationError as error:
        raise Refusal(422, str(error)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        reason = not_utf8(body)
        if reason is not None:
            raise Refusal(400, f"the body is not valid UTF-8 ({reason})") from None
        raise Refusal(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise Refusal(400, "the JSON body is nested too deeply") from None
    if item.timestamp is not None:
        item.timestamp = possible(item.timestamp, datetime.now(UTC) + CLOCK_SKEW)
    return item


def check_event_type(value: str) -> None:
    """ValueError (which msgspec reports as invalid) unless only letters, digits and _ . : - make it up."""
    if value not in _known_event_types:
        if not _EVENT_TYPE.fullmatch(value):
            raise ValueError(f"event_type {value!r}: only letters, digits and _ . : - are allowed")
        if len(_known_event_types) < 1024:
            _known_event_types.add(value)


def possible(moment: datetime, latest: datetime) -> datetime:
    """The time in UTC (naive means UTC), or a 422 when no event can have happened then."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST <= moment <= latest:
        raise Refusal(422, f"impossible timestamp {moment.isoformat()}: not between 2000 and tomorrow")
    return moment


def session_id(value: str) -> str:
    """A session id taken from the path, bounded as in bodies."""
    if not 1 <= len(value) <= MAX_ID:
        raise Refusal(422, f"session id: {len(value)} characters; at most {MAX_ID}")
    return value
