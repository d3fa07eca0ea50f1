"""OpenTelemetry spans as waza events: the one place the mapping is written down.

Ingest (``waza serve``'s ``/v1/traces``) uses it; an importer or exporter of
traces would use it too, never a second derivation. docs/otel.md gives the
mapping as a table, with what is lossy.

Each span maps on its own, so that spans of one trace may arrive in any
number of requests to any replica: a session is a trace and its id is the
trace id in hex (a ``gen_ai.conversation.id`` or OpenInference ``session.id``
is kept in the metadata as ``conversation_id``). The root span (no parent)
gives ``session.started`` and ``session.ended``; ``execute_tool`` spans give
tool events, inference spans LLM events, ``exception`` span events errors.
A skill loaded in the trace (``gen_ai.skill.name``) is named by its
``skill.invoked`` event, which precedes the root's end, where the agent's
name goes: the fold takes the first skill name in time, so a loaded skill
wins over the agent.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from waza.model import AGENT_INVOKED, SESSION_ENDED, SESSION_STARTED, TOOL_CALLED, TelemetryEvent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS_ERROR = 2
INFERENCE = {"chat", "text_completion", "generate_content", "embeddings"}
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
}
METADATA_PREFIX = "waza.metadata."


class SpanError(ValueError):
    """A span that cannot become events (no trace id, impossible times)."""


def attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    """OTLP ``KeyValue`` pairs as a plain dict."""
    return {pair.key: any_value(pair.value) for pair in pairs}


def any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def span_events(
    span: Any, resource: dict[str, Any], skills: list[Any], latest: datetime
) -> Iterator[TelemetryEvent]:
    """The events one span stands for; ``skills`` are the skill-loading spans of its request."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise SpanError("a span without a trace id")
    session_id = span.trace_id.hex()
    start, end = _moment(span.start_time_unix_nano, latest), _moment(span.end_time_unix_nano, latest)
    if end < start:
        raise SpanError(f"span {span.name!r} ends before it starts")
    found = attributes(span.attributes)
    operation = found.get("gen_ai.operation.name") or _openinference(found)
    failed = span.status.code == STATUS_ERROR
    error = (_raised(span) or span.status.message or found.get("error.type") or "error") if failed else None
    # The exception's type, where the producer names it apart from the message.
    outcome = {"error_type": found.get("error.type")} if failed and found.get("error.type") else {}
    duration_ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6

    # Ids from the span: an exporter that sends the span again (a retry) repeats them.
    numbers = itertools.count()
    span_id = span.span_id.hex()

    def event(moment: datetime, kind: str, data: dict[str, Any], skill: str | None = None) -> TelemetryEvent:
        return TelemetryEvent(moment, kind, skill, data, session_id, f"{span_id}.{next(numbers)}")

    root = not span.parent_span_id
    tree = {"span_id": span_id, "parent_span_id": span.parent_span_id.hex() or None}
    agent = _agent_name(found, operation, root)
    if root:
        data = {"prompt": _prompt(found), "metadata": _metadata(resource, found)}
        if agent is None and operation == "invoke_agent":
            # A root agent span without an agent name (LangGraph names its graph's span so): the
            # session's skill when no agent span says better.
            data["agent"] = span.name.removeprefix("invoke_agent ")
        yield event(start, SESSION_STARTED, data)
    if agent is not None:
        # What ran and whether it failed: bridges leave the root OK and fail this span.
        data = {"agent": agent, "success": not failed, "error": error, "duration_ms": duration_ms} | outcome
        yield event(start, AGENT_INVOKED, data | {"prompt": _prompt(found)} | tree)
    if operation == "execute_tool":
        tool = (
            found.get("gen_ai.tool.name") or found.get("tool.name") or span.name.removeprefix("execute_tool ")
        )
        # OpenInference's tool.parameters is the tool's schema; the call's arguments are input.value.
        arguments = _parsed(_first(found, "gen_ai.tool.call.arguments", "input.value"))
        loaded = _loaded_skill(found, tool, arguments)
        if loaded is not None:
            details = {
                k.removeprefix("gen_ai."): v for k, v in found.items() if k.startswith("gen_ai.skill.")
            }
            yield event(start, "skill.invoked", details | {"skill": loaded} | tree, loaded)
        skill = loaded or _skill_of(span, skills)
        called = {"tool": tool, "args": arguments, "call_id": found.get("gen_ai.tool.call.id")}
        yield event(start, TOOL_CALLED, called | {"type": found.get("gen_ai.tool.type")} | tree, skill)
        result = _first(found, "gen_ai.tool.call.result", "output.value")
        completed = {
            "tool": tool,
            "success": not failed,
            "duration_ms": duration_ms,
            "error": error,
        } | outcome
        yield event(end, "tool.completed", completed | {"result": result} | tree, skill)
    elif "gen_ai.skill.name" in found:
        skill = str(found["gen_ai.skill.name"])
        details = {k.removeprefix("gen_ai."): v for k, v in found.items() if k.startswith("gen_ai.skill.")}
        yield event(start, "skill.invoked", details | tree, skill)
    elif operation in INFERENCE:
        model = _first(found, "gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
        provider = _first(found, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
        tokens = {name: _first(found, *keys) for name, keys in TOKENS.items()}
        request = {
            "model": model,
            "provider": provider,
            "tokens": {k: v for k, v in tokens.items() if v is not None},
            "prompt": _prompt(found) or None,  # the session's prompt when no agent span holds one
        }
        yield event(start, "llm.request", request | tree)
        response = {
            "model": model,
            "latency_ms": duration_ms,
            "success": not failed,
            "error": error,
        } | outcome
        yield event(end, "llm.response", response | tree)
    elif not root and agent is None:
        data = {"name": span.name, "duration_ms": duration_ms, "attributes": _flat(found)}
        yield event(start, "otel.span", data | tree)
    for span_event in span.events:
        details = attributes(span_event.attributes)
        moment = _moment(span_event.time_unix_nano, latest)
        if span_event.name == "exception":
            data = {"error_type": details.get("exception.type"), "message": details.get("exception.message")}
            yield event(moment, "error", data | tree)
        else:
            yield event(moment, span_event.name or "otel.event", _flat(details))
    if root:
        data = {
            "output": _text(found, "gen_ai.output.messages", "output.value"),
            "success": not failed,
            "error": error,
        }
        yield event(end, SESSION_ENDED, data)


def log_event(record: Any, latest: datetime) -> TelemetryEvent:
    """The event a log record stands for: GenAI content events (``gen_ai.*`` event names) and any
    other record of a trace, joined to its session by the trace id."""
    if len(record.trace_id) != 16 or not any(record.trace_id):
        raise SpanError("a log record without a trace id")
    moment = _moment(record.time_unix_nano or record.observed_time_unix_nano, latest)
    found = attributes(record.attributes)
    name = record.event_name or str(found.pop("event.name", "") or "otel.log")
    data = _flat(found)
    if record.HasField("body"):
        body = any_value(record.body)
        data["body"] = json.dumps(body) if isinstance(body, dict | list) else body
        if name == "gen_ai.user.message" and isinstance(body, dict):  # the older per-message events
            found.setdefault("gen_ai.input.messages", [{"role": "user", **body}])
    prompt = _prompt(found) if "gen_ai.input.messages" in found else ""
    span_id = record.span_id.hex() or None
    extra = {"prompt": prompt or None, "span_id": span_id, "severity": record.severity_text or None}
    # No id on the wire: the record's own bytes name it, so an exporter's retry repeats the id.
    digest = hashlib.sha256(record.SerializeToString(deterministic=True)).hexdigest()[:24]
    return TelemetryEvent(moment, name, None, data | extra, record.trace_id.hex(), f"log-{digest}")


def _raised(span: Any) -> str | None:
    """The exception a span recorded, as "Type: message": a status message may be any text (a
    repr with its traceback, say), and the same exception then reads as the same error everywhere."""
    for span_event in span.events:
        if span_event.name == "exception":
            details = attributes(span_event.attributes)
            kind, message = details.get("exception.type"), details.get("exception.message")
            return f"{kind}: {message}" if kind and message else (message or kind)
    return None


def _agent_name(found: dict[str, Any], operation: str | None, root: bool) -> str | None:
    """The name of an agent invocation span (GenAI invoke_agent, OpenInference AGENT, or a named root).

    Bridges also write an agent name on spans that are no invocation (the OpenAI
    Agents bridge puts a generic one on its model and tool spans): those are not agents.
    """
    if operation != "invoke_agent" and not root:
        return None
    name = _first(found, "gen_ai.agent.name", "agent.name")
    return str(name) if name is not None else None


def _loaded_skill(found: dict[str, Any], tool: str, arguments: Any) -> str | None:
    """The skill a tool call loads: ``gen_ai.skill.name`` on it, or a skill-loading tool's argument."""
    if found.get("gen_ai.skill.name") is not None:
        return str(found["gen_ai.skill.name"])
    if tool in SKILL_TOOLS and isinstance(arguments, dict):
        named = _first(arguments, *SKILL_ARGUMENTS)
        return str(named) if isinstance(named, str | int) and str(named) else None
    return None


def _openinference(found: dict[str, Any]) -> str | None:
    kind = str(found.get("openinference.span.kind", "")).upper()
    return {"TOOL": "execute_tool", "LLM": "chat", "AGENT": "invoke_agent"}.get(kind)


def _skill_of(span: Any, skills: list[Any]) -> str | None:
    """The skill loaded last, under the same parent, before this span started."""
    earlier = [
        s
        for s in skills
        if s.trace_id == span.trace_id
        and s.parent_span_id == span.parent_span_id
        and s.start_time_unix_nano <= span.start_time_unix_nano
        and s is not span
    ]
    if not earlier:
        return None
    chosen = max(earlier, key=lambda s: s.start_time_unix_nano)
    return str(attributes(chosen.attributes)["gen_ai.skill.name"])


def _metadata(resource: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    metadata = _flat(resource)
    metadata.update(
        {k.removeprefix(METADATA_PREFIX): v for k, v in _flat(found).items() if k.startswith(METADATA_PREFIX)}
    )
    conversation = found.get("gen_ai.conversation.id") or found.get("session.id")
    if conversation is not None:
        metadata["conversation_id"] = str(conversation)
    if "user.id" in found:
        metadata["user_id"] = str(found["user.id"])
    return metadata


USER_ROLES = ("user", "human")


def _prompt(found: dict[str, Any]) -> str:
    """The first user message's text, from GenAI messages or OpenInference's input; else the raw input."""
    raw = _first(found, "gen_ai.input.messages", "input.value")
    messages = _parsed(raw)
    if isinstance(messages, dict):
        messages = messages.get("messages", messages.get("input"))
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, list) and len(message) == 2 and message[0] in USER_ROLES:
                return str(message[1])  # LangChain's ("user", "text") pairs
            if isinstance(message, dict) and "data" in message and message.get("type") == "human":
                message = {"role": "user", **message["data"]}  # LangChain's serialised messages
            if isinstance(message, dict) and message.get("role") in USER_ROLES:
                return _message_text(message)
    if isinstance(messages, str):
        return messages
    return "" if raw is None else raw if isinstance(raw, str) else json.dumps(raw)


def _message_text(message: dict[str, Any]) -> str:
    """A message's text: the GenAI ``parts`` of type text, or an older plain ``content``."""
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [str(p.get("content", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(texts)
    content = message.get("content")
    if isinstance(content, list):  # content blocks, as the OpenAI APIs send them
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict) and "text" in c)
    return "" if content is None else str(content)


def _text(found: dict[str, Any], *names: str) -> str:
    value = _first(found, *names)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _first(found: dict[str, Any], *names: str) -> Any:
    return next((found[name] for name in names if found.get(name) is not None), None)


def _parsed(value: Any) -> Any:
    """Tool arguments arrive as a JSON string; keep their structure when they are one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _flat(found: dict[str, Any]) -> dict[str, Any]:
    """Attribute values as event data: nested values become JSON strings (lossy, documented)."""
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in found.items()}


def _moment(nanos: int, latest: datetime) -> datetime:
    moment = EPOCH + timedelta(microseconds=nanos // 1000)
    if nanos <= 0 or moment.year < 2000 or moment > latest:
        raise SpanError(f"impossible time {nanos} ns since the epoch")
    return moment
