"""`waza check` and `waza replay`: grades, exit codes, reasons, and JUnit a JUnit reader accepts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from junitparser import Error, Failure, JUnitXml, Skipped

from tests.conftest import write_jsonl
from tests.tasks.test_convert import START, session_events

START_LATER = START + timedelta(hours=1)

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


def always_fail(prompt, session):
    with session.tool("az", ["webapp", "create"]):
        raise RuntimeError("az: subscription not found")


def one_argument(prompt):
    return "done"


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
    """Failed and errored test cases and their messages, as a JUnit consumer reads them."""
    return {name: message for name, (_, message) in junit_results(junit).items()}


def junit_results(junit: Path) -> dict[str, tuple[str, str]]:
    """Each test case that did not pass: (failure or the error's type, message)."""
    found = {}
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            for result in case.result:
                if isinstance(result, Error):
                    found[case.name] = (result.type, result.message)
                elif isinstance(result, Failure):
                    found[case.name] = ("failure", result.message)
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
    results = junit_results(tmp_path / "bad.xml")
    assert set(results) == {"deploy-3", "deploy-7", "deploy-11"}
    assert results["deploy-3"] == ("RuntimeError", "QuotaExceeded: no capacity")
    assert results["deploy-7"] == ("failure", "output lacks 'app-7.azurewebsites.net'")
    assert results["deploy-11"] == ("failure", "tool 'az' was not called")


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


def converted_from_failures(folder: Path, count: int) -> Path:
    """A suite like `waza convert --failed` writes: tasks that check tools only, never the outcome."""
    tasks = [task(n, behavior={"max_tool_calls": 3}) for n in range(count)]
    return write_suite(folder, tasks)


def test_replay_fails_every_task_of_a_skill_that_raises(tmp_path: Path) -> None:
    """A skill that raises on every task fails every task, with the exception in the report and JUnit."""
    (tmp_path / "skill.py").write_text(SKILL, encoding="utf-8")
    suite = converted_from_failures(tmp_path / "tasks", 5)
    result = waza(tmp_path, "replay", str(suite), "--entrypoint", "skill:always_fail", "-o", "runs",
                  "--junit", "out.xml", "--format", "json")  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["passed"], report["failed"]) == (0, 5)
    for graded in report["results"]:
        assert graded["error"] == {"type": "RuntimeError", "message": "az: subscription not found"}
        assert graded["reasons"] == ["the skill raised RuntimeError: az: subscription not found"]
    results = junit_results(tmp_path / "out.xml")
    assert results == {f"deploy-{n}": ("RuntimeError", "az: subscription not found") for n in range(5)}


def test_replay_shows_why_an_entrypoint_of_the_wrong_signature_fails(tmp_path: Path) -> None:
    """A function that cannot take (prompt, session) fails with its TypeError, not a missing tool."""
    (tmp_path / "skill.py").write_text(SKILL, encoding="utf-8")
    suite = write_suite(tmp_path / "tasks", [task(1)])
    result = waza(tmp_path, "replay", str(suite), "--entrypoint", "skill:one_argument", "-o", "runs",
                  "--format", "json")  # fmt: skip
    assert result.returncode == 1
    (graded,) = json.loads(result.stdout)["results"]
    assert graded["error"]["type"] == "TypeError"
    assert "one_argument() takes 1 positional argument but 2 were given" in graded["error"]["message"]


def test_check_fails_a_recorded_session_that_raised_or_never_ended(tmp_path: Path) -> None:
    """Recorded runs that broke fail their tasks, whatever the tasks expect."""
    tasks = [task(n, behavior={"max_tool_calls": 3}) for n in (1, 2)]
    lines = session_events("s1", "Deploy app-1", ok=False, error="KeyError: 'region'")
    lines += [line for line in session_events("s2", "Deploy app-2") if line["event_type"] != "session.ended"]
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    suite = write_suite(tmp_path / "tasks", tasks)
    result = waza(tmp_path, "check", str(suite), "log", "--format", "json")
    assert result.returncode == 1
    graded = {r["task"]: r for r in json.loads(result.stdout)["results"]}
    assert graded["deploy-1"]["error"] == {"type": "KeyError", "message": "'region'"}
    assert graded["deploy-2"]["error"]["type"] == "Crash"
    assert all(g["status"] == "failed" for g in graded.values())


def test_check_refuses_to_check_nothing(tmp_path: Path) -> None:
    """An empty suite, swapped arguments, or sessions answering no task exit 2 and say what was found."""
    write_jsonl(tmp_path / "telemetry" / "events.jsonl", session_events("s1", "Something else entirely"))
    write_suite(tmp_path / "tasks", [task(1), task(2)])
    (tmp_path / "empty").mkdir()
    for args, message in [
        (["empty", "telemetry"], "no tasks in empty"),
        (["telemetry", "tasks"], "telemetry holds telemetry, not tasks; the tasks come first"),
        (["tasks", "tasks"], "no sessions found in tasks; tasks holds task files, and the tasks come first"),
        (["tasks", "telemetry"], "none of the 1 sessions in telemetry answers any of the 2 tasks"),
        (["tasks", "nowhere"], "nowhere: no such file or folder"),
    ]:
        result = waza(tmp_path, "check", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr and "passed" not in result.stdout


def test_replay_of_an_empty_suite_is_an_error(tmp_path: Path) -> None:
    """Replaying a folder without tasks exits 2 rather than reporting 0 passed."""
    (tmp_path / "skill.py").write_text(SKILL, encoding="utf-8")
    (tmp_path / "empty").mkdir()
    result = waza(tmp_path, "replay", "empty", "--entrypoint", "skill:good", "-o", "runs")
    assert result.returncode == 2 and "no tasks in empty" in result.stderr


def test_check_never_matches_by_redacted_prompt(tmp_path: Path) -> None:
    """A task whose prompt was redacted answers only to its recorded digest, not to look-alike sessions."""
    original = "Deploy app-9, contact me at ana@example.com"
    lookalike = "Deploy app-9, contact me at <EMAIL>"
    redacted = task(9, behavior={"max_tool_calls": 3})
    redacted["inputs"]["prompt"] = lookalike
    lines = session_events("other", lookalike, at=START_LATER)
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    suite = write_suite(tmp_path / "tasks", [redacted])
    result = waza(tmp_path, "check", str(suite), "log")
    assert result.returncode == 2  # the only session looks like the task, and must not answer it

    redacted["provenance"]["prompt_sha256"] = hashlib.sha256(original.encode()).hexdigest()
    write_suite(tmp_path / "tasks", [redacted])
    real = session_events("real", "Deploy  app-9, contact me at ana@example.com")
    write_jsonl(tmp_path / "log" / "events.jsonl", lines + real)
    result = waza(tmp_path, "check", str(suite), "log", "--format", "json")
    (graded,) = json.loads(result.stdout)["results"]
    assert graded["session_id"] == "real" and graded["status"] == "passed", graded


def test_check_reads_tasks_made_by_to_eval_input(tmp_path: Path) -> None:
    """The SPEC's to_eval_input shape, `captured` included and dumped by yaml.dump, is checked as a task."""
    from waza.telemetry import RuntimeCollector, TelemetryAnalyzer

    collector = RuntimeCollector()
    sid = collector.start_session("Deploy my app to Azure", {"user_id": "u1"})
    collector.record_event(sid, "skill.invoked", skill_name="azure-deploy")
    collector.end_session(sid, "Deployed to https://myapp.azurewebsites.net", True)
    collector.export_to_file(tmp_path / "sessions.json")
    (session,) = RuntimeCollector.load_from_file(tmp_path / "sessions.json")
    made = TelemetryAnalyzer().to_eval_input(session)
    made["expected"] = {"output_contains": ["azurewebsites.net"], "outcomes": [{"type": "task_completed"}]}
    (tmp_path / "tasks").mkdir()
    with open(tmp_path / "tasks" / f"{made['id']}.yaml", "w") as out:
        yaml.dump(made, out)
    result = waza(tmp_path, "check", "tasks", "sessions.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout
