"""OTLP values as Python ones: attributes, times, and the JSON strings producers put in attributes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SpanError(ValueError):
    """A span or log record that cannot become events (no trace id, impossible times)."""


def attributes(pairs: Iterable[Any] | dict[str, Any]) -> dict[str, Any]:
    """OTLP ``KeyValue`` pairs as a plain dict (spans read from JSON hold that dict already)."""
    if isinstance(pairs, dict):
        return pairs
    return {pair.key: any_value(pair.value) for pair in pairs}


def any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":  # most attributes
        return value.string_value
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def first(found: dict[str, Any], *names: str) -> Any:
    """The value of the first of ``names`` that is set: the current convention's name, then older ones."""
    for name in names:
        value = found.get(name)
        if value is not None:
            return value
    return None


_decode = msgspec.json.Decoder().decode


def parsed(value: Any) -> Any:
    """Arguments and messages often arrive as a JSON string; keep their structure when they are one."""
    if isinstance(value, str):
        try:
            return _decode(value)
        except (ValueError, RecursionError):  # no JSON (NaN and Infinity are none), or nested past the bound
            return value
    return value


def flat(found: dict[str, Any]) -> dict[str, Any]:
    """Attribute values as event data: nested values become JSON strings (lossy, documented)."""
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in found.items()}


def moment(nanos: int, latest: datetime) -> datetime:
    """A time in nanoseconds since the epoch, refused when it cannot be real."""
    at = EPOCH + timedelta(microseconds=nanos // 1000)
    if nanos <= 0 or at.year < 2000 or at > latest:
        raise SpanError(f"impossible time {nanos} ns since the epoch")
    return at
