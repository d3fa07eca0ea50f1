"""OpenTelemetry spans as waza events: the one place the mapping is written down.

Ingest (``waza serve``'s ``/v1/traces``) uses it; an importer or exporter of
traces would use it too, never a second derivation. docs/otel.md gives the
mapping as a table, with what is lossy.

Each span maps on its own, so that spans of one trace may arrive in any
number of requests to any replica: a session is a trace and its id is the
trace id in hex (a ``gen_ai.conversation.id`` or OpenInference ``session.id``
is kept in the metadata as ``conversation_id``). The root span (no parent)
gives ``session.started`` and ``session.ended``; agent spans ``agent.invoked``
(the fold takes a session's outcome and, failing a loaded skill, its skill
from them); ``execute_tool`` spans tool events, and a skill load besides;
inference spans LLM events; ``exception`` span events errors. Every event
keeps its span's id and parent's, and an id of its own made from the span id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from waza.model import TelemetryEvent
from waza.otel.messages import prompt, reply
from waza.otel.values import SpanError, attributes, first, flat, moment, parsed
from waza.schema import (
    AGENT_INVOKED,
    ERROR,
    LLM_REQUEST,
    LLM_RESPONSE,
    SESSION_ENDED,
    SESSION_STARTED,
    SKILL_INVOKED,
    TOOL_CALLED,
    TOOL_COMPLETED,
)

STATUS_ERROR = 2
INFERENCE = {"chat", "text_completion", "generate_content", "embeddings"}
# Attributes naming the skill a tool call loads: the proposed GenAI one, and GitHub Copilot's.
SKILL_ATTRIBUTES = ("gen_ai.skill.name", "github.copilot.tool.parameters.skill_name")
# Tools through which agent runtimes load skills, and the argument naming the skill.
SKILL_TOOLS = frozenset({"load_skill", "skill", "activate_skill", "use_skill", "read_skill"})
SKILL_ARGUMENTS = ("skill", "skill_name", "name")
# Token counts: the GenAI conventions' names, their older ones, and OpenInference's.
TOKENS = {
    "input": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    "output": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"),
    "cache_read": ("gen_ai.usage.cache_read.input_tokens", "llm.token_count.prompt_details.cache_read"),
    "cache_write": ("gen_ai.usage.cache_creation.input_tokens", "llm.token_count.prompt_details.cache_write"),
    "reasoning": ("gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning"),
    "total": ("llm.token_count.total",),
}
METADATA_PREFIX = "waza.metadata."
# Written by `waza export` on a root: the session was still open (no end is read from it), and the
# session id when it is no trace id.
OPEN_ATTRIBUTE = "waza.session.open"
SESSION_ATTRIBUTE = "waza.session.id"


class _Span:
    """One span read once: what every event made from it shares."""

    __slots__ = ("span", "found", "start", "end", "trace_id", "span_id", "parent_span_id", "operation",
                 "root", "_events")  # fmt: skip

    def __init__(self, span: Any, found: dict[str, Any], latest: datetime):
        if len(span.trace_id) != 16 or not any(span.trace_id):
            raise SpanError("a span without a trace id")
        self.span = span
        self.found = found
        self.start = moment(span.start_time_unix_nano, latest)
        self.end = moment(span.end_time_unix_nano, latest)
        if self.end < self.start:
            raise SpanError(f"span {span.name!r} ends before it starts")
        self.trace_id = span.trace_id.hex()
        self.span_id = span.span_id.hex()
        self.parent_span_id = span.parent_span_id.hex() or None
        self.operation = found.get("gen_ai.operation.name") or _openinference(found)
        self.root = self.parent_span_id is None
        self._events = 0

    @property
    def failed(self) -> bool:
        return self.span.status.code == STATUS_ERROR

    @property
    def duration_ms(self) -> float:
        return (self.span.end_time_unix_nano - self.span.start_time_unix_nano) / 1e6

    def outcome(self) -> dict[str, Any]:
        """``success`` and ``error``: the exception the span recorded as "Type: message" (a status
        message may be any text, a repr with its traceback say), else the status message, else
        ``error.type``, which is also kept as the error's type."""
        if not self.failed:
            return {"success": True, "error": None}
        error = _raised(self.span) or self.span.status.message or self.found.get("error.type") or "error"
        kind = self.found.get("error.type")
        return {"success": False, "error": error} | ({"error_type": kind} if kind else {})

    def event(
        self, at: datetime, kind: str, data: dict[str, Any], skill: str | None = None
    ) -> TelemetryEvent:
        """An event of this span, ``data`` (made for it alone) with the span's place in its trace."""
        # Ids from the span: an exporter that sends the span again (a retry) repeats them.
        data["span_id"] = self.span_id
        data["parent_span_id"] = self.parent_span_id
        event_id = f"{self.span_id}.{self._events}"
        self._events += 1
        return TelemetryEvent(at, kind, skill, data, self.trace_id, event_id)


class SkillLoads:
    """The spans of one request that load a skill, by trace and parent: what a tool call served."""

    def __init__(self, spans: Iterable[tuple[Any, dict[str, Any]]]):
        self._loads: dict[tuple[bytes, bytes], list[tuple[int, str]]] = {}
        for span, found in spans:
            if "gen_ai.skill.name" in found:
                loads = self._loads.setdefault((span.trace_id, span.parent_span_id), [])
                loads.append((span.start_time_unix_nano, str(found["gen_ai.skill.name"])))

    def before(self, span: Any) -> str | None:
        """The skill loaded last, under the same parent, before this span started."""
        loads = self._loads.get((span.trace_id, span.parent_span_id))
        earlier = [load for load in loads or () if load[0] <= span.start_time_unix_nano]
        return max(earlier, key=lambda load: load[0])[1] if earlier else None


def span_events(
    span: Any,
    found: dict[str, Any],
    resource: dict[str, Any],
    skills: SkillLoads,
    latest: datetime,
    skill_tools: frozenset[str] = SKILL_TOOLS,
) -> Iterator[TelemetryEvent]:
    """The events one span with attributes ``found`` stands for; ``skills`` are the skill loads of
    its request, ``skill_tools`` the tools whose calls load the skill their arguments name."""
    read = _Span(span, found, latest)
    agent = _agent_name(read)
    if read.root:
        data = {"prompt": prompt(read.found), "metadata": _metadata(resource, read.found)}
        if agent is None and read.operation == "invoke_agent":
            # A root agent span with no agent name (LangGraph names its graph's span so): the
            # session's skill when no agent span names one.
            data["agent"] = span.name.removeprefix("invoke_agent ")
        yield read.event(read.start, SESSION_STARTED, data)
    if agent is not None:
        # What ran and whether it failed: bridges leave the root OK and fail this span.
        data = {"agent": agent, "duration_ms": read.duration_ms, "prompt": prompt(read.found)}
        yield read.event(read.start, AGENT_INVOKED, data | read.outcome())
    if read.operation == "execute_tool":
        yield from _tool_events(read, skills, skill_tools)
    elif "gen_ai.skill.name" in read.found:
        skill = str(read.found["gen_ai.skill.name"])
        yield read.event(read.start, SKILL_INVOKED, _skill_details(read.found), skill)
    elif read.operation in INFERENCE:
        yield from _inference_events(read)
    elif not read.root and agent is None:
        data = {"name": span.name, "duration_ms": read.duration_ms, "attributes": flat(read.found)}
        yield read.event(read.start, "otel.span", data)
    for span_event in span.events:
        details = attributes(span_event.attributes)
        at = moment(span_event.time_unix_nano, latest)
        if span_event.name == "exception":
            data = {"error_type": details.get("exception.type"), "message": details.get("exception.message")}
            yield read.event(at, ERROR, data)
        else:
            yield read.event(at, span_event.name or "otel.event", flat(details))
    if read.root and read.found.get(OPEN_ATTRIBUTE) is not True:
        outcome = read.outcome()
        output = reply(read.found)
        data = {"output": output, "success": outcome["success"], "error": outcome["error"]}
        yield read.event(read.end, SESSION_ENDED, data)


def _tool_events(read: _Span, skills: SkillLoads, skill_tools: frozenset[str]) -> Iterator[TelemetryEvent]:
    found = read.found
    tool = (
        found.get("gen_ai.tool.name")
        or found.get("tool.name")
        or read.span.name.removeprefix("execute_tool ")
    )
    # OpenInference's tool.parameters is the tool's schema; the call's arguments are input.value.
    arguments = parsed(first(found, "gen_ai.tool.call.arguments", "input.value"))
    loaded = _loaded_skill(found, tool, arguments, skill_tools)
    if loaded is not None:  # a skill load is a tool call too, with its own success
        yield read.event(read.start, SKILL_INVOKED, _skill_details(found) | {"skill": loaded}, loaded)
    skill = loaded or skills.before(read.span)
    called = {
        "tool": tool,
        "args": arguments,
        "call_id": found.get("gen_ai.tool.call.id"),
        "type": found.get("gen_ai.tool.type"),
    }
    yield read.event(read.start, TOOL_CALLED, called, skill)
    completed = {
        "tool": tool,
        "duration_ms": read.duration_ms,
        **read.outcome(),
        "result": first(found, "gen_ai.tool.call.result", "output.value"),
    }
    yield read.event(read.end, TOOL_COMPLETED, completed, skill)


def _inference_events(read: _Span) -> Iterator[TelemetryEvent]:
    found = read.found
    model = first(found, "gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
    provider = first(found, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    request = {
        "model": model,
        "provider": provider,
        "tokens": _tokens(found),
        "prompt": prompt(found) or None,  # the session's prompt when no other span holds one
    }
    yield read.event(read.start, LLM_REQUEST, request)
    response = {"model": model, "latency_ms": read.duration_ms, **read.outcome()}
    yield read.event(read.end, LLM_RESPONSE, response)


def _tokens(found: dict[str, Any]) -> dict[str, Any]:
    """Each kind of token count the span gives, by the first of its names that is set."""
    tokens = {}
    for kind, names in TOKENS.items():
        for name in names:
            value = found.get(name)
            if value is not None:
                tokens[kind] = value
                break
    return tokens


def _raised(span: Any) -> str | None:
    for span_event in span.events:
        if span_event.name == "exception":
            details = attributes(span_event.attributes)
            kind, message = details.get("exception.type"), details.get("exception.message")
            return f"{kind}: {message}" if kind and message else (message or kind)
    return None


def _agent_name(read: _Span) -> str | None:
    """The name of an agent invocation span (GenAI invoke_agent, OpenInference AGENT, or a named root).

    Bridges also write an agent name on spans that are no invocation (the OpenAI
    Agents bridge puts a generic one on its model and tool spans): those are not agents.
    """
    if read.operation != "invoke_agent" and not read.root:
        return None
    name = first(read.found, "gen_ai.agent.name", "agent.name")
    return str(name) if name is not None else None


def _loaded_skill(
    found: dict[str, Any], tool: str, arguments: Any, skill_tools: frozenset[str]
) -> str | None:
    """The skill a tool call loads: an attribute naming it, or a skill-loading tool's argument."""
    named = first(found, *SKILL_ATTRIBUTES)
    if named is not None:
        return str(named)
    if tool in skill_tools and isinstance(arguments, dict):
        named = first(arguments, *SKILL_ARGUMENTS)
        return str(named) if isinstance(named, str | int) and str(named) else None
    return None


def _skill_details(found: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("gen_ai."): v for k, v in found.items() if k.startswith("gen_ai.skill.")}


OPENINFERENCE_OPERATIONS = {"TOOL": "execute_tool", "LLM": "chat", "AGENT": "invoke_agent"}


def _openinference(found: dict[str, Any]) -> str | None:
    kind = found.get("openinference.span.kind")
    return None if kind is None else OPENINFERENCE_OPERATIONS.get(str(kind).upper())


def _metadata(resource: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    metadata = flat(resource)
    metadata.update(
        {k.removeprefix(METADATA_PREFIX): v for k, v in flat(found).items() if k.startswith(METADATA_PREFIX)}
    )
    conversation = found.get("gen_ai.conversation.id") or found.get("session.id")
    if conversation is not None:
        metadata["conversation_id"] = str(conversation)
    if "user.id" in found:
        metadata["user_id"] = str(found["user.id"])
    return metadata
