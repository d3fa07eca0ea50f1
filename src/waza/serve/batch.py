"""The NDJSON batch route's hot path: each line decoded and checked by msgspec.

A batch carries whole events of the event log, often thousands a second; each
line is checked with the bounds of the JSON routes (``requests.py``) and
encoded again, so what is stored is what was checked.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from waza.serve.requests import EVENT_TYPE_PATTERN, Name, Refusal, SessionId, Timestamp, possible

# msgspec checks a pattern by calling Python's re on every value; event types
# are few and repeat, so each is checked once here instead.
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
_known_types: set[str] = set()
_KNOWN_TYPES_LIMIT = 1024


class BatchLine(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: Timestamp
    event_type: Name
    session_id: SessionId
    skill_name: Name | None = None
    data: dict[str, Any] = {}


_decode = msgspec.json.Decoder(BatchLine).decode
encode = msgspec.json.Encoder().encode


def parse(line: bytes, latest: datetime) -> BatchLine:
    """One line as an event, or a Refusal saying what is wrong with it."""
    try:
        item = _decode(line)
    except (msgspec.DecodeError, RecursionError) as error:
        raise Refusal(422, str(error) or "nested too deeply") from None
    if item.event_type not in _known_types:
        if not _EVENT_TYPE.match(item.event_type):
            raise Refusal(
                422, f"event_type {item.event_type!r}: only letters, digits and _ . : - are allowed"
            )
        if len(_known_types) < _KNOWN_TYPES_LIMIT:
            _known_types.add(item.event_type)
    item.timestamp = possible(item.timestamp, latest)
    return item
