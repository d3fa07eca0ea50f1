"""``waza export --otlp-endpoint``: sessions sent as GenAI traces over OTLP/HTTP.

Sessions go in requests of at most ``spans`` spans, protobuf or JSON, gzipped.
A request the backend could not take for now (connection errors, 408/429/5xx)
is sent again after a backoff that doubles up to ``max_backoff`` (or what
``Retry-After`` asks, within the same bound), until ``deadline`` seconds have
gone; one it refuses (any other 4xx) is reported and not sent again. Spans are
named by the session and their place in it, so a request sent twice gives the
backend the same spans twice, which backends (and ``waza serve``) keep once.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from google.protobuf.message import DecodeError

from waza.errors import WazaError
from waza.model import SessionTelemetry
from waza.otel.otlp import JSON as JSON_MEDIA
from waza.otel.otlp import PROTOBUF, to_json
from waza.otel.traces import export_request, session_spans

PROTOCOLS = {"http/protobuf": PROTOBUF, "http/json": JSON_MEDIA}
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
SPANS_PER_REQUEST = 2_000


class ExportError(WazaError):
    """The backend refused a request, or stayed unreachable past the deadline."""


@dataclass
class SendResult:
    sessions: int = 0
    spans: int = 0
    requests: int = 0
    retries: int = 0
    rejected: int = 0  # spans the backend said it did not take (partial success)
    messages: list[str] = field(default_factory=list)


@dataclass
class OtlpSender:
    endpoint: str  # the full URL, e.g. http://127.0.0.1:4318/v1/traces
    protocol: str = "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=lambda: {"service.name": "waza"})
    spans: int = SPANS_PER_REQUEST
    timeout: float = 30.0
    max_backoff: float = 30.0
    deadline: float = 300.0
    sleep: Callable[[float], None] = time.sleep

    def send(self, sessions: Iterable[SessionTelemetry]) -> SendResult:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        result = SendResult()
        headers = {**self.headers, "content-type": PROTOCOLS[self.protocol], "content-encoding": "gzip"}
        with httpx.Client(headers=headers, timeout=self.timeout) as client:
            for batch, spans in self._batches(sessions):
                request = export_request([], self.resource)
                request.resource_spans[0].scope_spans[0].spans.extend(spans)
                body = request.SerializeToString() if self.protocol == "http/protobuf" else to_json(request)
                self._post(client, gzip.compress(body, compresslevel=5), result)
                result.sessions += batch
                result.spans += len(spans)
        return result

    def _batches(self, sessions: Iterable[SessionTelemetry]) -> Iterator[tuple[int, list[Any]]]:
        """Whole sessions per request, up to ``spans`` spans (a bigger session goes alone)."""
        spans: list[Any] = []
        count = 0
        for session in sessions:
            own = session_spans(session)
            if spans and len(spans) + len(own) > self.spans:
                yield count, spans
                spans, count = [], 0
            spans.extend(own)
            count += 1
        if spans:
            yield count, spans

    def _post(self, client: httpx.Client, body: bytes, result: SendResult) -> None:
        give_up = time.monotonic() + self.deadline
        delay = 0.5
        while True:
            result.requests += 1
            try:
                reply = client.post(self.endpoint, content=body)
            except httpx.HTTPError as error:
                status, why, wait = None, f"{type(error).__name__}: {error}", None
            else:
                if reply.status_code < 300:
                    self._partial(reply, result)
                    return
                status, why = reply.status_code, f"HTTP {reply.status_code}: {reply.text[:200].strip()}"
                wait = _retry_after(reply.headers.get("retry-after"))
                if status not in RETRY_STATUSES:
                    raise ExportError(f"{self.endpoint} refused the spans ({why})")
            wait = min(self.max_backoff, wait if wait is not None else delay)
            if time.monotonic() + wait > give_up:
                raise ExportError(
                    f"{self.endpoint} did not take the spans within {self.deadline:.0f} s ({why})"
                )
            result.retries += 1
            self.sleep(wait)
            delay = min(self.max_backoff, delay * 2)

    def _partial(self, reply: httpx.Response, result: SendResult) -> None:
        """Spans the backend says it rejected, counted with its message."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        media = reply.headers.get("content-type", "").split(";")[0].strip()
        rejected, message = 0, ""
        try:
            if media == PROTOBUF:
                answer = ExportTraceServiceResponse.FromString(reply.content)
                rejected, message = (
                    answer.partial_success.rejected_spans,
                    answer.partial_success.error_message,
                )
            elif media == JSON_MEDIA and reply.content.strip():
                partial = reply.json().get("partialSuccess") or {}
                rejected, message = int(partial.get("rejectedSpans") or 0), partial.get("errorMessage") or ""
        except (ValueError, AttributeError, DecodeError):
            return  # an answer that does not parse says nothing about rejection
        if rejected:
            result.rejected += rejected
            result.messages.append(message)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
