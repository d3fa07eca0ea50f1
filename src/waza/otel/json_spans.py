"""Spans of an OTLP JSON export read straight from the parsed JSON, for mapping.py.

Going through protobuf's JSON parser costs far more than the mapping itself
(a file of exports imports a few thousand spans a second that way); these
objects offer mapping.py what a protobuf span offers it, with the attributes
already turned into Python values. The encoding's rules: ids are hex, 64-bit
integers may be strings, enums may be integers or their names.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from waza.otel.values import SpanError

STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


@dataclass(slots=True)
class Status:
    code: int
    message: str


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class JsonSpan:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status: Status
    attributes: dict[str, Any]
    events: list[SpanEvent]


def resource_spans(document: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(resource attributes, raw spans) of each ``resourceSpans`` entry; ValueError when it has none."""
    found = document.get("resourceSpans")
    if not isinstance(found, list):
        raise ValueError("an OTLP JSON trace export holds resourceSpans")
    groups = []
    for entry in found:
        entry = entry if isinstance(entry, dict) else {}
        resource = attributes((entry.get("resource") or {}).get("attributes"))
        spans = [s for scope in entry.get("scopeSpans") or [] for s in (scope or {}).get("spans") or []]
        groups.append((resource, spans))
    return groups


def span(raw: Any) -> JsonSpan:
    """One span; SpanError when a field cannot be read."""
    if not isinstance(raw, dict):
        raise SpanError("a span that is no JSON object")
    try:
        return _span(raw)
    except SpanError:
        raise
    except (TypeError, ValueError, AttributeError) as error:
        raise SpanError(f"span {str(raw.get('name'))[:40]!r} cannot be read: {error}") from None


def _span(raw: dict[str, Any]) -> JsonSpan:
    status = raw.get("status") or {}
    code = status.get("code", 0)
    return JsonSpan(
        trace_id=_id(raw.get("traceId"), "traceId"),
        span_id=_id(raw.get("spanId"), "spanId"),
        parent_span_id=_id(raw.get("parentSpanId"), "parentSpanId"),
        name=str(raw.get("name") or ""),
        start_time_unix_nano=_integer(raw.get("startTimeUnixNano")),
        end_time_unix_nano=_integer(raw.get("endTimeUnixNano")),
        status=Status(
            STATUS_CODES.get(code, 0) if isinstance(code, str) else int(code),
            str(status.get("message") or ""),
        ),
        attributes=attributes(raw.get("attributes")),
        events=[
            SpanEvent(
                str(e.get("name") or ""), _integer(e.get("timeUnixNano")), attributes(e.get("attributes"))
            )
            for e in raw.get("events") or []
            if isinstance(e, dict)
        ],
    )


def attributes(pairs: Any) -> dict[str, Any]:
    """``[{"key": ..., "value": {"stringValue": ...}}]`` as a plain dict."""
    if not isinstance(pairs, list):
        return {}
    found = {}
    for pair in pairs:
        if isinstance(pair, dict) and "key" in pair:
            wrapped = pair.get("value")
            # Most values are strings: taken without the general case's steps.
            text = wrapped.get("stringValue") if type(wrapped) is dict and len(wrapped) == 1 else None
            found[pair["key"]] = text if text is not None else value(wrapped)
    return found


def value(wrapped: Any) -> Any:
    """An AnyValue in JSON as a Python value."""
    if not isinstance(wrapped, dict) or not wrapped:
        return None
    kind, found = next(iter(wrapped.items()))
    if kind == "stringValue" or kind == "boolValue":
        return found
    if kind == "intValue":
        return _integer(found)
    if kind == "doubleValue":
        return float(found)
    if kind == "arrayValue":
        return [value(item) for item in (found or {}).get("values") or []]
    if kind == "kvlistValue":
        return attributes((found or {}).get("values"))
    if kind == "bytesValue":
        try:
            return base64.b64decode(found).hex()
        except (binascii.Error, TypeError, ValueError):
            return None
    return None


def _id(text: Any, name: str) -> bytes:
    if text in (None, ""):
        return b""
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        raise SpanError(f"{name} {str(text)[:40]!r} is not hex") from None


def _integer(found: Any) -> int:
    try:
        return int(found or 0)
    except (TypeError, ValueError):
        raise SpanError(f"{str(found)[:40]!r} is not an integer") from None
