"""A production session as a task in the waza runner's format, with suggested graders.

Every grader here is drawn from what the session did, so each one is named
under ``review.suggested`` in the task's provenance record until a person has
looked at it; the record leads a failing regression test back to the session,
and keeps a digest of the prompt as recorded, which ``waza check`` matches
sessions by: the task's own prompt may have been redacted on the way.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any
from urllib.parse import urlparse

from waza.capture.redact import Redactor, has_placeholder
from waza.model import SessionTelemetry, format_time
from waza.schema import LLM_REQUEST, TOOL_COMPLETED
from waza.tasks.grading import DIGEST_KEY, prompt_digest
from waza.tasks.mocks import MCP_CALLS, command_mocks, mcp_calls

# Room over the tool calls a session made before a run counts as a regression.
TOOL_CALL_MARGIN = 1.5
URL = re.compile(r"https?://[^\s\"'<>)\]]+")
# Names of resources in a prompt: words joined by - or _ holding a digit (app-577, rg_prod_2).
RESOURCE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+\b")


def session_task(
    session: SessionTelemetry, redactor: Redactor | None = None, *, mocks: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task a session becomes, in the waza runner's format, and its provenance record.

    The task holds only what waza's task format allows: the session's outcome
    and the review status are in its tags and description, and the rest (the
    session it came from, the digest of its prompt, the suggestions to review)
    in the record, which ``write_suite`` keeps beside the suite. With
    ``redactor``, every text of both is redacted. With ``mocks``, the command-line
    tools the session called are answered as they were (``command_mocks``).
    """
    expected = suggested_expectations(session)
    graders = suggested_graders(session)
    context = {k: v for k, v in session.metadata.items() if not k.startswith("sample_")}
    outcome = "succeeded" if session.success and session.completed else "failed"
    task: dict[str, Any] = {
        "id": f"runtime-{session.session_id}",
        "name": f"Runtime session {session.session_id[:8]}",
        "description": f"Captured from runtime on {format_time(session.start_time)}; the session {outcome}"
        + (f": {session.error}" if session.error else ".")
        + " Its graders are suggestions drawn from what it did: review them.",
        "tags": [tag for tag in ("runtime", session.skill_name, outcome, "suggested") if tag],
        "enabled": True,
        "inputs": {"prompt": session.prompt, "context": context},
        "expected": expected,
        "graders": graders,
    }
    answers = command_mocks(session) if mocks else []
    if answers:
        task["command_mocks"] = answers
    record: dict[str, Any] = {
        "session_id": session.session_id,
        "captured_at": format_time(session.start_time),
        "skill": session.skill_name,
        "sample_rate": _sample_rate(session),
        "succeeded": outcome == "succeeded",
        "error": session.error,
        "model": _model(session),
        "review": {"status": "suggested", "suggested": [grader["name"] for grader in graders]},
    }
    calls = mcp_calls(session) if mocks else []
    if calls:  # the suite's mcp_mocks are drawn from these; not kept in provenance.yaml
        record[MCP_CALLS] = calls
    if redactor is not None:
        task, record = redactor(task), redactor(record)
    if not has_placeholder(session.prompt):  # the prompt as recorded, before redaction here
        record[DIGEST_KEY] = prompt_digest(session.prompt)
    return task, record


def suggested_graders(session: SessionTelemetry) -> list[dict[str, Any]]:
    """waza graders a rerun of the session should pass, from what the session did."""
    graders: list[dict[str, Any]] = [{"type": "behavior", "name": "tool-budget", "config": _budget(session)}]
    if session.success and session.completed:
        sequence = succeeded_sequence(session)
        if sequence:
            config = {"matching_mode": "in_order_match", "expected_actions": sequence}
            graders.append({"type": "action_sequence", "name": "tool-order", "config": config})
        stable = stable_tokens(session.prompt, session.output)
        if stable:
            graders.append({"type": "text", "name": "output-mentions", "config": {"contains": stable}})
    skills = [name for n, name in enumerate(session.skills) if n == 0 or session.skills[n - 1] != name]
    if skills:
        config = {"mode": "in_order", "required_skills": skills, "allow_extra": True}
        graders.append({"type": "skill_invocation", "name": "skills-invoked", "config": config})
    return graders


def suggested_expectations(session: SessionTelemetry) -> dict[str, Any]:
    """The task's ``expected`` (informational in waza, which grades with graders): the same limits."""
    expected: dict[str, Any] = {"behavior": _budget(session)}
    if session.success and session.completed:
        expected["outcomes"] = [{"type": "task_completed"}]
        stable = stable_tokens(session.prompt, session.output)
        if stable:
            expected["output_contains"] = stable
    return expected


def _budget(session: SessionTelemetry) -> dict[str, Any]:
    """Room over the tool calls the session made, and the tools it used successfully."""
    used = len(session.tool_calls)
    budget: dict[str, Any] = {"max_tool_calls": max(used + 2, math.ceil(used * TOOL_CALL_MARGIN))}
    required = succeeded_tools(session)
    if required:
        budget["required_tools"] = required
    return budget


def succeeded_sequence(session: SessionTelemetry) -> list[str]:
    """The tools the session called successfully, in the order it called them, repeats kept."""
    completed = [e.data for e in session.events if e.event_type == TOOL_COMPLETED]
    if completed:
        return [str(d["tool"]) for d in completed if d.get("success") is True and d.get("tool")]
    return [str(call["tool"]) for call in session.tool_calls if call.get("tool")]


def succeeded_tools(session: SessionTelemetry) -> list[str]:
    """Tools the session used successfully, in order of first use.

    A tool counts when a ``tool.completed`` event says it succeeded; a session
    that records no completions counts its called tools if it succeeded.
    """
    completed = [e.data for e in session.events if e.event_type == TOOL_COMPLETED]
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


def _model(session: SessionTelemetry) -> str | None:
    """The LLM model the session asked most often, to run its task with."""
    models = Counter(str(e.data["model"]) for e in session.events
                     if e.event_type == LLM_REQUEST and e.data.get("model"))  # fmt: skip
    return models.most_common(1)[0][0] if models else None


def _sample_rate(session: SessionTelemetry) -> float:
    rate = session.metadata.get("sample_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        return 1.0
    return float(rate)
