"""What a person asked and was answered, from the message shapes producers record.

GenAI conventions (``gen_ai.input.messages``: roles with typed ``parts``),
older and OpenAI-style messages (``content`` as text or blocks), OpenInference's
``input.value``, and LangChain's ``("user", text)`` pairs and serialised messages.
"""

from __future__ import annotations

import json
from typing import Any

from waza.otel.values import first, parsed

USER_ROLES = ("user", "human")


def prompt(found: dict[str, Any]) -> str:
    """The first user message's text; else the raw input; else empty."""
    raw = first(found, "gen_ai.input.messages", "input.value")
    messages = parsed(raw)
    if isinstance(messages, dict):
        messages = messages.get("messages", messages.get("input"))
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, list) and len(message) == 2 and message[0] in USER_ROLES:
                return str(message[1])
            if isinstance(message, dict) and "data" in message and message.get("type") == "human":
                message = {"role": "user", **message["data"]}
            if isinstance(message, dict) and message.get("role") in USER_ROLES:
                return message_text(message)
    if isinstance(messages, str):
        return messages
    return "" if raw is None else raw if isinstance(raw, str) else json.dumps(raw)


def reply(found: dict[str, Any]) -> str:
    """What was answered: the text of the output messages; else the raw output as text."""
    messages = parsed(first(found, "gen_ai.output.messages"))
    if isinstance(messages, list):
        texts = [message_text(m) for m in messages if isinstance(m, dict)]
        if any(texts):
            return "\n".join(t for t in texts if t)
    return text(found, "gen_ai.output.messages", "output.value")


def message_text(message: dict[str, Any]) -> str:
    """A message's text: the GenAI ``parts`` of type text, or a plain or block ``content``."""
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [str(p.get("content", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(texts)
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict) and "text" in c)
    return "" if content is None else str(content)


def text(found: dict[str, Any], *names: str) -> str:
    """An attribute as text: strings as they are, anything else as JSON."""
    value = first(found, *names)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
