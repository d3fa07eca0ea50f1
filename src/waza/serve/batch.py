"""The NDJSON batch route's hot path: each line decoded and checked by msgspec.

A batch carries whole events, often thousands a second; msgspec validates a
line several times faster than pydantic, with the same bounds as the JSON
routes (``requests.py``), and encodes the stored line as well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from waza.serve.requests import EARLIEST, MAX_ID, MAX_NAME

EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9_.:-]+$")]


class BatchLine(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: datetime
    event_type: EventType
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
    skill_name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)] | None = None
    data: dict[str, Any] = {}


_decode = msgspec.json.Decoder(BatchLine).decode
encode = msgspec.json.Encoder().encode


def parse(line: bytes, latest: datetime) -> BatchLine:
    """One line as an event, or ValueError saying what is wrong with it."""
    try:
        item = _decode(line)
    except msgspec.DecodeError as error:
        raise ValueError(str(error)) from None
    moment = item.timestamp if item.timestamp.tzinfo else item.timestamp.replace(tzinfo=UTC)
    if not EARLIEST <= moment <= latest:
        raise ValueError(f"impossible timestamp {moment.isoformat()}: not between 2000 and tomorrow")
    item.timestamp = moment.astimezone(UTC)
    return item
