"""OTLP/HTTP trace and log payloads: decoding requests, encoding answers, in JSON or protobuf.

OTLP's JSON differs from protobuf's own JSON mapping in one way that matters:
trace and span ids are hex strings, not base64. They are turned into base64
before protobuf's parser reads the document, so both encodings give the same
message.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from waza.model import TelemetryEvent
from waza.otel import json_spans
from waza.otel.logs import log_event
from waza.otel.mapping import SKILL_TOOLS, SkillLoads, span_events
from waza.otel.values import SpanError, attributes

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class PayloadError(ValueError):
    """A body that is not an OTLP trace export; ``status`` is the HTTP answer it deserves."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode(
    body: bytes,
    content_type: str,
    content_encoding: str | None,
    max_bytes: int,
    *,
    logs: bool = False,
) -> Any:
    """The trace (or, with ``logs``, log) export request a body holds."""
    kind = ExportLogsServiceRequest if logs else ExportTraceServiceRequest
    if (content_encoding or "").lower() == "gzip":
        body = _gunzip(body, max_bytes)
    media = content_type.split(";")[0].strip().lower()
    if media == PROTOBUF:
        try:
            return kind.FromString(body)
        except DecodeError as error:
            raise PayloadError(f"not an OTLP protobuf export: {error}") from None
    if media == JSON:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise PayloadError(f"not an OTLP JSON export: {str(error).splitlines()[0]}") from None
        return from_json(document, kind)
    raise PayloadError(f"Content-Type must be {PROTOBUF} or {JSON}", 415)


def from_json(document: Any, kind: type[Any] = ExportTraceServiceRequest) -> Any:
    """An OTLP JSON export already parsed: a request body, or a line of the Collector's file exporter."""
    if not isinstance(document, dict):
        raise PayloadError("an OTLP JSON export is an object")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, kind(), ignore_unknown_fields=True)
    except (ValueError, RecursionError, json_format.ParseError) as error:
        if isinstance(error, PayloadError):
            raise
        raise PayloadError(f"not an OTLP JSON export: {str(error).splitlines()[0]}") from None


def events_of(
    request: ExportTraceServiceRequest, latest: datetime, skill_tools: frozenset[str] = SKILL_TOOLS
) -> tuple[list[TelemetryEvent], int, str]:
    """The events of every span, the number of spans refused, and why the first was."""
    groups = [
        (attributes(group.resource.attributes), [span for scope in group.scope_spans for span in scope.spans])
        for group in request.resource_spans
    ]
    return _events_of(groups, latest, skill_tools)


def json_events_of(
    document: dict[str, Any], latest: datetime, skill_tools: frozenset[str] = SKILL_TOOLS
) -> tuple[list[TelemetryEvent], int, str]:
    """``events_of`` for an export in OTLP's JSON encoding, read without protobuf (see json_spans)."""
    groups: list[tuple[dict[str, Any], list[Any]]] = []
    rejected, reason = 0, ""
    for resource, raw_spans in json_spans.resource_spans(document):
        spans = []
        for raw in raw_spans:
            try:
                spans.append(json_spans.span(raw))
            except SpanError as error:
                rejected += 1
                reason = reason or str(error)
        groups.append((resource, spans))
    events, refused, why = _events_of(groups, latest, skill_tools)
    return events, rejected + refused, reason or why


def _events_of(
    groups: list[tuple[dict[str, Any], list[Any]]], latest: datetime, skill_tools: frozenset[str]
) -> tuple[list[TelemetryEvent], int, str]:
    events: list[TelemetryEvent] = []
    rejected, reason = 0, ""
    for resource, spans in groups:
        read = [(span, attributes(span.attributes)) for span in spans]
        skills = SkillLoads(read)
        for span, found in read:
            try:
                events.extend(span_events(span, found, resource, skills, latest, skill_tools))
            except SpanError as error:
                rejected += 1
                reason = reason or str(error)
    return events, rejected, reason


def log_events_of(
    request: ExportLogsServiceRequest, latest: datetime
) -> tuple[list[TelemetryEvent], int, str]:
    """The events of every log record, the number refused, and why the first was."""
    events: list[TelemetryEvent] = []
    rejected, reason = 0, ""
    for resource_logs in request.resource_logs:
        for scope in resource_logs.scope_logs:
            for record in scope.log_records:
                try:
                    events.append(log_event(record, latest))
                except SpanError as error:
                    rejected += 1
                    reason = reason or str(error)
    return events, rejected, reason


def answer(media: str, rejected: int, reason: str, logs: bool = False) -> bytes:
    """The ExportTraceServiceResponse (or ExportLogsServiceResponse), in the request's encoding."""
    field, name = (
        ("rejected_log_records", "rejectedLogRecords") if logs else ("rejected_spans", "rejectedSpans")
    )
    if media == PROTOBUF:
        response = ExportLogsServiceResponse() if logs else ExportTraceServiceResponse()
        if rejected:
            setattr(response.partial_success, field, rejected)
            response.partial_success.error_message = reason
        return response.SerializeToString()
    partial = {"partialSuccess": {name: str(rejected), "errorMessage": reason}} if rejected else {}
    return json.dumps(partial).encode()


def to_json(message: Any) -> bytes:
    """A message in OTLP's JSON encoding: hex ids, integer enums, camelCase names."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    _base64_ids_to_hex(document)
    return json.dumps(document, separators=(",", ":")).encode()


def _base64_ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _base64_ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _base64_ids_to_hex(item)


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise PayloadError(f"{key} {value[:40]!r} is not hex") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """Gunzip without letting a small body expand past ``max_bytes``."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except (zlib.error, binascii.Error) as error:
        raise PayloadError(f"not gzip: {error}") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise PayloadError(f"the body inflates past {max_bytes:,} bytes", 413)
    return data
