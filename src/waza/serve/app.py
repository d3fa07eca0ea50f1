"""The ingest service: HTTP routes that append events to the event log, nothing else.

The server keeps no session state between requests: every call becomes events
in the event log, so any number of replicas can share a load balancer and a
folder. A 2xx answer means the events are on disk (see ``committer.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from waza.capture.redact import Redactor
from waza.capture.sampling import SessionSampler
from waza.model import SESSION_ENDED, SESSION_STARTED, TelemetryEvent
from waza.otel import otlp
from waza.serve import batch as batch_lines
from waza.serve.auth import OPEN_PATHS, BearerAuth
from waza.serve.committer import GroupCommitter
from waza.serve.limits import BodyLimit
from waza.serve.requests import (
    CLOCK_SKEW,
    REFUSALS,
    Accepted,
    BatchResult,
    EventIn,
    Problem,
    SessionEnd,
    SessionPath,
    SessionStart,
    SessionStarted,
)
from waza.store.codec import encode_line

MAX_BODY_BYTES = 4 * 2**20
MAX_BATCH_LINES = 10_000


SETTINGS_VARIABLE = "WAZA_SERVE_SETTINGS"  # how worker processes learn the settings


@dataclass
class Settings:
    directory: Path
    token: str | None = None
    sample_rate: float = 1.0
    redact: bool = True
    max_body_bytes: int = MAX_BODY_BYTES

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "directory": str(self.directory)})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        values = json.loads(text)
        return cls(**{**values, "directory": Path(values["directory"])})


def app_from_environment() -> FastAPI:
    """The app of one worker process, set up by ``waza serve --workers``."""
    return create_app(Settings.from_json(os.environ[SETTINGS_VARIABLE]))


def create_app(settings: Settings) -> FastAPI:
    sampler = SessionSampler(settings.sample_rate)
    redactor = Redactor() if settings.redact else None
    state: dict[str, GroupCommitter] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["committer"] = GroupCommitter(settings.directory)
        try:
            yield
        finally:  # on shutdown (Ctrl-C, SIGTERM) everything accepted is committed first
            state.pop("committer").close()

    app = FastAPI(
        title="waza telemetry ingest",
        version="1",
        description="Append agent-skill telemetry to a waza event log.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BearerAuth, token=settings.token)  # added last: runs first
    if settings.token is not None:
        app.openapi = lambda: _with_bearer(FastAPI.openapi(app))

    async def commit(events: list[TelemetryEvent]) -> None:
        lines = []
        for event in events:
            record = event.to_dict()
            if redactor is not None:
                record["data"] = redactor(record["data"])
            lines.append((event.timestamp.astimezone(UTC).date(), encode_line(record)))
        await write(lines)

    async def write(lines: list[tuple[date, bytes]]) -> None:
        """Return once the lines are on disk."""
        try:
            await asyncio.wrap_future(state["committer"].submit(lines))
        except OSError as error:
            raise HTTPException(503, f"cannot write the event log: {error.strerror or error}") from None

    guarded = {"responses": REFUSALS}

    @app.post("/telemetry/session/start", **guarded)
    async def start_session(body: SessionStart) -> SessionStarted:
        session_id = body.session_id or uuid.uuid4().hex
        if not sampler(session_id):
            return SessionStarted(session_id=session_id, sampled=False)
        metadata = dict(body.metadata)
        if sampler.rate < 1.0:
            metadata["sample_rate"] = sampler.rate
        data = {"prompt": body.prompt, "metadata": metadata}
        await commit(
            [TelemetryEvent(_when(body.timestamp), SESSION_STARTED, body.skill_name, data, session_id)]
        )
        return SessionStarted(session_id=session_id, sampled=True)

    @app.post("/telemetry/session/{session_id}/event", response_model=Accepted, **guarded)
    async def record_event(session_id: SessionPath, body: EventIn) -> Response:
        if sampler(session_id):
            event = TelemetryEvent(
                _when(body.timestamp), body.event_type, body.skill_name, body.data, session_id
            )
            await commit([event])
        return _accepted()

    @app.post("/telemetry/session/{session_id}/end", response_model=Accepted, **guarded)
    async def end_session(session_id: SessionPath, body: SessionEnd) -> Response:
        if sampler(session_id):
            data = {"output": body.output, "success": body.success, "error": body.error}
            await commit([TelemetryEvent(_when(body.timestamp), SESSION_ENDED, None, data, session_id)])
        return _accepted()

    @app.post(
        "/telemetry/batch",
        **guarded,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                "description": f"One event of the event log per line, at most {MAX_BATCH_LINES:,} lines.",
            }
        },
    )
    async def batch(request: Request) -> BatchResult:
        lines = (await request.body()).splitlines()
        if len(lines) > MAX_BATCH_LINES:
            raise HTTPException(413, f"{len(lines):,} lines; a batch holds at most {MAX_BATCH_LINES:,}")
        latest = datetime.now(UTC) + CLOCK_SKEW
        records, rejected = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = batch_lines.parse(line, latest)
            except ValueError as error:
                rejected.append({"line": number, "error": str(error)})
                continue
            if sampler(item.session_id):
                item.data = redactor(item.data) if redactor is not None else item.data
                records.append((item.timestamp.date(), batch_lines.encode(item)))
        if rejected and not records:
            return JSONResponse(
                {"error": "no line of the batch is a valid event", "rejected": rejected}, status_code=400
            )
        if records:
            await write(records)
        return BatchResult(accepted=len(records), rejected=rejected)

    @app.post(
        "/v1/traces",
        responses={**REFUSALS, 415: {"model": Problem, "description": "Neither protobuf nor JSON."}},
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                    otlp.JSON: {"schema": {"type": "object"}},
                },
                "description": "An OTLP ExportTraceServiceRequest; GenAI spans become sessions and events.",
            },
            "responses": {
                "200": {
                    "description": "An ExportTraceServiceResponse, in the request's encoding.",
                    "content": {
                        otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                        otlp.JSON: {"schema": {"type": "object"}},
                    },
                }
            },
        },
    )
    async def traces(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            export = otlp.decode(
                await request.body(), media, request.headers.get("content-encoding"), settings.max_body_bytes
            )
        except otlp.PayloadError as error:
            return JSONResponse({"error": str(error)}, error.status)
        events, rejected, reason = otlp.events_of(export, datetime.now(UTC) + CLOCK_SKEW)
        kept = [event for event in events if sampler(event.session_id or "")]
        if kept:
            await commit(kept)
        return Response(otlp.answer(media, rejected, reason), media_type=media)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        return JSONResponse(
            {"error": problems[0] if problems else "invalid request", "problems": problems}, 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, error: RecursionError) -> JSONResponse:
        return JSONResponse({"error": "the JSON body is nested too deeply"}, 400)

    return app


def _accepted() -> Response:
    """The answer of most writes, its body encoded once."""
    return Response(b'{"ok":true}', media_type="application/json")


def _with_bearer(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, saying that writes need the bearer token."""
    schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if path not in OPEN_PATHS:
                operation["security"] = [{"bearer": []}]
    return schema


def _when(timestamp: datetime | None) -> datetime:
    return timestamp or datetime.now(UTC)


def _problem(item: dict[str, Any]) -> str:
    if item.get("type") == "json_invalid":
        return "the body is not valid JSON"
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
    return f"{where}: {item.get('msg', 'invalid')}"
