"""The published OpenAPI document, derived from the request and answer structs."""

from __future__ import annotations

from typing import Any

import msgspec

from waza.otel import otlp
from waza.serve.auth import OPEN_PATHS
from waza.serve.requests import (
    MAX_BATCH_LINES,
    MAX_ID,
    REFUSALS,
    Accepted,
    BatchResult,
    ErrorBody,
    EventIn,
    Health,
    SessionEnd,
    SessionStart,
    SessionStarted,
)

_REF = "#/components/schemas/{name}"


def document(*, bearer: bool) -> dict[str, Any]:
    """OpenAPI 3.1 for every route; with ``bearer``, writes say they need the token."""
    structs = [SessionStart, EventIn, SessionEnd, SessionStarted, Accepted, BatchResult, ErrorBody, Health]
    _, schemas = msgspec.json.schema_components(structs, ref_template=_REF)
    session = {
        "name": "session_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
    }
    paths = {
        "/telemetry/session/start": {"post": _write("Start a session.", _json(SessionStart), SessionStarted)},
        "/telemetry/session/{session_id}/event": {
            "post": _write("Record one event of a session.", _json(EventIn), Accepted, [session])
        },
        "/telemetry/session/{session_id}/end": {
            "post": _write("End a session.", _json(SessionEnd), Accepted, [session])
        },
        "/telemetry/batch": {
            "post": _write(
                "Append events of the event log, good lines kept and bad ones listed.",
                {
                    "required": True,
                    "description": f"One event of the event log per line, at most {MAX_BATCH_LINES:,} lines.",
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                },
                BatchResult,
            )
        },
        "/v1/traces": {"post": _otlp("trace", "GenAI spans become sessions and events.")},
        "/v1/logs": {
            "post": _otlp("logs", "log records of a trace (GenAI content events) join its session.")
        },
        "/report": {
            "get": {
                "summary": "The HTML report of the server's folder, as `waza report` writes it.",
                "parameters": [
                    {
                        "name": "skill",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
                    },
                    {
                        "name": "days",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 3650},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The report.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **_refusals({404: "No sessions match yet."}),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Whether the server answers.",
                "responses": {"200": {"description": "It does.", "content": _content("Health")}},
            }
        },
    }
    components: dict[str, Any] = {"schemas": schemas}
    if bearer:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in paths.items():
            for operation in operations.values():
                if path not in OPEN_PATHS:
                    operation["security"] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "waza telemetry ingest",
            "version": "1",
            "description": "Append agent-skill telemetry to a waza event log. A 2xx means on disk.",
        },
        "paths": paths,
        "components": components,
    }


def _content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}


def _json(kind: type) -> dict[str, Any]:
    return {"required": True, "content": _content(kind.__name__)}


def _write(
    summary: str, body: dict[str, Any], answer: type, parameters: list | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "requestBody": body}
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {"200": {"description": "Stored.", "content": _content(answer.__name__)}}
    operation["responses"].update(_refusals())
    return operation


def _refusals(extra: dict[int, str] | None = None) -> dict[str, Any]:
    described = {**REFUSALS, **(extra or {})}
    return {
        str(status): {"description": text, "content": _content("ErrorBody")}
        for status, text in described.items()
    }


def _otlp(signal: str, what: str) -> dict[str, Any]:
    both = {
        otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        otlp.JSON: {"schema": {"type": "object"}},
    }
    name = "Trace" if signal == "trace" else "Logs"
    return {
        "summary": f"OTLP/HTTP {signal} export; {what}",
        "requestBody": {
            "required": True,
            "content": both,
            "description": f"An OTLP Export{name}ServiceRequest, protobuf or JSON, gzip allowed.",
        },
        "responses": {
            "200": {
                "description": f"An Export{name}ServiceResponse, in the request's encoding.",
                "content": both,
            },
            **_refusals({415: "Neither protobuf nor JSON."}),
        },
    }
