"""`waza check` grades suites in waza's own format: an eval with global graders and task globs, tasks
with behavior, action_sequence, text, skill_invocation, tool_constraint and code graders, as waza's
grader showcase."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from junitparser import JUnitXml

from waza.telemetry import RuntimeCollector

EVAL = {
    "name": "deploy-showcase",
    "skill": "azure-deploy",
    "schemaVersion": "1.0",
    "config": {"trials_per_task": 1, "timeout_seconds": 300, "executor": "mock", "model": "gpt-4o"},
    "metrics": [{"name": "task_completion", "weight": 1.0, "threshold": 0.8}],
    "graders": [
        {"type": "code", "name": "has_output", "config": {"assertions": ["len(output) > 0"]}},
        {"type": "text", "name": "no_fatal", "config": {"regex_not_match": ["(?i)fatal error"]}},
    ],
    "tasks": ["tasks/*.yaml"],
}
TASKS = {
    "budget": {"type": "behavior", "name": "budget",
               "config": {"max_tool_calls": 3, "required_tools": ["az"], "forbidden_tools": ["rm"]}},
    "steps": {"type": "action_sequence", "name": "steps",
              "config": {"matching_mode": "in_order_match", "expected_actions": ["az", "git"]}},
    "wording": {"type": "text", "name": "wording",
                "config": {"contains": ["Deployed"], "not_contains": ["error"]}},
    "skills": {"type": "skill_invocation", "name": "skills",
               "config": {"mode": "in_order", "required_skills": ["azure-prepare", "azure-deploy"]}},
    "guardrails": {"type": "tool_constraint", "name": "guardrails",
                   "config": {"expect_tools": [{"tool": "az", "command_pattern": "webapp\\s+up"}],
                              "reject_tools": [{"tool": "^rm$"}]}},
    "assertions": {"type": "code", "name": "assertions",
                   "config": {"assertions": ["outcome['success']", "len(tool_calls) >= 2",
                                             "duration_ms >= 0"]}},
}  # fmt: skip


def write_suite(folder: Path) -> Path:
    (folder / "tasks").mkdir(parents=True)
    (folder / "eval.yaml").write_text(yaml.safe_dump(EVAL))
    for name, grader in TASKS.items():
        task = {"id": name, "name": name, "inputs": {"prompt": f"do {name}", "files": [{"path": "app.py"}]},
                "graders": [grader]}  # fmt: skip
        (folder / "tasks" / f"{name}.yaml").write_text(yaml.safe_dump(task))
    # A grader that needs the run's workspace: skipped from telemetry, never passed.
    made = {"type": "file", "name": "made", "config": {"must_exist": ["out.txt"]}}
    workspace = {"id": "files", "name": "files", "inputs": {"prompt": "do files"}, "graders": [made]}
    (folder / "tasks" / "files.yaml").write_text(yaml.safe_dump(workspace))
    return folder / "eval.yaml"


def record(folder: Path, breaking: str | None) -> None:
    """One session per task, each doing what every grader asks, except the task named ``breaking``."""
    with RuntimeCollector(folder, redact=False) as collector:
        for task in [*TASKS, "files"]:
            bad = task == breaking
            skills = ["azure-deploy"] if bad and task == "skills" else ["azure-prepare", "azure-deploy"]
            tools = (
                {"budget": ["az", "rm"], "steps": ["git", "az"]}.get(task, ["az", "git"])
                if bad
                else ["az", "git"]
            )
            broken_output = {"wording": "deployment error", "assertions": "Deployed"}
            output = broken_output.get(task, "Deployed app-7") if bad else "Deployed app-7"
            with collector.session(f"do {task}", {"task_id": task}) as s:
                for skill in skills:
                    s.event("skill.invoked", {"skill_name": skill}, skill_name=skill)
                for tool in tools:
                    verb = "delete" if bad and task == "guardrails" else "up"
                    with s.tool(tool, args=["webapp", verb]):
                        pass
                s.end(output, success=not (bad and task == "assertions"))


def check(suite: Path, telemetry: Path, junit: Path) -> tuple[int, dict[str, Any]]:
    command = [sys.executable, "-m", "waza", "check", str(suite), str(telemetry), "--format", "json",
               "--junit", str(junit)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_sessions_that_do_what_every_grader_asks_pass(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    record(tmp_path / "telemetry", None)
    code, report = check(suite, tmp_path / "telemetry", tmp_path / "junit.xml")
    statuses = {r["task"]: r["status"] for r in report["results"]}
    assert code == 0 and statuses == {**dict.fromkeys(TASKS, "passed"), "files": "skipped"}
    graded = {r["task"]: [g["name"] for g in r["graders"]] for r in report["results"]}
    assert graded["steps"] == ["has_output", "no_fatal", "steps"]  # the eval's graders come first
    cases = {case.name: case for suite in JUnitXml.fromfile(str(tmp_path / "junit.xml")) for case in suite}
    assert set(cases) == {*TASKS, "files"} and cases["files"].is_skipped


@pytest.mark.parametrize("breaking", list(TASKS))
def test_a_session_that_breaks_one_grader_fails_that_task_only(tmp_path: Path, breaking: str) -> None:
    suite = write_suite(tmp_path / "suite")
    record(tmp_path / "telemetry", breaking)
    code, report = check(suite, tmp_path / "telemetry", tmp_path / "junit.xml")
    failed = {r["task"]: r for r in report["results"] if r["status"] == "failed"}
    assert code == 1 and list(failed) == [breaking]
    (grader,) = [g for g in failed[breaking]["graders"] if g["passed"] is False]
    assert grader["name"] == TASKS[breaking]["name"] and 0 <= grader["score"] <= 1
    cases = {case.name: case for suite in JUnitXml.fromfile(str(tmp_path / "junit.xml")) for case in suite}
    assert not cases[breaking].is_passed and all(cases[t].is_passed for t in TASKS if t != breaking)


def test_an_eval_the_runner_would_refuse_is_refused_with_the_reason(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    broken = dict(EVAL)
    del broken["config"]
    suite.write_text(yaml.safe_dump(broken))
    record(tmp_path / "telemetry", None)
    done = subprocess.run([sys.executable, "-m", "waza", "check", str(suite), str(tmp_path / "telemetry")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0 and "not a waza eval" in done.stderr and "config" in done.stderr
    assert "Traceback" not in done.stderr
