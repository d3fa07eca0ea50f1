"""`waza check` and `waza replay`: grades, exit codes, reasons, and JUnit a JUnit reader accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from junitparser import Failure, JUnitXml, Skipped

from tests.conftest import write_jsonl
from tests.tasks.test_convert import session_events

SKILL = """
import time


def good(prompt, session):
    name = prompt.split()[-1]
    with session.tool("az", ["webapp", "create", name]):
        pass
    return f"Deployed to https://{name}.azurewebsites.net"


def regressed(prompt, session):
    name = prompt.split()[-1]
    if name == "app-3":
        raise RuntimeError("QuotaExceeded: no capacity")
    if name == "app-7":
        good(prompt, session)
        return "Deployed somewhere"
    if name == "app-11":
        return f"Deployed to https://{name}.azurewebsites.net"  # without calling az
    return good(prompt, session)


def hangs(prompt, session):
    if prompt.endswith("app-5"):
        time.sleep(600)
    return good(prompt, session)
"""


def task(n: int, **expected: Any) -> dict[str, Any]:
    return {
        "id": f"deploy-{n}",
        "name": f"Deploy app {n}",
        "inputs": {"prompt": f"Deploy app-{n}"},
        "expected": expected
        or {
            "outcomes": [{"type": "task_completed"}],
            "output_contains": [f"app-{n}.azurewebsites.net"],
            "behavior": {"required_tools": ["az"], "max_tool_calls": 3},
        },
        "provenance": {"session_id": f"s{n}", "skill": "azure-deploy"},
    }


def write_suite(folder: Path, tasks: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in tasks:
        (folder / f"{item['id']}.yaml").write_text(yaml.safe_dump(item), encoding="utf-8")
    suite = {
        "name": "deploys",
        "skill": "azure-deploy",
        "tasks": [{"include": f"{t['id']}.yaml"} for t in tasks],
    }
    (folder / "eval.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    return folder / "eval.yaml"


def waza(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "waza", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def failed_cases(junit: Path) -> dict[str, str]:
    """Failed test cases and their messages, as a JUnit consumer reads them."""
    found = {}
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            for result in case.result:
                if isinstance(result, Failure):
                    found[case.name] = result.message
    return found


def test_check_grades_each_expectation(tmp_path: Path) -> None:
    tasks = [
        task(1),
        task(2, output_not_contains=["error"], behavior={"forbidden_tools": ["rm"]}),
        task(3, tool_calls=[{"tool": "az", "pattern": r"webapp.*create"}], behavior={"max_tokens": 100}),
        task(4, behavior={"max_iterations": 1}),
        {**task(5), "enabled": False},
        task(6),
    ]
    lines = session_events("s1", "Deploy app-1", tools=[("az", True)], output="at app-1.azurewebsites.net")
    lines += session_events("s2", "Deploy app-2", tools=[("rm", True)], output="an error")
    lines += session_events("s3", "Deploy app-3", tools=[("az", True)], tokens={"input": 90, "output": 20})
    lines += session_events("s4", "another prompt", metadata={"task_id": "deploy-4"})
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    suite = write_suite(tmp_path / "tasks", tasks)

    result = waza(tmp_path, "check", str(suite), "log", "--format", "json", "--junit", "out/junit.xml")
    assert result.returncode == 1, result.stderr
    graded = {r["task"]: r for r in json.loads(result.stdout)["results"]}
    assert graded["deploy-1"]["status"] == "passed" and graded["deploy-1"]["session_id"] == "s1"
    assert graded["deploy-2"]["reasons"] == ["output contains 'error'", "forbidden tool 'rm' was called"]
    assert graded["deploy-3"]["reasons"] == [
        "110 tokens, more than 100",
        "no tool call to 'az' with arguments matching 'webapp.*create'",
    ]
    assert (
        graded["deploy-4"]["status"] == "passed" and graded["deploy-4"]["session_id"] == "s4"
    )  # by metadata
    assert graded["deploy-5"]["status"] == "skipped"
    assert graded["deploy-6"]["reasons"] == ["no recorded session answers this task"]
    junit = tmp_path / "out" / "junit.xml"
    failed = failed_cases(junit)
    assert set(failed) == {"deploy-2", "deploy-3", "deploy-6"}
    assert failed["deploy-6"] == "no recorded session answers this task"
    cases = [case for suite in JUnitXml.fromfile(str(junit)) for case in suite]
    assert len(cases) == 6
    assert [c.name for c in cases if any(isinstance(r, Skipped) for r in c.result)] == ["deploy-5"]


def test_replay_names_exactly_the_regressions(tmp_path: Path) -> None:
    (tmp_path / "skill.py").write_text(SKILL, encoding="utf-8")
    suite = write_suite(tmp_path / "tasks", [task(n) for n in range(20)])

    good = waza(tmp_path, "replay", str(suite), "--entrypoint", "skill:good", "-o", "good", "--workers", "4")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "20 passed, 0 failed" in good.stdout

    bad = waza(tmp_path, "replay", str(suite), "--entrypoint", "skill:regressed", "-o", "bad",
               "--workers", "4", "--junit", "bad.xml")  # fmt: skip
    assert bad.returncode == 1
    failed = failed_cases(tmp_path / "bad.xml")
    assert set(failed) == {"deploy-3", "deploy-7", "deploy-11"}
    assert "task not completed: RuntimeError: QuotaExceeded: no capacity" in failed["deploy-3"]
    assert failed["deploy-7"] == "output lacks 'app-7.azurewebsites.net'"
    assert failed["deploy-11"] == "tool 'az' was not called"


def test_replay_stops_a_hanging_skill(tmp_path: Path) -> None:
    (tmp_path / "skill.py").write_text(SKILL, encoding="utf-8")
    suite = write_suite(tmp_path / "tasks", [task(n) for n in range(4, 8)])
    result = waza(tmp_path, "replay", str(suite), "--entrypoint", "skill:hangs", "-o", "runs",
                  "--workers", "2", "--timeout", "3", "--format", "json")  # fmt: skip
    assert result.returncode == 1
    graded = {r["task"]: r for r in json.loads(result.stdout)["results"]}
    assert graded["deploy-5"] == {
        **graded["deploy-5"],
        "status": "failed",
        "reasons": ["timed out after 3 s"],
    }
    assert [graded[f"deploy-{n}"]["status"] for n in (4, 6, 7)] == ["passed"] * 3


def test_replay_with_an_unknown_entrypoint_says_so(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "tasks", [task(1)])
    result = waza(tmp_path, "replay", str(suite), "--entrypoint", "nowhere:skill", "-o", "runs")
    assert result.returncode == 1
    assert "cannot load nowhere:skill" in result.stderr and "Traceback" not in result.stderr


def test_bad_task_files_get_one_line_errors(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "log" / "events.jsonl", session_events("s1", "Deploy app-1"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "eval.yaml").write_text(
        "tasks: [{include: ../../outside.yaml}]\n", encoding="utf-8"
    )
    (tmp_path / "invalid.yaml").write_text("id: t1\nname: x\ninputs: {prompt: 3}\n", encoding="utf-8")
    (tmp_path / "notyaml.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    for target, message in [
        ("broken/eval.yaml", "include '../../outside.yaml' leaves the suite's folder"),
        ("invalid.yaml", "not a waza task: inputs.prompt: 3 is not of type 'string'"),
        ("notyaml.yaml", "not valid YAML"),
    ]:
        result = waza(tmp_path, "check", target, "log")
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
