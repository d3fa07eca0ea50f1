"""The ingest service: HTTP routes that append events to the event log, nothing else.

The server keeps no session state between requests: every call becomes events
in the event log, so any number of replicas can share a load balancer and a
folder. A 2xx answer means the events are on disk (see ``committer.py``).
Routes are plain Starlette endpoints whose bodies msgspec checks against the
structs of ``requests.py``; ``openapi.py`` publishes the same structs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from waza.capture.redact import Redactor
from waza.capture.sampling import SessionSampler
from waza.model import TelemetryEvent
from waza.otel import otlp
from waza.otel.mapping import SKILL_TOOLS
from waza.schema import SESSION_ENDED, SESSION_STARTED
from waza.serve import batch as batch_lines
from waza.serve import openapi
from waza.serve.auth import BearerAuth
from waza.serve.committer import GroupCommitter, PartlyStored
from waza.serve.held import Event, HeldSessions
from waza.serve.limits import BodyLimit
from waza.serve.report import ReportPage
from waza.serve.requests import (
    CLOCK_SKEW,
    MAX_BATCH_LINES,
    BatchResult,
    ErrorBody,
    EventIn,
    Health,
    Refusal,
    SessionEnd,
    SessionStart,
    SessionStarted,
    decode,
    session_id,
)
from waza.store.codec import fast_line

MAX_BODY_BYTES = 4 * 2**20
_ACCEPTED = b'{"ok":true}'


@dataclass
class Settings:
    directory: Path
    token: str | None = None
    sample_rate: float = 1.0
    keep_errors: bool = True  # a failed session the sample left out is stored (see held.py)
    redact: bool = True
    max_body_bytes: int = MAX_BODY_BYTES
    max_body_seconds: float = 30.0
    skill_tools: frozenset[str] = SKILL_TOOLS  # tools whose calls load a skill, in traces


def create_app(settings: Settings) -> Starlette:
    ingest = Ingest(settings)
    schema = _answer(openapi.document(bearer=settings.token is not None))
    health = _answer(Health())
    routes = [
        Route("/telemetry/session/start", ingest.start_session, methods=["POST"]),
        Route("/telemetry/session/{session_id}/event", ingest.record_event, methods=["POST"]),
        Route("/telemetry/session/{session_id}/end", ingest.end_session, methods=["POST"]),
        Route("/telemetry/batch", ingest.batch, methods=["POST"]),
        Route("/v1/traces", ingest.traces, methods=["POST"]),
        Route("/v1/logs", ingest.logs, methods=["POST"]),
        Route("/healthz", lambda request: health, methods=["GET"]),
        Route("/openapi.json", lambda request: schema, methods=["GET"]),
        Route("/report", ReportPage(settings.directory).respond, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=ingest.lifespan,
        exception_handlers={Refusal: _refused, HTTPException: _refused},
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_seconds=settings.max_body_seconds)
    app.add_middleware(BearerAuth, token=settings.token)  # added last: runs first
    return app


class Ingest:
    """The routes' work: sample, redact, and commit events to the event log."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sampler = SessionSampler(settings.sample_rate, settings.keep_errors)
        self.held = HeldSessions()
        self.redactor = Redactor() if settings.redact else None
        self.committer: GroupCommitter | None = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.committer = GroupCommitter(self.settings.directory)
        try:
            yield
        finally:  # on shutdown (Ctrl-C, SIGTERM) everything accepted is committed first
            self.committer.close()

    async def start_session(self, request: Request) -> Response:
        body = decode(await request.body(), SessionStart)
        sid = body.session_id or uuid.uuid4().hex
        data = {"prompt": body.prompt, "metadata": dict(body.metadata)}
        # A session's start and end have one id each, so a client's retry of either counts once.
        started = TelemetryEvent(
            _when(body.timestamp), SESSION_STARTED, body.skill_name, data, sid, f"{sid}.started"
        )
        await self.commit(self.sampled([started]))
        return _answer(SessionStarted(session_id=sid, sampled=self.sampler(sid)))

    async def record_event(self, request: Request) -> Response:
        sid = session_id(request.path_params["session_id"])
        body = decode(await request.body(), EventIn)
        event_id = body.event_id or uuid.uuid4().hex
        event = TelemetryEvent(
            _when(body.timestamp), body.event_type, body.skill_name, body.data, sid, event_id
        )
        await self.commit(self.sampled([event]))
        return Response(_ACCEPTED, media_type="application/json")

    async def end_session(self, request: Request) -> Response:
        sid = session_id(request.path_params["session_id"])
        body = decode(await request.body(), SessionEnd)
        data = {"output": body.output, "success": body.success, "error": body.error}
        ended = TelemetryEvent(_when(body.timestamp), SESSION_ENDED, None, data, sid, f"{sid}.ended")
        await self.commit(self.sampled([ended]))
        return Response(_ACCEPTED, media_type="application/json")

    async def batch(self, request: Request) -> Response:
        lines = (await request.body()).splitlines()
        if len(lines) > MAX_BATCH_LINES:
            raise Refusal(413, f"{len(lines):,} lines; a batch holds at most {MAX_BATCH_LINES:,}")
        latest = datetime.now(UTC) + CLOCK_SKEW
        parsed, rejected = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                parsed.append(batch_lines.parse(line, latest))
            except Refusal as error:
                rejected.append({"line": number, "error": str(error)})
        records = []
        for item in self.sampled(parsed):
            if self.redactor is not None:
                item.data = self.redactor(item.data)
                item.session_id = self.redactor.identifier(item.session_id)
                item.skill_name = item.skill_name and self.redactor.identifier(item.skill_name)
            records.append((item.timestamp.date(), batch_lines.encode(item)))
        if rejected and not parsed:
            raise Refusal(400, "no line of the batch is a valid event", rejected=rejected)
        if records:
            await self.write(records)
        return _answer(BatchResult(accepted=len(records), rejected=rejected))

    async def traces(self, request: Request) -> Response:
        return await self._otlp(request, logs=False)

    async def logs(self, request: Request) -> Response:
        """GenAI content events and other log records of a trace, joined to its session."""
        return await self._otlp(request, logs=True)

    async def _otlp(self, request: Request, *, logs: bool) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            export = otlp.decode(
                await request.body(),
                media,
                request.headers.get("content-encoding"),
                self.settings.max_body_bytes,
                logs=logs,
            )
        except otlp.PayloadError as error:
            raise Refusal(error.status, str(error)) from None
        latest = datetime.now(UTC) + CLOCK_SKEW
        if logs:
            events, rejected, reason = otlp.log_events_of(export, latest)
        else:
            events, rejected, reason = otlp.events_of(export, latest, self.settings.skill_tools)
        await self.commit(self.sampled(events))
        return Response(otlp.answer(media, rejected, reason, logs=logs), media_type=media)

    def sampled(self, events: list[Event]) -> list[Event]:
        """What to store of these events: those of sessions the sample keeps, and, with keep_errors,
        every event held of a session the sample left out once it ends in failure. A kept session's
        start says how it was sampled."""
        if self.sampler.rate >= 1.0:  # the default: every session kept, and none stamped
            return events
        stored: list[Event] = []
        for event in events:
            sid = event.session_id or ""
            if self.sampler(sid):
                stored.append(event)
            elif self.sampler.keep_errors:
                ends = event.event_type == SESSION_ENDED
                failed = ends and event.data.get("success") is False
                stored += self.held.take(sid, event, ends=ends, failed=failed)
        for event in stored:
            if event.event_type == SESSION_STARTED:
                event.data = {**event.data, "metadata": self.sampler.stamp(event.data.get("metadata") or {})}
        return stored

    async def commit(self, events: list[TelemetryEvent]) -> None:
        if not events:
            return
        lines = []
        for event in events:
            record = event.to_dict() if self.redactor is None else self.redactor.record(event.to_dict())
            lines.append((event.timestamp.astimezone(UTC).date(), fast_line(record)))
        await self.write(lines)

    async def write(self, lines: list[tuple[date, bytes]]) -> None:
        """Return once the lines are on disk."""
        assert self.committer is not None, "the lifespan starts the committer"
        try:
            await asyncio.wrap_future(self.committer.submit(lines))
        except PartlyStored as error:
            raise Refusal(
                503,
                f"cannot write the event log ({error.strerror}): {error.stored:,} of the request's "
                f"{error.total:,} events were stored; sending it again is safe for events with an event_id",
            ) from None
        except OSError as error:
            raise Refusal(503, f"cannot write the event log: {error.strerror or error}") from None


async def _refused(request: Request, error: Exception) -> Response:
    if isinstance(error, Refusal):
        return _answer(ErrorBody(error=str(error), **error.details), error.status)
    assert isinstance(error, HTTPException)  # an unknown path or method
    return _answer(ErrorBody(error=error.detail), error.status_code, error.headers)


def _answer(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(value), status, headers, media_type="application/json")


def _when(timestamp: datetime | None) -> datetime:
    return timestamp or datetime.now(UTC)
