"""The waza runner's task and eval file formats, as this project models them.

``waza run`` (github.com/microsoft/waza) refuses files its JSON Schemas reject,
so every file ``waza convert`` writes is checked against this model first, and
``waza check`` reads suites through it. The model follows waza's
``schemas/task.schema.json`` at commit TASK_FORMAT_COMMIT and
``schemas/eval.schema.json`` at commit EVAL_FORMAT_COMMIT; it is written here,
as schemas built in code, and keeps to what those schemas require and refuse:
unknown keys are refused where waza refuses them, and each grader type's
``config`` has the shape waza's graders read.
"""

from __future__ import annotations

from typing import Any

import jsonschema

TASK_FORMAT_COMMIT = "6c7430fbd0b823ed7f4648d69b44a37d1512fa67"
EVAL_FORMAT_COMMIT = "022454e324778ea347e5a9593619b59e000034e6"

GRADER_TYPES = (
    "code", "prompt", "text", "file", "json_schema", "program", "behavior",
    "action_sequence", "skill_invocation", "trigger", "diff", "tool_constraint", "tool_calls",
)  # fmt: skip
EXECUTORS = ("copilot-sdk", "mock")


def _strings() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}}


def _count(minimum: int = 0) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum}


def _text(minimum: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": minimum} if minimum else {"type": "string"}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = (), **rest: Any) -> dict[str, Any]:
    """An object with exactly these keys, as waza's schemas write nearly every object."""
    shape: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        shape["required"] = list(required)
    return shape | rest


def _one_of_keys(*keys: str) -> list[dict[str, Any]]:
    return [{"required": [key]} for key in keys]


# What each grader type reads from its ``config``; types a telemetry check cannot
# run (they need a workspace or a model) are modelled as loosely as waza's own docs.
GRADER_CONFIGS: dict[str, dict[str, Any]] = {
    "code": _closed(
        {"assertions": {"type": "array", "minItems": 1, "items": {"type": "string"}},
         "language": {"enum": ["python", "javascript"]}},
        ("assertions",),
    ),
    "text": _closed(
        {key: _strings() for key in
         ("contains", "not_contains", "contains_cs", "not_contains_cs", "regex_match", "regex_not_match")},
        anyOf=_one_of_keys("contains", "not_contains", "contains_cs", "not_contains_cs", "regex_match",
                           "regex_not_match"),
    ),
    "behavior": _closed(
        {"max_tool_calls": _count(), "max_tokens": _count(),
         "required_tools": _strings(), "forbidden_tools": _strings(),
         "max_duration_ms": _count()},
        anyOf=_one_of_keys("max_tool_calls", "max_tokens", "required_tools", "forbidden_tools",
                           "max_duration_ms"),
    ),
    "action_sequence": _closed(
        {"matching_mode": {"enum": ["exact_match", "in_order_match", "any_order_match"]},
         "expected_actions": {"type": "array", "minItems": 1, "items": {"type": "string"}}},
        ("matching_mode", "expected_actions"),
    ),
    "skill_invocation": _closed(
        {"mode": {"enum": ["exact_match", "in_order", "any_order"]}, "required_skills": _strings(),
         "forbidden_skills": _strings(), "allow_extra": {"type": "boolean"}},
        anyOf=[{"required": ["required_skills"], "properties": {"required_skills": {"minItems": 1}}},
               {"required": ["forbidden_skills"], "properties": {"forbidden_skills": {"minItems": 1}}}],
        allOf=[{"if": {"required": ["required_skills"], "properties": {"required_skills": {"minItems": 1}}},
                "then": {"required": ["mode"]}}],
    ),
    "tool_constraint": {
        "type": "object",
        "anyOf": _one_of_keys("expect_tools", "reject_tools", "allow_only"),
        "properties": {"expect_tools": {"type": "array", "items": {"type": "object", "required": ["tool"]}},
                       "reject_tools": {"type": "array"}, "allow_only": _strings()},
    },
    "json_schema": {"type": "object", "anyOf": _one_of_keys("schema", "schema_file")},
    "trigger": _closed(
        {"skill_path": _text(1), "mode": {"enum": ["positive", "negative"]},
         "threshold": {"type": "number", "minimum": 0, "maximum": 1}},
        ("skill_path", "mode"),
    ),
    "prompt": {"type": "object"},
    "program": {"type": "object"},
    "diff": {"type": "object"},
}  # fmt: skip
# Types whose config waza requires (the rest may leave it out).
CONFIG_REQUIRED = (
    "action_sequence",
    "skill_invocation",
    "trigger",
    "prompt",
    "json_schema",
    "program",
    "diff",
)


def _grader_rules() -> list[dict[str, Any]]:
    rules = []
    for kind, config in GRADER_CONFIGS.items():
        then: dict[str, Any] = {"properties": {"config": config}}
        if kind in CONFIG_REQUIRED:
            then["required"] = ["config"]
        rules.append({"if": {"required": ["type"], "properties": {"type": {"const": kind}}}, "then": then})
    return rules


def _task_grader() -> dict[str, Any]:
    return _closed(
        {"name": _text(1), "type": {"enum": list(GRADER_TYPES)}, "assertions": _strings(),
         "rubric": _text(), "weight": {"type": "number"}, "config": {"type": "object"}},
        ("name",),
        allOf=_grader_rules(),
    )  # fmt: skip


def _command_mock() -> dict[str, Any]:
    response = _closed(
        {"args": _strings(), "args_regex": _strings(), "environment": {"type": "object",
         "additionalProperties": {"type": "string"}}, "workdir": _text(), "stdout": {}, "stderr": _text(),
         "exit_code": {"type": "integer", "minimum": 0, "maximum": 255}, "fixture": _text(1)},
        oneOf=_one_of_keys("args", "args_regex"),
        allOf=[{"not": {"required": ["args", "args_regex"]}}, {"not": {"required": ["stdout", "fixture"]}}],
    )  # fmt: skip
    return _closed(
        {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
         "expect_calls": _count(),
         "responses": {"type": "array", "minItems": 1, "items": response}},
        ("name", "responses"),
    )  # fmt: skip


def _inputs() -> dict[str, Any]:
    return _closed(
        {
            "prompt": _text(),
            "prompt_file": _text(1),
            "context": {"type": "object"},
            "files": {"type": "array", "items": _closed({"path": _text(), "content": _text()})},
            "repos": {"type": "array", "items": _closed(
                {"type": {"enum": ["worktree"]}, "source": _text(1), "commit": _text(), "dest": _text(1)},
                ("type", "source", "dest"))},
            "workdir": _text(),
            "environment": {"type": "object", "additionalProperties": {"type": "string"}},
            "follow_up_prompts": _strings(),
            "responder": _closed(
                {"model": _text(), "instructions": _text(1), "max_followups": _count(1)},
                ("instructions", "max_followups")),
        },
        oneOf=_one_of_keys("prompt", "prompt_file"),
        **{"not": {"required": ["responder", "follow_up_prompts"]}},
    )  # fmt: skip


def _expected() -> dict[str, Any]:
    behavior = _closed(
        {"max_tool_calls": _count(), "max_iterations": _count(),
         "max_tokens": _count(), "required_tools": _strings(),
         "forbidden_tools": _strings(), "max_response_time_ms": _count(1)},
    )  # fmt: skip
    return _closed(
        {"outcomes": {"type": "array",
                      "items": _closed({"type": _text(), "value": {}, "condition": _text()})},
         "tool_calls": {"type": "object"}, "behavior": behavior, "output_contains": _strings(),
         "output_not_contains": _strings(), "should_trigger": {"type": "boolean"}},
    )  # fmt: skip


def task_schema() -> dict[str, Any]:
    """The task format (waza's ``task.schema.json`` at TASK_FORMAT_COMMIT)."""
    return _closed(
        {
            "id": _text(1),
            "name": _text(1),
            "description": _text(),
            "enabled": {"type": "boolean"},
            "golden": {"type": "boolean"},
            "context_dir": _text(),
            "timeout_seconds": _count(1),
            "first_event_timeout_seconds": _count(),
            "tags": _strings(),
            "inputs": _inputs(),
            "expected": _expected(),
            "requirements": {"type": "array", "items": {"type": "object", "required": ["id", "category",
                                                                                       "description"]}},
            "graders": {"type": "array", "items": _task_grader()},
            "checkpoints": {"type": "array", "items": _closed(
                {"after_turn": _count(1),
                 "graders": {"type": "array", "minItems": 1, "items": _task_grader()},
                 "on_failure": {"enum": ["continue", "stop"]}}, ("after_turn", "graders"))},
            "skill_directories": _strings(),
            "instruction_files": _strings(),
            "command_mocks": {"type": "array", "items": _command_mock()},
        },
        ("id", "name", "inputs"),
    )  # fmt: skip


def eval_schema() -> dict[str, Any]:
    """The eval format (waza's ``eval.schema.json`` at EVAL_FORMAT_COMMIT)."""
    config = _closed(
        {
            "trials_per_task": _count(1),
            "timeout_seconds": _count(1),
            "first_event_timeout_seconds": _count(),
            "parallel": {"type": "boolean"},
            "workers": _count(),
            "fail_fast": {"type": "boolean"},
            "executor": {"enum": list(EXECUTORS)},
            "model": _text(1),
            "reasoning_effort": {"enum": ["low", "medium", "high", "xhigh", "max"]},
            "max_attempts": _count(1),
            "group_by": _text(),
            "judge_model": _text(),
            "judge_reasoning_effort": {"enum": ["low", "medium", "high", "xhigh", "max"]},
            "skill_directories": _strings(),
            "instruction_files": _strings(),
            "inject_skill_body": {"type": "boolean"},
            "trigger_skill_routing": {"type": "boolean"},
            "disabled_skills": _strings(),
            "required_skills": _strings(),
            "mcp_servers": {"type": "object"},
        },
        ("trials_per_task", "timeout_seconds", "executor", "model"),
    )
    metric = _closed(
        {"name": _text(1), "weight": {"type": "number", "exclusiveMinimum": 0},
         "threshold": {"type": "number", "minimum": 0, "maximum": 1}, "description": _text(),
         "enabled": {"type": "boolean"}},
        ("name", "weight", "threshold"),
    )  # fmt: skip
    grader = _closed(
        {"ref": _text(1), "type": {"enum": list(GRADER_TYPES)}, "name": _text(1), "script": _text(),
         "rubric": _text(), "model": _text(), "weight": {"type": "number", "exclusiveMinimum": 0},
         "config": {"type": "object"}},
        anyOf=[{"required": ["ref"]}, {"required": ["type", "name"]}],
        allOf=_grader_rules(),
    )  # fmt: skip
    mcp_response = _closed(
        {"match": {"type": "object"}, "match_schema": {"type": "object"},
         "match_regex": {"type": "object", "additionalProperties": {"type": "string"}}, "return": {},
         "error": _text()},
        anyOf=_one_of_keys("return", "error"),
    )  # fmt: skip
    mcp_tool = _closed(
        {"description": _text(), "input_schema": {"type": "object"},
         "responses": {"type": "array", "minItems": 1, "items": mcp_response}},
        ("responses",),
    )  # fmt: skip
    mcp_mock = _closed(
        {
            "name": _text(1),
            "fixtures": _text(1),
            "tools": {"type": "object", "additionalProperties": mcp_tool},
        },
        ("name",),
        anyOf=_one_of_keys("fixtures", "tools"),
    )
    version_with_command_mocks = r"^(?:0*1\.0*(?:[3-9]|[1-9][0-9]+)|0*(?:[2-9]|[1-9][0-9]+)\.[0-9]+)$"
    return _closed(
        {
            "name": _text(1),
            "description": _text(),
            "scenario": {"type": "string", "pattern": r"\S"},
            "skill": _text(1),
            "schemaVersion": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+$"},
            "version": _text(1),
            "config": config,
            "hooks": {"type": "object"},
            "mcp_mocks": {"type": "array", "items": mcp_mock},
            "command_mocks": {"type": "array", "items": _command_mock()},
            "inputs": {"type": "object", "additionalProperties": {"type": "string"}},
            "tasks_from": _text(),
            "range": {"type": "array", "items": _count(), "minItems": 2, "maxItems": 2},
            "graders": {"type": "array", "items": grader},
            "metrics": {"type": "array", "minItems": 1, "items": metric},
            "tasks": {"type": "array", "items": _text(1)},
            "baseline": {"type": "boolean"},
        },
        ("name", "config", "metrics"),
        allOf=[
            {"anyOf": [{"required": ["skill"]}, {"required": ["scenario"]}]},
            {"if": {"required": ["scenario"]},
             "then": {"required": ["schemaVersion"], "properties": {"schemaVersion": {"const": "2.0"}}}},
            {"if": {"required": ["schemaVersion"], "properties": {"schemaVersion": {"const": "2.0"}}},
             "then": {"required": ["scenario"]}},
            {"anyOf": [{"required": ["tasks_from"], "properties": {"tasks_from": {"minLength": 1}}},
                       {"required": ["tasks"], "properties": {"tasks": {"minItems": 1}}}]},
            {"if": {"required": ["command_mocks"]},
             "then": {"properties": {"schemaVersion": {"pattern": version_with_command_mocks},
                                     "config": {"properties": {"executor": {"const": "copilot-sdk"}}}}}},
        ],
    )  # fmt: skip


def task_problems(task: Any) -> list[str]:
    """What the waza runner would refuse in a task, one message per place; empty when valid."""
    return _problems(task_schema(), task, "(task)")


def eval_problems(document: Any) -> list[str]:
    """What the waza runner would refuse in an eval file; empty when valid."""
    return _problems(eval_schema(), document, "(eval)")


def _problems(schema: dict[str, Any], document: Any, whole: str) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or whole}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
