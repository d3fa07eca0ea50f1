"""The event schema, named once: the event types, the token counts an LLM request carries, and the
data fields the metrics read. Capture, the readers, the OTLP mapping, grading and the SQL take
their names from here."""

from __future__ import annotations

from typing import Any

SESSION_STARTED = "session.started"  # data: prompt, metadata
SESSION_ENDED = "session.ended"  # data: output, success, error
SESSION_ABANDONED = "session.abandoned"  # ended by the collector, not the skill: stays incomplete
TOOL_CALLED = "tool.called"  # data: tool, args
TOOL_COMPLETED = "tool.completed"  # data: tool, success, duration_ms, error, result
LLM_REQUEST = "llm.request"  # data: model, tokens
LLM_RESPONSE = "llm.response"  # data: model, latency_ms, error
ERROR = "error"  # data: error_type, message
SKILL_INVOKED = "skill.invoked"  # data: skill_name
# An agent's run, from a trace: its name (the session's skill when none was loaded)
# and its outcome (a failed agent fails the session, whatever the root says).
AGENT_INVOKED = "agent.invoked"

# An LLM request's ``data["tokens"]``: each kind of count under the first of its names present
# (runtimes and SDKs spell input and output three ways). Input counts include cached tokens and
# output counts reasoning tokens, as the GenAI conventions and the OpenAI APIs count them.
TOKEN_NAMES = {
    "input": ("input", "input_tokens", "prompt_tokens"),
    "output": ("output", "output_tokens", "completion_tokens"),
    "cache_read": ("cache_read",),
    "cache_write": ("cache_write",),
    "reasoning": ("reasoning",),
    "total": ("total", "total_tokens"),
}
# A request's total: input plus output where either is given, else its own total, else ``tokens``
# itself when it is a plain number (as ``tokens=812`` records it).

# Every field of an event's ``data`` a figure reads, with the type the engines read it as:
# text (a value of another type becomes its JSON text, never a rejected line) or JSON.
DATA_TYPES = {
    "success": "VARCHAR",
    "metadata": "JSON",
    "limits": "JSON",
    "agent": "VARCHAR",
    "tool": "VARCHAR",
    "duration_ms": "VARCHAR",
    "error": "VARCHAR",
    "model": "VARCHAR",
    "tokens": "JSON",
    "latency_ms": "VARCHAR",
    "error_type": "VARCHAR",
    "message": "VARCHAR",
    "span_id": "VARCHAR",
    "parent_span_id": "VARCHAR",
    "prompt": "VARCHAR",
}


def token_count(tokens: Any, kind: str) -> int:
    """The ``kind`` count ("input", "output", ...) of an LLM request's tokens; 0 when absent."""
    if not isinstance(tokens, dict):
        return 0
    return next((tokens[n] for n in TOKEN_NAMES[kind] if isinstance(tokens.get(n), int)), 0)


def token_total(tokens: Any) -> int:
    """All the tokens of an LLM request (see TOKEN_NAMES)."""
    if isinstance(tokens, int) and not isinstance(tokens, bool):
        return tokens
    split = token_count(tokens, "input") + token_count(tokens, "output")
    return split or token_count(tokens, "total")


def token_sql(column: str, kind: str) -> str:
    """SQL for the ``kind`` count in a JSON ``column`` of tokens, as BIGINT (NULL when absent)."""
    if kind == "total":
        parts = (f"coalesce({_named(column, part)}, 0)" for part in ("input", "output"))
        split = f"nullif({' + '.join(parts)}, 0)"
        return f"coalesce({split}, {_named(column, 'total')}, TRY_CAST({column} AS BIGINT))"
    return _named(column, kind)


def _named(column: str, kind: str) -> str:
    names = ", ".join(f"{column} ->> '{name}'" for name in TOKEN_NAMES[kind])
    return f"TRY_CAST(coalesce({names}) AS BIGINT)"
