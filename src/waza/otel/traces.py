"""waza sessions as OpenTelemetry GenAI traces: mapping.py read backwards, with its names.

A session is one trace whose root is an ``invoke_agent {skill}`` span. Tool calls
become ``execute_tool`` spans, LLM calls ``chat`` spans, agent runs nested
``invoke_agent`` spans and skill loads spans carrying ``gen_ai.skill.*``; errors
are the span's status and ``exception`` events, and any other event a span event
on the root. Reading such a trace back with mapping.py gives the same session,
as far as docs/otel.md says it can.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from waza.model import SessionTelemetry, TelemetryEvent
from waza.otel.mapping import METADATA_PREFIX, OPEN_ATTRIBUTE, SESSION_ATTRIBUTE
from waza.otel.values import EPOCH
from waza.schema import (
    AGENT_INVOKED,
    ERROR,
    LLM_REQUEST,
    LLM_RESPONSE,
    SKILL_INVOKED,
    TOOL_CALLED,
    TOOL_COMPLETED,
    token_count,
)

SCOPE = "waza"
_HEX_ID = re.compile(r"[0-9a-f]{32}")
# Token kinds as the current GenAI conventions name them.
TOKEN_ATTRIBUTES = {
    "input": "gen_ai.usage.input_tokens",
    "output": "gen_ai.usage.output_tokens",
    "cache_read": "gen_ai.usage.cache_read.input_tokens",
    "cache_write": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning": "gen_ai.usage.reasoning.output_tokens",
}
# A request that gives its tokens as one number: the GenAI conventions have no total; OpenInference has.
TOTAL_ATTRIBUTE = "llm.token_count.total"


def export_request(
    sessions: Iterable[SessionTelemetry], resource: dict[str, Any]
) -> ExportTraceServiceRequest:
    """One OTLP export request holding the traces of ``sessions``."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    spans.resource.attributes.extend(_attributes(resource))
    scope = spans.scope_spans.add()
    scope.scope.name = SCOPE
    for session in sessions:
        scope.spans.extend(session_spans(session))
    return request


def trace_id(session_id: str) -> bytes:
    """A 32-hex session id is its trace id; any other is hashed to one (and kept in an attribute)."""
    if _HEX_ID.fullmatch(session_id) and any(c != "0" for c in session_id):
        return bytes.fromhex(session_id)
    return hashlib.sha256(session_id.encode()).digest()[:16]


def session_spans(session: SessionTelemetry) -> list[Span]:
    """The spans of one session's trace, the root first."""
    return _Trace(session).spans()


class _Trace:
    def __init__(self, session: SessionTelemetry):
        self.session = session
        self.trace_id = trace_id(session.session_id)
        self.numbers = 0
        self.root = self._span(
            f"invoke_agent {session.skill_name or 'agent'}", session.start_time, self._end(), None
        )
        self.children: list[Span] = []

    def _end(self) -> datetime:
        """The session's end; an open one ends at its last event (and says it is open)."""
        if self.session.end_time is not None:
            return self.session.end_time
        return max([self.session.start_time, *(e.timestamp for e in self.session.events)])

    def _span(self, name: str, start: datetime, end: datetime, parent: Span | None) -> Span:
        self.numbers += 1
        digest = hashlib.sha256(f"{self.session.session_id}\x00{self.numbers}".encode()).digest()
        span = Span(
            trace_id=self.trace_id,
            span_id=digest[:8],
            name=name,
            kind=Span.SpanKind.SPAN_KIND_INTERNAL,
            start_time_unix_nano=_nanos(start),
            end_time_unix_nano=max(_nanos(end), _nanos(start)),
        )
        if parent is not None:
            span.parent_span_id = parent.span_id
        return span

    def spans(self) -> list[Span]:
        self._root_attributes()
        calls: dict[Any, deque[TelemetryEvent]] = defaultdict(deque)
        requests: dict[Any, deque[TelemetryEvent]] = defaultdict(deque)
        loads_by_span: dict[str, TelemetryEvent] = {}
        for event in self.session.events:
            data = event.data
            if event.event_type == SKILL_INVOKED:
                if data.get("span_id"):  # loaded by a tool call: that call's span says so
                    loads_by_span[str(data["span_id"])] = event
                else:
                    self._skill_span(event)
            elif event.event_type == TOOL_CALLED:
                calls[_call_key(event)].append(event)
            elif event.event_type == TOOL_COMPLETED:
                called = calls[_call_key(event)]
                self._tool_span(called.popleft() if called else None, event, loads_by_span)
            elif event.event_type == LLM_REQUEST:
                requests[_model_key(event)].append(event)
            elif event.event_type == LLM_RESPONSE:
                asked = requests[_model_key(event)]
                self._chat_span(asked.popleft() if asked else None, event)
            elif event.event_type == AGENT_INVOKED:
                self._agent_span(event)
            elif event.event_type == ERROR:
                self._exception(self.root, event.timestamp, data.get("error_type"), data.get("message"))
            else:
                self._event(event)
        for waiting in (*calls.values(), *requests.values()):  # calls that never completed
            for event in waiting:
                if event.event_type == TOOL_CALLED:
                    self._tool_span(event, None, loads_by_span)
                else:
                    self._chat_span(event, None)
        return [self.root, *self.children]

    def _root_attributes(self) -> None:
        session = self.session
        found: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent"}
        if session.skill_name:
            found["gen_ai.agent.name"] = session.skill_name
        if trace_id(session.session_id).hex() != session.session_id:
            found[SESSION_ATTRIBUTE] = session.session_id
        if session.prompt:
            found["gen_ai.input.messages"] = _messages("user", session.prompt)
        if session.output:
            found["gen_ai.output.messages"] = _messages("assistant", session.output)
        for key, value in session.metadata.items():
            found[METADATA_PREFIX + str(key)] = value
        if session.end_time is None:
            found[OPEN_ATTRIBUTE] = True
        self.root.attributes.extend(_attributes(found))
        if session.end_time is not None and not session.success:
            _fail(self.root, session.error or "failed")

    def _tool_span(
        self,
        called: TelemetryEvent | None,
        completed: TelemetryEvent | None,
        loads: dict[str, TelemetryEvent],
    ) -> None:
        first = called or completed
        if first is None:
            return
        data = {**(called.data if called else {}), **(completed.data if completed else {})}
        tool = str(data.get("tool") or "tool")
        end = completed.timestamp if completed else first.timestamp
        span = self._span(f"execute_tool {tool}", first.timestamp, end, self.root)
        found: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
        for name, key in (("gen_ai.tool.call.id", "call_id"), ("gen_ai.tool.type", "type")):
            if data.get(key) is not None:
                found[name] = data[key]
        if called is not None and called.data.get("args") is not None:
            found["gen_ai.tool.call.arguments"] = _json_text(called.data["args"])
        if data.get("result") is not None:
            found["gen_ai.tool.call.result"] = _json_text(data["result"])
        loaded = loads.get(str((called or first).data.get("span_id")))
        if loaded is not None and loaded.skill_name:
            found["gen_ai.skill.name"] = loaded.skill_name
        span.attributes.extend(_attributes(found))
        if completed is not None and completed.data.get("success") is False:
            _fail(span, str(completed.data.get("error") or "failed"))
        self.children.append(span)

    def _chat_span(self, request: TelemetryEvent | None, response: TelemetryEvent | None) -> None:
        first = request or response
        if first is None:
            return
        data = {**(request.data if request else {}), **(response.data if response else {})}
        model = data.get("model")
        span = self._span(
            f"chat {model or ''}".strip(), first.timestamp, (response or first).timestamp, self.root
        )
        found: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        if model is not None:
            found["gen_ai.request.model"] = model
        if data.get("provider") is not None:
            found["gen_ai.provider.name"] = data["provider"]
        tokens = request.data.get("tokens") if request else None
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            found[TOTAL_ATTRIBUTE] = tokens
        for kind, name in TOKEN_ATTRIBUTES.items():
            if isinstance(tokens, dict) and token_count(tokens, kind):
                found[name] = token_count(tokens, kind)
        span.attributes.extend(_attributes(found))
        if response is not None and response.data.get("success") is False:
            _fail(span, str(response.data.get("error") or "failed"))
        self.children.append(span)

    def _agent_span(self, event: TelemetryEvent) -> None:
        data = event.data
        took = data.get("duration_ms")
        end = event.timestamp
        if isinstance(took, int | float) and not isinstance(took, bool) and 0 <= took < 1e12:
            end = event.timestamp + timedelta(milliseconds=took)
        span = self._span(f"invoke_agent {data.get('agent')}", event.timestamp, end, self.root)
        span.attributes.extend(
            _attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": data.get("agent")})
        )
        if data.get("success") is False:
            _fail(span, str(data.get("error") or "failed"))
        self.children.append(span)

    def _skill_span(self, event: TelemetryEvent) -> None:
        """A skill load that was no tool call: a span of its own naming the skill, no operation."""
        skill = event.skill_name or str(event.data.get("skill_name") or "")
        span = self._span(f"load_skill {skill}", event.timestamp, event.timestamp, self.root)
        span.attributes.extend(_attributes({"gen_ai.skill.name": skill}))
        self.children.append(span)

    def _exception(self, span: Span, at: datetime, kind: Any, message: Any) -> None:
        found = {"exception.type": kind, "exception.message": message}
        span.events.add(
            time_unix_nano=_nanos(at),
            name="exception",
            attributes=_attributes({k: v for k, v in found.items() if v is not None}),
        )

    def _event(self, event: TelemetryEvent) -> None:
        found = {k: v for k, v in event.data.items() if k not in ("span_id", "parent_span_id")}
        self.root.events.add(
            time_unix_nano=_nanos(event.timestamp), name=event.event_type, attributes=_attributes(found)
        )


def _call_key(event: TelemetryEvent) -> Any:
    """What pairs a tool call with its completion: the call id, else the span, else the tool."""
    data = event.data
    return data.get("call_id") or data.get("span_id") or ("tool", data.get("tool"))


def _model_key(event: TelemetryEvent) -> Any:
    return event.data.get("span_id") or ("model", event.data.get("model"))


def _fail(span: Span, message: str) -> None:
    span.status.CopyFrom(Status(code=Status.StatusCode.STATUS_CODE_ERROR, message=message))


def _messages(role: str, content: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": content}]}])


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _nanos(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000  # in integers: a float loses microseconds


def _attributes(found: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=_value(value)) for key, value in found.items() if value is not None]


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    return AnyValue(string_value=json.dumps(value, default=str))
