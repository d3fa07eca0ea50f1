"""The model of waza's task and eval formats accepts files written as waza's docs show them and
refuses what the runner refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from waza.tasks.waza_format import eval_problems, task_problems

# An eval and a task as waza's documentation and example suites lay them out.
EVAL: dict[str, Any] = {
    "name": "deploy-regressions",
    "description": "Sessions of azure-deploy kept as regression tests.",
    "skill": "azure-deploy",
    "schemaVersion": "1.0",
    "version": "1.0",
    "config": {"trials_per_task": 1, "timeout_seconds": 300, "parallel": False, "executor": "mock",
               "model": "gpt-4o"},
    "metrics": [{"name": "task_completion", "weight": 1.0, "threshold": 0.8, "description": "Done?"}],
    "graders": [
        {"type": "code", "name": "has_output", "config": {"assertions": ["len(output) > 0"]}},
        {"type": "text", "name": "no_fatal", "config": {"regex_not_match": ["(?i)fatal error"]}},
    ],
    "tasks": ["tasks/*.yaml"],
}  # fmt: skip
TASK: dict[str, Any] = {
    "id": "deploy-app-7",
    "name": "Deploy app-7",
    "description": "Deploys a web app.",
    "tags": ["regression", "azure-deploy"],
    "inputs": {"prompt": "Deploy app-7 to staging", "files": [{"path": "src/app.py"}, {"content": "x = 1"}],
               "context": {"fixture": "fixtures/app"}, "environment": {"REGION": "westeurope"}},
    "expected": {"behavior": {"max_tool_calls": 6, "required_tools": ["az"]}, "output_contains": ["app-7"]},
    "graders": [
        {"type": "behavior", "name": "budget", "config": {"max_tool_calls": 6, "required_tools": ["az"]}},
        {"type": "action_sequence", "name": "steps",
         "config": {"matching_mode": "in_order_match", "expected_actions": ["az", "git"]}},
        {"type": "skill_invocation", "name": "skills",
         "config": {"mode": "in_order", "required_skills": ["azure-deploy"], "allow_extra": True}},
        {"type": "text", "name": "mentions", "config": {"contains": ["app-7"]}},
        {"type": "code", "name": "completed", "config": {"assertions": ["outcome == 'completed'"]}},
    ],
}  # fmt: skip


def without(document: dict[str, Any], path: str) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = copied
    for key in parents:
        node = node[key]
    del node[last]
    return copied


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = copied
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return copied


def test_files_laid_out_as_the_docs_show_are_accepted() -> None:
    assert eval_problems(EVAL) == []
    assert task_problems(TASK) == []
    assert task_problems({"id": "t", "name": "t", "inputs": {"prompt_file": "prompt.md"}}) == []


@pytest.mark.parametrize(
    "path", ["name", "config", "metrics", "config.trials_per_task", "config.timeout_seconds",
             "config.executor", "config.model", "skill", "tasks"],
)  # fmt: skip
def test_an_eval_without_a_required_field_is_refused(path: str) -> None:
    assert eval_problems(without(EVAL, path))


@pytest.mark.parametrize("path", ["id", "name", "inputs", "inputs.prompt"])
def test_a_task_without_a_required_field_is_refused(path: str) -> None:
    assert task_problems(without(TASK, path))


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        ("task", "provenance", {"session_id": "s1"}),  # unknown top-level keys
        ("task", "graders.0.type", "expectations"),  # not a waza grader
        ("task", "graders.1.config", {"matching_mode": "in_order_match"}),  # no expected_actions
        ("task", "graders.2.config", {"required_skills": ["azure-deploy"]}),  # required skills need a mode
        ("task", "graders.3.config", {}),  # a text grader checks something
        ("task", "inputs.files", [{"path": "a.py", "mode": "r"}]),
        ("eval", "tasks", [{"include": "tasks/a.yaml"}]),  # globs, not objects
        ("eval", "skill", ""),
        ("eval", "metrics", []),
        ("eval", "config.executor", "local"),
        ("eval", "metrics.0.threshold", 1.5),
        ("eval", "command_mocks", [{"name": "az", "responses": [{"args": ["login"], "stdout": "ok"}]}]),
    ],
)
def test_what_the_runner_refuses_is_refused(document: str, path: str, value: Any) -> None:
    if document == "task":
        assert task_problems(changed(TASK, path, value))
    else:
        assert eval_problems(changed(EVAL, path, value))


def test_command_mocks_need_their_schema_version_and_the_sdk_executor() -> None:
    mocks = [{"name": "az", "responses": [{"args": ["login"], "stdout": "ok", "exit_code": 0}]}]
    suite = changed(changed(EVAL, "command_mocks", mocks), "schemaVersion", "1.3")
    assert eval_problems(suite)  # the mock executor cannot run them
    assert eval_problems(changed(suite, "config.executor", "copilot-sdk")) == []
