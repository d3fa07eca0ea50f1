"""The NDJSON batch route's hot path: each line decoded and checked by msgspec.

A batch carries whole events of the event log, often thousands a second; each
line is checked with the bounds of the JSON routes (``requests.py``) and
encoded again, so what is stored is what was checked.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from waza.serve.requests import (
    EventId,
    EventType,
    Name,
    Refusal,
    SessionId,
    Timestamp,
    check_event_type,
    not_utf8,
    possible,
)


class BatchLine(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: Timestamp
    event_type: EventType
    session_id: SessionId
    skill_name: Name | None = None
    data: dict[str, Any] = {}
    event_id: EventId | None = None

    def __post_init__(self) -> None:
        check_event_type(self.event_type)


_decode = msgspec.json.Decoder(BatchLine).decode
encode = msgspec.json.Encoder().encode


def parse(line: bytes, latest: datetime) -> BatchLine:
    """One line as an event, or a Refusal saying what is wrong with it."""
    try:
        item = _decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        reason = not_utf8(line)
        if reason is not None:
            raise Refusal(400, f"not valid UTF-8 ({reason})") from None
        raise Refusal(422, str(error) or "nested too deeply") from None
    item.timestamp = possible(item.timestamp, latest)
    if item.event_id is None:  # without one a retried line cannot be recognised; give it one at least
        item.event_id = uuid.uuid4().hex
    return item
