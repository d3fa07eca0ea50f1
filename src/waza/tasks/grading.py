"""Grading recorded sessions against tasks: which session answers a task, and what it got wrong.

A session answers a task when its metadata names the task (``task_id``), or,
failing that, when its prompt has the digest the task recorded of the prompt it
was made from (whitespace aside). A prompt that redaction replaced a value in
no longer tells sessions apart, so it matches nothing. When several sessions
answer, the latest is graded.

A task fails when its session crashed, raised or never ended, whatever its
graders say: a regression test that passes on a broken run is worse than
none. Otherwise it is graded by waza's graders (the suite's and its own, see
``graders.py``): it fails when one fails, and is skipped, never passed, when
one cannot be run from telemetry. A task with no grader of waza's (as earlier
versions of ``waza convert`` wrote them) is graded by its ``expected`` fields.
Iterations are LLM requests; tokens are the input and output tokens those
requests report.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from waza.capture.redact import has_placeholder
from waza.model import ERROR_TYPE_PREFIX, SessionTelemetry
from waza.schema import LLM_REQUEST, token_total
from waza.tasks.graders import GraderResult, run_grader

TASK_KEY = "task_id"  # the metadata key naming the task a session answers
DIGEST_KEY = "prompt_sha256"  # in a task's provenance: the digest of the prompt it was made from
_EXCEPTION = re.compile(ERROR_TYPE_PREFIX + "(.*)", re.S)


@dataclass(frozen=True)
class RunError:
    """Why a run broke: the exception the skill raised, a timeout, or a crash."""

    type: str  # the exception's class name; Timeout, Crash, or Error for an error text
    message: str

    @property
    def reason(self) -> str:
        """The run's failure as a grade's reason."""
        if self.type in ("Timeout", "Crash"):
            return self.message
        if self.type == "Error":
            return f"the session ended with an error: {self.message}"
        return f"the skill raised {self.type}: {self.message}"


@dataclass
class Grade:
    task_id: str
    status: str  # passed, failed or skipped
    session_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    skill: str | None = None
    error: RunError | None = None  # set when the run broke rather than missed an expectation
    results: list[GraderResult] = field(default_factory=list)  # per grader, when waza's graders ran


def prompt_digest(text: str) -> str:
    """The digest a task keeps of the prompt it was made from (whitespace runs count as one space)."""
    return hashlib.sha256(" ".join(str(text).split()).encode("utf-8")).hexdigest()


def task_digest(task: dict[str, Any]) -> str | None:
    """The prompt digest a task answers to: the one recorded at conversion, else its own prompt's."""
    recorded = (task.get("provenance") or {}).get(DIGEST_KEY)
    if isinstance(recorded, str):
        return recorded
    prompt = str(task["inputs"]["prompt"])
    return None if has_placeholder(prompt) else prompt_digest(prompt)


def grade_all(
    tasks: list[dict[str, Any]], sessions: list[SessionTelemetry], failures: dict[str, RunError] | None = None
) -> list[Grade]:
    """A grade per task; ``failures`` are runs known to have broken (a replay that timed out)."""
    by_task: dict[str, SessionTelemetry] = {}
    by_digest: dict[str, SessionTelemetry] = {}
    for session in sorted(sessions, key=lambda s: s.start_time):  # the latest wins
        named = session.metadata.get(TASK_KEY)
        if isinstance(named, str):
            by_task[named] = session
        if not has_placeholder(session.prompt):
            by_digest[prompt_digest(session.prompt)] = session
    grades = []
    for task in tasks:
        task_id = str(task["id"])
        skill = (task.get("provenance") or {}).get("skill")
        if task.get("enabled") is False:
            grades.append(Grade(task_id, "skipped", reasons=["disabled"], skill=skill))
            continue
        digest = task_digest(task)
        session = by_task.get(task_id) or (by_digest.get(digest) if digest else None)
        broken = (failures or {}).get(task_id) or (session and run_error(session))
        if broken:
            sid = session and session.session_id
            grades.append(Grade(task_id, "failed", sid, [broken.reason], skill, broken))
        elif session is None:
            grades.append(Grade(task_id, "failed", None, [_unanswered(digest)], skill))
        elif waza_graders(task):
            grades.append(_graded(task, session, skill))
        else:
            reasons = check(task.get("expected") or {}, session)
            grades.append(
                Grade(task_id, "failed" if reasons else "passed", session.session_id, reasons, skill)
            )
    return grades


def waza_graders(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's graders of waza's own types (earlier versions wrote one named ``expectations``)."""
    return [g for g in task.get("graders") or [] if isinstance(g, dict) and g.get("type") != "expectations"]


def _graded(task: dict[str, Any], session: SessionTelemetry, skill: str | None) -> Grade:
    results = [run_grader(grader, session) for grader in waza_graders(task)]
    failed = [r for r in results if r.passed is False]
    if failed:
        reasons = [f"{r.name} ({r.type}): {r.reason}" for r in failed]
        return Grade(str(task["id"]), "failed", session.session_id, reasons, skill, results=results)
    if any(r.passed is None for r in results):  # what was not checked cannot have passed
        reasons = [f"{r.name} ({r.type}): {r.reason}" for r in results if r.passed is None]
        return Grade(str(task["id"]), "skipped", session.session_id, reasons, skill, results=results)
    return Grade(str(task["id"]), "passed", session.session_id, [], skill, results=results)


def run_error(session: SessionTelemetry) -> RunError | None:
    """How a recorded run broke: it never ended, or it ended with an error."""
    if not session.completed:
        return RunError("Crash", "the session never ended: the skill crashed or was stopped")
    if session.error:
        found = _EXCEPTION.match(session.error)
        return RunError(*found.groups()) if found else RunError("Error", session.error)
    return None


def check(expected: dict[str, Any], session: SessionTelemetry) -> list[str]:
    """Every way the session falls short of ``expected``; empty when it meets it."""
    reasons: list[str] = []
    if not session.success:
        reasons.append("the session ended unsuccessfully")
    output = session.output or ""
    reasons += [
        f"output lacks {text!r}" for text in expected.get("output_contains") or [] if text not in output
    ]
    reasons += [
        f"output contains {text!r}" for text in expected.get("output_not_contains") or [] if text in output
    ]
    called = [str(call.get("tool")) for call in session.tool_calls]
    behavior = expected.get("behavior") or {}
    reasons += [
        f"tool {tool!r} was not called" for tool in behavior.get("required_tools") or [] if tool not in called
    ]
    reasons += [
        f"forbidden tool {tool!r} was called"
        for tool in behavior.get("forbidden_tools") or []
        if tool in called
    ]
    limit = behavior.get("max_tool_calls")
    if limit is not None and len(called) > limit:
        reasons.append(f"{len(called)} tool calls, more than {limit}")
    requests = [e.data for e in session.events if e.event_type == LLM_REQUEST]
    limit = behavior.get("max_iterations")
    if limit is not None and len(requests) > limit:
        reasons.append(f"{len(requests)} LLM requests, more than {limit}")
    limit = behavior.get("max_tokens")
    tokens = sum(_tokens(request) for request in requests)
    if limit is not None and tokens > limit:
        reasons.append(f"{tokens:,} tokens, more than {limit:,}")
    for wanted in expected.get("tool_calls") or []:
        if not any(_matches(wanted, call) for call in session.tool_calls):
            reasons.append("no tool call" + _described(wanted))
    for outcome in expected.get("outcomes") or []:
        kind = outcome.get("type")
        if kind != "task_completed":
            reasons.append(f"outcome type {kind!r} is not one waza check grades")
    return reasons


def _unanswered(digest: str | None) -> str:
    if digest is None:
        return (
            "no recorded session is tagged with this task's id (its prompt was redacted, so it cannot match)"
        )
    return "no recorded session answers this task"


def _tokens(request: dict[str, Any]) -> int:
    return token_total(request.get("tokens"))


def _described(wanted: dict[str, Any]) -> str:
    tool = f" to {wanted['tool']!r}" if "tool" in wanted else ""
    pattern = f" with arguments matching {wanted['pattern']!r}" if "pattern" in wanted else ""
    return tool + pattern


def _matches(wanted: dict[str, Any], call: dict[str, Any]) -> bool:
    if "tool" in wanted and wanted["tool"] != call.get("tool"):
        return False
    pattern = wanted.get("pattern")
    if pattern is None:
        return True
    try:
        return re.search(pattern, json.dumps(call.get("args"), sort_keys=True, default=str)) is not None
    except re.error:
        return False
