"""`waza convert`: task files, their schema, interesting selection, and suggested expectations."""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.conftest import write_jsonl
from waza.cli import main
from waza.store.export import write_export
from waza.store.reader import load_sessions
from waza.tasks.files import PROVENANCE_FILE, SUITE_FILE
from waza.tasks.waza_format import eval_problems, task_problems

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WORDS = [f"{a}{b}" for a in ("bal", "cor", "dim", "fen", "gul", "hap", "jor", "kel") for b in "aeiouy"]


def session_events(
    sid: str,
    prompt: str,
    *,
    at: datetime = START,
    duration_ms: int = 1000,
    ok: bool = True,
    tools: list[tuple[str, bool]] = (),
    skill: str = "azure-deploy",
    output: str = "done",
    error: str | None = None,
    metadata: dict[str, Any] | None = None,
    tokens: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The event-log lines of one session, with its timings given."""

    def event(
        offset_ms: int, kind: str, data: dict[str, Any], skill_name: str | None = None
    ) -> dict[str, Any]:
        moment = at + timedelta(milliseconds=offset_ms)
        return {"timestamp": moment.isoformat(), "event_type": kind, "skill_name": skill_name, "data": data,
                "session_id": sid}  # fmt: skip

    lines = [
        event(0, "session.started", {"prompt": prompt, "metadata": metadata or {"user_id": "u1"}}),
        event(0, "skill.invoked", {"skill_name": skill}, skill),
    ]
    if tokens is not None:
        lines.append(event(1, "llm.request", {"model": "gpt-4.1", "tokens": tokens}))
    for n, (tool, tool_ok) in enumerate(tools):
        lines.append(event(n + 1, "tool.called", {"tool": tool, "args": ["x"]}))
        lines.append(event(n + 2, "tool.completed", {"tool": tool, "success": tool_ok}))
    lines.append(event(duration_ms, "session.ended", {"output": output, "success": ok, "error": error}))
    return lines


def random_prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(12))


def converted(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    """The tasks written, as waza run would find them through eval.yaml's globs, each with its
    provenance record; every file checked against the model of waza's formats."""
    out = tmp_path / "tasks"
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "log"), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    suite = yaml.safe_load((out / SUITE_FILE).read_text(encoding="utf-8"))
    assert eval_problems(suite) == []
    reached = sorted({path for pattern in suite["tasks"] for path in out.glob(pattern)})
    assert reached == sorted((out / "tasks").iterdir())  # the globs reach every task file
    records = yaml.safe_load((out / PROVENANCE_FILE).read_text(encoding="utf-8"))["tasks"]
    tasks = []
    for path in reached:
        task = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert task_problems(task) == [], path
        tasks.append(task | {"provenance": records[task["id"]]})
    return tasks, result.output


def test_task_files_are_valid_and_safely_named(tmp_path: Path) -> None:
    ids = ["../../etc/passwd", "a:b:c", "with spaces  here", "naïve-日本語-ß", "CON", "x" * 300]
    lines = [e for n, sid in enumerate(ids) for e in session_events(sid, f"prompt {n} for {sid}")]
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    tasks, _ = converted(tmp_path, "--select", "all")
    files = sorted((tmp_path / "tasks" / "tasks").iterdir())
    assert len(files) == len(ids)  # a file per task
    assert sorted(task["provenance"]["session_id"] for task in tasks) == sorted(ids)
    for path in files:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,90}", path.name), path.name
        assert not path.name.upper().startswith(("CON.", "CON-"))
    for task in tasks:
        assert task["id"] == f"runtime-{task['provenance']['session_id']}"
    assert not list(tmp_path.glob("etc*")) and not (tmp_path / "etc").exists()


def test_existing_files_need_force(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "log" / "events.jsonl", session_events("s1", "deploy app-1"))
    converted(tmp_path)
    again = CliRunner().invoke(main, ["convert", str(tmp_path / "log"), "-o", str(tmp_path / "tasks")])
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    converted(tmp_path, "--force")


def test_interesting_selection_collapses_duplicates_and_keeps_rare_failures(tmp_path: Path) -> None:
    rng = random.Random(5)
    lines: list[dict[str, Any]] = []
    for n in range(1000):  # ordinary sessions, each prompt its own
        tools = [(rng.choice(["az", "git"]), True) for _ in range(2)]
        lines += session_events(f"ok-{n}", random_prompt(rng), at=START + timedelta(minutes=n),
                                duration_ms=rng.randrange(900, 1100), tools=tools)  # fmt: skip
    groups = {}
    for g in range(6):  # slow sessions asked again and again in other words
        base = random_prompt(rng) + " " + random_prompt(rng)
        variants = [
            base,
            base.upper(),
            base.replace(" ", ",  ") + "!",
            f"{base} {g * 7 + 3}",
            base + " please",
        ]
        groups[g] = [f"dup-{g}-{v}" for v in range(len(variants))]
        for sid, prompt in zip(groups[g], variants, strict=True):
            lines += session_events(sid, prompt, duration_ms=60_000 + g, tools=[("az", True)])
    failures = [f"fail-{n}" for n in range(6)]
    for sid in failures:  # rare failures, each with a prompt of its own
        lines += session_events(
            sid, random_prompt(rng), ok=False, error="QuotaExceeded", tools=[("az", False)]
        )
    rng.shuffle(lines)
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)

    tasks, output = converted(
        tmp_path, "--select", "interesting", "--limit", "50", "--seed", "11", "--explain"
    )
    picked = [task["provenance"]["session_id"] for task in tasks]
    assert len(picked) == 50
    for members in groups.values():
        assert len(set(picked) & set(members)) == 1, members  # each repeated question once
    assert set(failures) <= set(picked)
    assert "failed: QuotaExceeded" in output and "slow:" in output
    assert f"{6 * 4} near-duplicates left out" in output

    again, _ = converted(tmp_path, "--select", "interesting", "--limit", "50", "--seed", "11", "--force")
    assert [task["id"] for task in again] == [task["id"] for task in tasks]


def test_suggested_expectations_and_redaction(tmp_path: Path) -> None:
    prompt = "Deploy app-42 for jane.doe@example.com to westeurope"
    output = "Deployed app-42 to https://app-42.azurewebsites.net and https://portal.azure.com/x"
    tools = [("az", True), ("git", False), ("az", True), ("bicep", True)]
    lines = session_events("good", prompt, tools=tools, output=output)
    lines += session_events("bad", "Migrate db-7", ok=False, error="boom", tools=[("sql", False)])
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    tasks, _ = converted(tmp_path, "--select", "all")
    good, bad = sorted(tasks, key=lambda t: t["provenance"]["session_id"], reverse=True)

    graders = {grader["name"]: (grader["type"], grader["config"]) for grader in good["graders"]}
    assert graders == {
        "tool-budget": ("behavior", {"max_tool_calls": 6, "required_tools": ["az", "bicep"]}),
        "tool-order": ("action_sequence", {"matching_mode": "in_order_match",
                                           "expected_actions": ["az", "az", "bicep"]}),
        "output-mentions": ("text", {"contains": ["app-42.azurewebsites.net", "portal.azure.com", "app-42"]}),
        "skills-invoked": ("skill_invocation", {"mode": "in_order", "required_skills": ["azure-deploy"],
                                                "allow_extra": True}),
    }  # fmt: skip
    assert good["expected"]["outcomes"] == [{"type": "task_completed"}]  # informational, as in waza
    assert good["provenance"]["review"] == {"status": "suggested", "suggested": list(graders)}
    assert {"runtime", "azure-deploy", "succeeded", "suggested"} == set(good["tags"])
    assert "jane.doe@example.com" not in yaml.safe_dump(good)
    assert "<EMAIL>" in good["inputs"]["prompt"]

    # A failed session's run should now succeed within its budget; what it did is no model.
    assert [grader["type"] for grader in bad["graders"]] == ["behavior", "skill_invocation"]
    assert "outcomes" not in bad["expected"] and "required_tools" not in bad["expected"]["behavior"]
    assert bad["provenance"] == {
        "session_id": "bad",
        "captured_at": START.isoformat(),
        "skill": "azure-deploy",
        "sample_rate": 1.0,
        "succeeded": False,
        "error": "boom",
        "model": None,
        "review": {"status": "suggested", "suggested": ["tool-budget", "skills-invoked"]},
        "prompt_sha256": hashlib.sha256(b"Migrate db-7").hexdigest(),
    }
    # The digest is of the prompt as recorded, so the redacted task still finds its session.
    assert good["provenance"]["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()


def test_a_suite_per_skill_that_waza_check_grades_back(tmp_path: Path) -> None:
    """Sessions of two skills give two suites, each valid and complete; checking the sessions they
    came from against them passes the successful ones and fails the failed one, by its graders,
    whether the sessions are read through the engine (an event log) or in Python (an export)."""
    lines = session_events("d1", "Deploy app-1", tools=[("az", True)], output="Deployed app-1")
    lines += session_events("d2", "Deploy app-2", ok=False, error="boom", tools=[("az", False)])
    lines += session_events(
        "c1", "Cost of rg-3", skill="azure-cost", tools=[("kql", True)], output="rg-3: 4 EUR"
    )
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    out = tmp_path / "tasks"
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "log"), "-o", str(out), "--select", "all"])
    assert result.exit_code == 0 and "2 eval.yaml files, a suite per skill" in result.output
    suites = {path.parent.name: yaml.safe_load(path.read_text()) for path in out.glob("*/eval.yaml")}
    assert {suite["skill"] for suite in suites.values()} == {"azure-deploy", "azure-cost"}
    for folder, suite in suites.items():
        assert eval_problems(suite) == [] and suite["tasks"] == ["tasks/*.yaml"]
        assert all(
            task_problems(yaml.safe_load(p.read_text())) == [] for p in (out / folder / "tasks").iterdir()
        )
    sessions, _ = load_sessions([tmp_path / "log"])
    write_export(sessions, tmp_path / "export.json")
    for recorded in (tmp_path / "log", tmp_path / "export.json"):  # through DuckDB, and through Python
        check = CliRunner().invoke(main, ["check", str(out), str(recorded), "--format", "json"])
        assert check.exit_code == 1, check.output
        statuses = {r["task"]: r["status"] for r in json.loads(check.output)["results"]}
        assert statuses == {"runtime-d1": "passed", "runtime-c1": "passed", "runtime-d2": "failed"}


def test_exports_are_converted_as_event_logs_are(tmp_path: Path) -> None:
    """An export (read by the Python reader, not the engine) gives the same tasks as the event log
    of the same sessions, with the same filters."""
    lines = session_events("d1", "Deploy app-1", tools=[("az", True)], output="Deployed app-1")
    lines += session_events("d2", "Deploy app-2", ok=False, error="boom", tools=[("az", False)])
    lines += session_events("c1", "Cost of rg-3", skill="azure-cost", tools=[("kql", True)])
    write_jsonl(tmp_path / "log" / "events.jsonl", lines)
    export = tmp_path / "export.json"
    sessions, _ = load_sessions([tmp_path / "log"])
    write_export(sessions, export)
    tasks = {}
    for source in (tmp_path / "log", export):
        out = tmp_path / f"out-{source.name}"
        args = ["convert", str(source), "-o", str(out), "--skill", "azure-deploy", "--failed"]
        assert CliRunner().invoke(main, args).exit_code == 0
        tasks[source.name] = sorted(p.read_text() for p in (out / "tasks").iterdir())
    assert tasks["log"] == tasks["export.json"] and len(tasks["log"]) == 1
