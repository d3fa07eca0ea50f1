"""The samples in docs/guide.md (SPEC.md's samples among them) run as written, and its commands work."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import read_log

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"
BLOCK = re.compile(r"<!-- sample: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```", re.S)
COMMAND = re.compile(r"<!-- command: (?P<name>[\w-]+) -->\n```bash\n(?P<line>.*?)\n```", re.S)


def command(name: str) -> list[str]:
    """A command the guide shows, as its words."""
    found = {m["name"]: m["line"] for m in COMMAND.finditer(GUIDE.read_text(encoding="utf-8"))}
    return shlex.split(found[name])


def samples() -> list[tuple[str, str]]:
    return [(m["name"], m["code"]) for m in BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))]


def run_until(name: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute the guide's samples in order, in one namespace, up to and including ``name``."""
    for sample_name, code in samples():
        exec(compile(code, f"{GUIDE.name}:{sample_name}", "exec"), namespace)
        if sample_name == name:
            return namespace
    raise AssertionError(f"no sample named {name!r} in the guide")


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    return {"__name__": "guide"}


def test_guide_has_every_spec_sample() -> None:
    """The guide keeps each SPEC.md sample, so none can silently disappear."""
    names = {name for name, _ in samples()}
    assert {"quickstart", "middleware", "log-parsing", "webhook", "convert"} <= names


def test_quickstart_exports_the_session(page: dict[str, Any]) -> None:
    """The quick start writes an export holding the one finished session with its tool call."""
    run_until("quickstart", page)
    document = json.loads(Path("telemetry/sessions-2024-01.json").read_text())
    (session,) = document["sessions"]
    assert session["skill_name"] == "azure-deploy"
    assert session["tool_calls"] == [{"tool": "az", "args": ["webapp", "create"]}]
    assert session["success"] is True
    assert session["metadata"] == {"user_id": "user123", "environment": "production"}


def test_folder_collector_writes_an_event_log(page: dict[str, Any]) -> None:
    """The folder collector leaves a day-partitioned event log with all four events."""
    run_until("folder", page)
    lines = read_log(Path("telemetry/live"))
    assert [e["event_type"] for e in lines] == [
        "session.started",
        "skill.invoked",
        "tool.called",
        "session.ended",
    ]


def test_analyze_sample_reads_the_folder(page: dict[str, Any], capsys) -> None:
    """analyze_file over the folder counts the quick start and the folder sessions."""
    namespace = run_until("analyze", page)
    assert namespace["report"]["total_sessions"] == 2
    assert "2 sessions, success rate 100.0%" in capsys.readouterr().out


def test_middleware_hooks_record_a_session(page: dict[str, Any]) -> None:
    """The hook functions drive a whole session into the collector."""
    ns = run_until("middleware", page)
    sid = ns["on_skill_start"]("Create a web app", {"user_id": "u7"})
    ns["on_skill_event"](sid, "tool.called", {"tool": "az"})
    ns["on_skill_complete"](sid, "created", False, "quota exceeded")
    (session,) = ns["collector"].sessions
    assert (session.metadata, session.tool_calls) == ({"user_id": "u7"}, [{"tool": "az"}])
    assert (session.success, session.error) == (False, "quota exceeded")
    assert list(Path("telemetry").glob("*.json"))


def test_log_parsing_and_grouping(page: dict[str, Any]) -> None:
    """Parsed log lines group into one session with its skill and duration."""
    ns = run_until("log-grouping", page)
    (session,) = ns["sessions"]
    assert (session.session_id, session.skill_name) == ("r1", "azure-deploy")
    assert (session.duration_ms, session.success, len(session.tool_calls)) == (2000, True, 1)


def test_webhook_routes(page: dict[str, Any]) -> None:
    """Both webhook routes work through Flask's test client."""
    ns = run_until("webhook", page)
    client = ns["app"].test_client()
    started = client.post("/telemetry/session/start", json={"prompt": "hi", "metadata": {"u": 1}})
    sid = started.get_json()["session_id"]
    answer = client.post(
        f"/telemetry/session/{sid}/event",
        json={"event_type": "tool.called", "data": {"tool": "az"}},
    )
    assert answer.get_json() == {"ok": True}
    session = ns["collector"].get_session(sid)
    assert (session.prompt, session.metadata, session.tool_calls) == (
        "hi",
        {"u": 1},
        [{"tool": "az"}],
    )


def test_convert_writes_eval_tasks(page: dict[str, Any]) -> None:
    """The conversion loop writes one YAML task for the quick start's session."""
    run_until("convert", page)
    (path,) = Path("tasks").glob("*.yaml")
    task = yaml.safe_load(path.read_text())
    assert task["id"].startswith("runtime-") and path.name == f"{task['id']}.yaml"
    assert task["inputs"]["prompt"] == "Deploy my app to Azure"
    assert task["captured"]["output"] == "Deployed to https://myapp.azurewebsites.net"
    assert task["expected"]["outcomes"] == [{"type": "task_completed"}]


def test_the_converted_tasks_check_as_the_guide_shows(page: dict[str, Any]) -> None:
    """`waza check` reads the tasks the SPEC's loop writes, `captured` and all, and the session passes."""
    run_until("convert", page)
    words = command("check-converted")
    assert words[:2] == ["waza", "check"]
    result = subprocess.run([sys.executable, "-m", "waza", *words[1:]], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout


def test_production_sample_samples_and_redacts(page: dict[str, Any]) -> None:
    """The production sample keeps a sample of sessions and writes no e-mail address."""
    run_until("production-check", page)
    lines = read_log(Path("prod-telemetry"))
    kept = {line["session_id"] for line in lines}
    assert 0 < len(kept) < 40
    assert "contoso.com" not in json.dumps(lines)
    assert any(line["data"].get("latency_ms") == 640 for line in lines)


def test_http_sink_sample_never_raises_without_a_server(page: dict[str, Any], caplog) -> None:
    """The HttpSink sample runs with no server listening: the skill is untouched, the loss counted."""
    ns = run_until("http-sink", page)
    collector = ns["collector"]
    sid = collector.start_session("hi", skill_name="azure-deploy")
    collector.record_event(sid, "tool.called", {"tool": "az"})
    collector.end_session(sid, "done", True)
    collector.close()
    assert ns["sink"].dropped == 3
    assert "waza serve" in caplog.text


def test_http_sink_spool_sample_keeps_events_without_a_server(page: dict[str, Any]) -> None:
    """The spool sample with no server listening: the session waits on disk, nothing is dropped."""
    ns = run_until("http-sink-spool", page)
    collector = ns["collector"]
    with collector.session("hi", skill_name="azure-deploy") as s:
        s.tool("az")
    collector.close()
    spooled = [line for path in Path("telemetry/spool").iterdir() for line in path.read_bytes().splitlines()]
    assert [json.loads(line)["event_type"] for line in spooled][0] == "session.started"
    assert len(spooled) == ns["sink"].pending >= 3 and ns["sink"].dropped == 0
