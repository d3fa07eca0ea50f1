"""A production session as a task in the waza task format, with suggested expectations.

Every expectation here is generated from what the session did, so each one is
named under ``review.suggested`` until a person has looked at it; the task's
``provenance`` leads a failing regression test back to the session, and keeps a
digest of the prompt as recorded, which ``waza check`` matches sessions by: the
task's own prompt may have been redacted on the way.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlparse

from waza.capture.redact import Redactor, has_placeholder
from waza.model import SessionTelemetry, format_time
from waza.tasks.grading import DIGEST_KEY, prompt_digest

# Room over the tool calls a session made before a run counts as a regression.
TOOL_CALL_MARGIN = 1.5
URL = re.compile(r"https?://[^\s\"'<>)\]]+")
# Names of resources in a prompt: words joined by - or _ holding a digit (app-577, rg_prod_2).
RESOURCE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+\b")


def session_task(session: SessionTelemetry, redactor: Redactor | None = None) -> dict[str, Any]:
    """The task a session becomes; with ``redactor``, every text of it is redacted."""
    expected, suggested = suggested_expectations(session)
    context = {k: v for k, v in session.metadata.items() if not k.startswith("sample_")}
    outcome = "succeeded" if session.success and session.completed else "failed"
    task: dict[str, Any] = {
        "id": f"runtime-{session.session_id}",
        "name": f"Runtime session {session.session_id[:8]}",
        "description": f"Captured from runtime on {format_time(session.start_time)}; the session {outcome}"
        + (f": {session.error}" if session.error else "."),
        "inputs": {"prompt": session.prompt, "context": context, "files": [], "environment": {}},
        "expected": expected,
        "graders": [{"type": "expectations", "name": "runtime-behaviour"}],
        "tags": [tag for tag in ("runtime", session.skill_name, outcome) if tag],
        "enabled": True,
        "provenance": {
            "session_id": session.session_id,
            "captured_at": format_time(session.start_time),
            "skill": session.skill_name,
            "sample_rate": _sample_rate(session),
            "succeeded": outcome == "succeeded",
            "error": session.error,
        },
        "review": {"status": "suggested", "suggested": suggested},
    }
    if redactor is not None:
        task = redactor(task)
    if not has_placeholder(session.prompt):  # the prompt as recorded, before redaction here
        task["provenance"][DIGEST_KEY] = prompt_digest(session.prompt)
    return task


def suggested_expectations(session: SessionTelemetry) -> tuple[dict[str, Any], list[str]]:
    """Expectations drawn from the session, and the names of the fields they fill."""
    expected: dict[str, Any] = {}
    behavior: dict[str, Any] = {}
    used = len(session.tool_calls)
    required = succeeded_tools(session)
    if required:
        behavior["required_tools"] = required
    if used:
        behavior["max_tool_calls"] = max(used + 2, math.ceil(used * TOOL_CALL_MARGIN))
    if behavior:
        expected["behavior"] = behavior
    if session.success and session.completed:
        expected["outcomes"] = [{"type": "task_completed"}]
        stable = stable_tokens(session.prompt, session.output)
        if stable:
            expected["output_contains"] = stable
    suggested = [f"expected.behavior.{key}" for key in behavior]
    suggested += [f"expected.{key}" for key in expected if key != "behavior"]
    return expected, suggested


def succeeded_tools(session: SessionTelemetry) -> list[str]:
    """Tools the session used successfully, in order of first use.

    A tool counts when a ``tool.completed`` event says it succeeded; a session
    that records no completions counts its called tools if it succeeded.
    """
    completed = [e.data for e in session.events if e.event_type == "tool.completed"]
    if completed:
        names = [d.get("tool") for d in completed if d.get("success") is True]
    else:
        names = [call.get("tool") for call in session.tool_calls] if session.success else []
    return list(dict.fromkeys(str(name) for name in names if name))


def stable_tokens(prompt: str, output: str) -> list[str]:
    """Tokens of the output a rerun should produce too: URL hosts, and resource names from the prompt."""
    hosts = [urlparse(url).hostname for url in URL.findall(output)]
    names = [name for name in RESOURCE.findall(prompt) if any(c.isdigit() for c in name) and name in output]
    return list(dict.fromkeys(token for token in [*hosts, *names] if token))


def _sample_rate(session: SessionTelemetry) -> float:
    rate = session.metadata.get("sample_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        return 1.0
    return float(rate)
