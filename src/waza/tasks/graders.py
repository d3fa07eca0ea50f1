"""waza's graders, run over a recorded session: the meaning waza's grader docs give each type.

What a session recorded stands in for the run waza would watch: its output,
tool calls in order, skills invoked in order, LLM tokens, duration, errors.
Graders that need a workspace or a model (``file``, ``diff``, ``program``,
``prompt``, ``trigger``) cannot be run from telemetry: they come back not
gradable, with the reason, and never count as passed.

``code`` assertions are Python expressions run in a separate interpreter with
a time limit, over ``output`` (text), ``outcome`` (``{"completed", "success",
"error"}``), ``transcript`` (the session's events as dicts), ``tool_calls``
(``{"tool", "args"}`` dicts), ``errors`` (error texts) and ``duration_ms``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import jsonschema

from waza.model import SessionTelemetry
from waza.schema import ERROR, LLM_REQUEST, TOOL_COMPLETED, token_total

NOT_GRADABLE = {
    "file": "needs the run's workspace",
    "diff": "needs the run's workspace",
    "program": "runs a program against the run's workspace",
    "prompt": "needs a judging model",
    "trigger": "needs the skill's trigger model",
}
CODE_SECONDS = 10.0  # the time all of one grader's assertions may take


@dataclass(frozen=True)
class GraderResult:
    name: str
    type: str
    passed: bool | None  # None: not gradable from telemetry
    score: float
    reason: str = ""


def run_grader(grader: dict[str, Any], session: SessionTelemetry) -> GraderResult:
    kind = str(grader.get("type") or "")
    name = str(grader.get("name") or kind)
    config = grader.get("config") or {}
    if kind in NOT_GRADABLE:
        return GraderResult(name, kind, None, 0.0, f"not gradable from telemetry: {NOT_GRADABLE[kind]}")
    judge = JUDGES.get(kind)
    if judge is None:
        return GraderResult(name, kind, None, 0.0, f"grader type {kind!r} is not one waza check runs")
    passed, score, reason = judge(config, session)
    return GraderResult(name, kind, passed, score, reason)


def tools_called(session: SessionTelemetry) -> list[str]:
    return [str(call.get("tool")) for call in session.tool_calls]


def tokens_used(session: SessionTelemetry) -> int:
    requests = [event.data.get("tokens") for event in session.events if event.event_type == LLM_REQUEST]
    return sum(token_total(tokens) for tokens in requests)


Verdict = tuple[bool, float, str]


def _behavior(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    called = tools_called(session)
    problems = [f"tool {tool!r} was not called" for tool in config.get("required_tools") or []
                if tool not in called]  # fmt: skip
    problems += [f"forbidden tool {tool!r} was called" for tool in config.get("forbidden_tools") or []
                 if tool in called]  # fmt: skip
    limits = (
        ("max_tool_calls", len(called), "tool calls"),
        ("max_tokens", tokens_used(session), "tokens"),
        ("max_duration_ms", session.duration_ms, "ms"),
    )
    for key, value, unit in limits:
        limit = config.get(key)
        if limit is not None and value > limit:
            problems.append(f"{value:,} {unit}, more than {limit:,}")
    checks = len(config.get("required_tools") or []) + len(config.get("forbidden_tools") or [])
    checks += sum(1 for key, _, _ in limits if config.get(key) is not None)
    return _verdict(problems, checks)


def _action_sequence(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    expected = [str(a) for a in config.get("expected_actions") or []]
    return _sequence(expected, tools_called(session), str(config.get("matching_mode")), "tool", True)


def _skill_invocation(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    actual = session.skills
    forbidden = [s for s in config.get("forbidden_skills") or [] if s in actual]
    if forbidden:
        return False, 0.0, f"forbidden skill {forbidden[0]!r} was invoked"
    required = [str(s) for s in config.get("required_skills") or []]
    if not required:
        return True, 1.0, ""
    modes = {"exact_match": "exact_match", "in_order": "in_order_match", "any_order": "any_order_match"}
    allow_extra = config.get("allow_extra", True) is not False
    mode = str(config.get("mode"))
    return _sequence(required, actual, modes.get(mode, mode), "skill", allow_extra, shown=mode)


def _sequence(
    expected: list[str], actual: list[str], mode: str, what: str, allow_extra: bool, shown: str | None = None
) -> Verdict:
    """Whether ``actual`` meets ``expected`` under a matching mode; the score is their F1, as waza scores."""
    matched = sum((Counter(expected) & Counter(actual)).values())
    precision = matched / len(actual) if actual else 0.0
    recall = matched / len(expected) if expected else 1.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if mode == "exact_match":
        passed = actual == expected
    elif mode == "in_order_match":
        remaining = iter(actual)
        passed = all(any(step == seen for seen in remaining) for step in expected)
    elif mode == "any_order_match":
        passed = not Counter(expected) - Counter(actual)
    else:
        return False, 0.0, f"unknown matching mode {mode!r}"
    if passed and not allow_extra and len(actual) > len(expected):
        passed, score = False, score * len(expected) / len(actual)
    reason = "" if passed else f"{what}s {actual} do not match {expected} ({shown or mode})"
    return passed, score, reason


def _text(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    output = session.output or ""
    folded = output.casefold()
    problems = [f"output lacks {t!r}" for t in config.get("contains") or [] if t.casefold() not in folded]
    problems += [f"output contains {t!r}" for t in config.get("not_contains") or [] if t.casefold() in folded]
    problems += [f"output lacks {t!r}" for t in config.get("contains_cs") or [] if t not in output]
    problems += [f"output contains {t!r}" for t in config.get("not_contains_cs") or [] if t in output]
    for pattern in config.get("regex_match") or []:
        if not _search(pattern, output):
            problems.append(f"output does not match {pattern!r}")
    for pattern in config.get("regex_not_match") or []:
        if _search(pattern, output):
            problems.append(f"output matches {pattern!r}")
    checks = sum(
        len(config.get(key) or [])
        for key in (
            "contains",
            "not_contains",
            "contains_cs",
            "not_contains_cs",
            "regex_match",
            "regex_not_match",
        )
    )
    return _verdict(problems, checks)  # fmt: skip


def _tool_calls(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    called = tools_called(session)
    problems = [f"tool {t!r} was not called" for t in config.get("required_tools") or [] if t not in called]
    problems += [
        f"forbidden tool {t!r} was called" for t in config.get("forbidden_tools") or [] if t in called
    ]
    if config.get("min_calls") is not None and len(called) < config["min_calls"]:
        problems.append(f"{len(called)} tool calls, fewer than {config['min_calls']}")
    if config.get("max_calls") is not None and len(called) > config["max_calls"]:
        problems.append(f"{len(called)} tool calls, more than {config['max_calls']}")
    for spec in config.get("expect") or []:
        if isinstance(spec, dict) and not any(
            _call_matches(spec, call, exact=True) for call in session.tool_calls
        ):
            problems.append(f"no call {_described(spec)}")
    return _verdict(problems, max(1, len(problems)))


def _tool_constraint(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    calls = session.tool_calls
    problems = [
        f"no call {_described(spec)}"
        for spec in config.get("expect_tools") or []
        if isinstance(spec, dict) and not any(_call_matches(spec, call) for call in calls)
    ]
    problems += [
        f"a call {_described(spec)}"
        for spec in config.get("reject_tools") or []
        if isinstance(spec, dict) and any(_call_matches(spec, call) for call in calls)
    ]
    allowed = config.get("allow_only")
    if allowed is not None:
        problems += [f"tool {tool!r} is not allowed" for tool in dict.fromkeys(tools_called(session))
                     if tool not in allowed]  # fmt: skip
    checks = (
        len(config.get("expect_tools") or []) + len(config.get("reject_tools") or []) + (allowed is not None)
    )
    return _verdict(problems, checks)


def _call_matches(spec: dict[str, Any], call: dict[str, Any], exact: bool = False) -> bool:
    """Whether a tool call meets a tool spec: its name (a regex found in it, any case; the name itself
    with ``exact``), the command, skill and path patterns, and the argument matchers."""
    tool = str(call.get("tool") or "")
    name = str(spec.get("tool") or "")
    if (tool != name) if exact else not _search(f"(?i){name}", tool):
        return False
    args = call.get("args")
    named = args if isinstance(args, dict) else {}
    command = named.get("command", " ".join(map(str, args)) if isinstance(args, list) else args)
    for key, value in (("command_pattern", command), ("skill_pattern", named.get("skill")),
                       ("path_pattern", named.get("path"))):  # fmt: skip
        if key in spec and (value is None or not _search(str(spec[key]), str(value))):
            return False
    return all(
        key in named and _argument_matches(rule, named[key]) for key, rule in (spec.get("args") or {}).items()
    )


def _argument_matches(rule: dict[str, Any], value: Any) -> bool:
    text = value if isinstance(value, str) else json.dumps(value)
    if "equals" in rule:
        return value == rule["equals"]
    if "regex" in rule:
        return _search(str(rule["regex"]), text)
    if "contains" in rule:
        return str(rule["contains"]) in text
    if "range" in rule:
        bounds = rule["range"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return all(check(value, bounds[key]) for key, check in (
            ("gte", lambda v, b: v >= b), ("lte", lambda v, b: v <= b),
            ("gt", lambda v, b: v > b), ("lt", lambda v, b: v < b)) if key in bounds)  # fmt: skip
    if "json_schema" in rule:
        return not any(jsonschema.Draft202012Validator(rule["json_schema"]).iter_errors(value))
    return False


def _described(spec: dict[str, Any]) -> str:
    details = [
        f"{key} {spec[key]!r}" for key in ("command_pattern", "skill_pattern", "path_pattern") if key in spec
    ]
    details += [f"argument {key!r}" for key in spec.get("args") or {}]
    return f"to {spec.get('tool')!r}" + (f" ({', '.join(details)})" if details else "")


def _json_schema(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    schema = config.get("schema")
    if not isinstance(schema, dict):
        return False, 0.0, "only an inline schema can be checked from telemetry"
    try:
        document = json.loads(session.output or "")
    except ValueError:
        return False, 0.0, "the output is not JSON"
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=lambda e: e.path)
    return _verdict([f"output: {errors[0].message}"] if errors else [], 1)


# Runs in a fresh interpreter: an assertion cannot reach this process, and a hang is cut off.
_CODE_RUNNER = """
import json, sys
scope = json.load(sys.stdin)
failed = []
for assertion in scope.pop("__assertions__"):
    try:
        if not eval(assertion, {"__builtins__": __builtins__}, dict(scope)):
            failed.append([assertion, "is false"])
    except Exception as error:
        failed.append([assertion, f"raised {type(error).__name__}: {error}"])
json.dump(failed, sys.stdout)
"""


def _code(config: dict[str, Any], session: SessionTelemetry) -> Verdict:
    if config.get("language", "python") != "python":
        return False, 0.0, "only Python assertions can be run by waza check"
    assertions = [str(a) for a in config.get("assertions") or []]
    scope = {
        "output": session.output or "",
        "outcome": {"completed": session.completed, "success": session.success, "error": session.error},
        "transcript": [event.to_dict() for event in session.events],
        "tool_calls": [{"tool": c.get("tool"), "args": c.get("args")} for c in session.tool_calls],
        "errors": _errors(session),
        "duration_ms": session.duration_ms,
        "__assertions__": assertions,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _CODE_RUNNER], input=json.dumps(scope, default=str),
            capture_output=True, text=True, timeout=CODE_SECONDS,
        )  # fmt: skip
        failed = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        return False, 0.0, f"the assertions took longer than {CODE_SECONDS:g} s"
    except ValueError:
        return False, 0.0, f"the assertions could not run: {done.stderr.strip()[-200:]}"
    problems = [f"{assertion!r} {why}" for assertion, why in failed]
    return _verdict(problems, len(assertions))


def _errors(session: SessionTelemetry) -> list[str]:
    texts = [
        str(e.data.get("message") or e.data.get("error_type"))
        for e in session.events
        if e.event_type == ERROR
    ]
    texts += [
        str(e.data["error"]) for e in session.events if e.event_type == TOOL_COMPLETED and e.data.get("error")
    ]
    return texts + ([session.error] if session.error else [])


def _verdict(problems: list[str], checks: int) -> Verdict:
    score = 1.0 - len(problems) / checks if checks else 1.0
    return not problems, max(0.0, score), "; ".join(problems)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


JUDGES = {
    "behavior": _behavior,
    "action_sequence": _action_sequence,
    "skill_invocation": _skill_invocation,
    "text": _text,
    "tool_calls": _tool_calls,
    "tool_constraint": _tool_constraint,
    "json_schema": _json_schema,
    "code": _code,
}
