"""Hermetic replays: `waza convert --mocks` records what command-line tools answered, and `waza replay`
answers a skill's calls of them from those records, never from the real tools."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import write_jsonl
from tests.tasks.test_convert import session_events
from waza.tasks.waza_format import eval_problems, task_problems

# Command-line tools no machine has: a replay that reached for the real ones would fail.
SHOW = ["webapp", "show", "-n", "app-7"]
SKILL = """
import json, subprocess

def run(prompt, session):
    with session.tool("contoso", args={show!r}) as details:
        shown = subprocess.run(["contoso", *{show!r}], capture_output=True, text=True, check=True).stdout
        details["result"] = shown
    with session.tool("fabrikam", args=["pods"]):
        pods = subprocess.run(["fabrikam", "pods"], capture_output=True, text=True, check=True).stdout
    return f"app-7 is {{json.loads(shown)['state']}}; {{pods}}"
"""


def recorded(tmp_path: Path) -> None:
    lines = session_events("s1", "Is app-7 running?", tools=[], output="app-7 is Running; pod-1 Running")
    ended = lines.pop()

    def event(kind: str, data: dict) -> dict:
        return {"timestamp": ended["timestamp"], "event_type": kind, "session_id": "s1", "data": data}

    lines += [
        event("tool.called", {"tool": "contoso", "args": SHOW}),
        event("tool.completed", {"tool": "contoso", "success": True, "result": '{"state": "Running"}',
                                 "exit_code": 0}),
        event("tool.called", {"tool": "fabrikam", "args": ["pods"]}),
        event("tool.completed", {"tool": "fabrikam", "success": True, "result": "pod-1 Running"}),
        ended,
    ]  # fmt: skip
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    (tmp_path / "skill.py").write_text(SKILL.format(show=SHOW))


def waza(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "waza", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_converted_mocks_answer_the_replayed_skill(tmp_path: Path) -> None:
    assert shutil.which("contoso") is None and shutil.which("fabrikam") is None
    recorded(tmp_path)
    assert waza(tmp_path, "convert", "log", "-o", "mocked", "--mocks").returncode == 0
    suite = yaml.safe_load((tmp_path / "mocked" / "eval.yaml").read_text())
    (task_file,) = (tmp_path / "mocked" / "tasks").iterdir()
    task = yaml.safe_load(task_file.read_text())
    assert eval_problems(suite) == [] and task_problems(task) == [] and suite["schemaVersion"] == "1.3"
    assert task["command_mocks"] == [
        {"name": "contoso", "responses": [{"args": SHOW, "stdout": '{"state": "Running"}'}]},
        {"name": "fabrikam", "responses": [{"args": ["pods"], "stdout": "pod-1 Running"}]},
    ]
    replay = waza(tmp_path, "replay", "mocked/eval.yaml", "--entrypoint", "skill:run", "-o", "replays",
                  "--format", "json")  # fmt: skip
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert [r["status"] for r in json.loads(replay.stdout)["results"]] == ["passed"]


def test_without_mocks_or_with_other_arguments_the_replay_fails(tmp_path: Path) -> None:
    recorded(tmp_path)
    assert waza(tmp_path, "convert", "log", "-o", "plain").returncode == 0
    replay = waza(
        tmp_path, "replay", "plain/eval.yaml", "--entrypoint", "skill:run", "-o", "r1", "--format", "json"
    )
    assert replay.returncode == 1 and "FileNotFoundError" in replay.stdout  # the real tool is not there
    assert waza(tmp_path, "convert", "log", "-o", "mocked", "--mocks").returncode == 0
    (tmp_path / "skill.py").write_text(SKILL.format(show=["webapp", "show", "-n", "app-8"]))
    replay = waza(tmp_path, "replay", "mocked/eval.yaml", "--entrypoint", "skill:run", "-o", "r2",
                  "--format", "json")  # fmt: skip
    assert replay.returncode == 1 and "CalledProcessError" in replay.stdout  # no answer recorded: exit 127


def test_mcp_calls_become_the_suites_mcp_mocks(tmp_path: Path) -> None:
    """MCP calls (a named server, or mcp__server__tool) become waza's mcp_mocks: per server and tool,
    the arguments each call matched and what it returned, or its error."""
    lines = session_events("m1", "How many incidents?", output="3 incidents")
    ended = lines.pop()

    def event(kind: str, data: dict) -> dict:
        return {"timestamp": ended["timestamp"], "event_type": kind, "session_id": "m1", "data": data}

    query = {"q": "Incidents | count"}
    lines += [
        event("tool.called", {"tool": "query", "server": "kusto", "args": query}),
        event("tool.completed", {"tool": "query", "success": True, "result": [{"count": 3}]}),
        event("tool.called", {"tool": "mcp__github__list_issues", "args": {"repo": "contoso/app"}}),
        event(
            "tool.completed", {"tool": "mcp__github__list_issues", "success": False, "error": "rate limited"}
        ),
        ended,
    ]
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    assert waza(tmp_path, "convert", "log", "-o", "mocked", "--mocks").returncode == 0
    suite = yaml.safe_load((tmp_path / "mocked" / "eval.yaml").read_text())
    assert eval_problems(suite) == [] and suite["schemaVersion"] == "1.3"
    assert suite["mcp_mocks"] == [
        {"name": "kusto", "tools": {"query": {"responses": [{"match": query, "return": [{"count": 3}]}]}}},
        {"name": "github", "tools": {"list_issues": {"responses": [{"match": {"repo": "contoso/app"},
                                                                    "error": "rate limited"}]}}},
    ]  # fmt: skip
    assert "mcp_calls" not in (tmp_path / "mocked" / "provenance.yaml").read_text()
