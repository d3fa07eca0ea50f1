"""Per-tool, per-model and per-error figures and LLM cost, against values computed here."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.analysis.test_figures import percentile
from waza.cli import main
from waza.compare.outcomes import load_outcomes
from waza.engine.slicing import Slice
from waza.store.reader import load_sessions
from waza.tasks.graders import tokens_used
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer

PRICES = {"gpt-4.1": {"input": 0.002, "output": 0.008}, "gpt-4.1-mini": {"input": 0.0004, "output": 0.0016}}


def events_of(raw, skill=None):
    for events in raw:
        session_skill = next(e["skill_name"] for e in events if e["skill_name"])
        if skill is None or session_skill == skill:
            yield from events


@pytest.mark.parametrize("skill", [None, "azure-diagnostics"])
def test_tools_models_and_errors(sample_dir: Path, sample_raw, skill) -> None:
    """Calls, failure rate, p95 and top error per tool; tokens, latency and cost per model; errors by type."""
    report = TelemetryAnalyzer().analyze_paths([sample_dir], scope=Slice(skill=skill), prices=PRICES)
    events = list(events_of(sample_raw, skill))

    calls = Counter(e["data"]["tool"] for e in events if e["event_type"] == "tool.called")
    completions = defaultdict(list)
    for e in events:
        if e["event_type"] == "tool.completed":
            completions[e["data"]["tool"]].append(e["data"])
    assert [t["tool"] for t in report["tools"]] == sorted(calls, key=lambda t: (-calls[t], t))
    for tool in report["tools"]:
        done = completions[tool["tool"]]
        assert tool["calls"] == calls[tool["tool"]]
        assert tool["failure_rate"] == pytest.approx(sum(not d["success"] for d in done) / len(done))
        assert tool["duration_ms_p95"] == pytest.approx(percentile([d["duration_ms"] for d in done], 0.95))
        errors = Counter(d["error"] for d in done if "error" in d)
        top = min(errors, key=lambda e: (-errors[e], e)) if errors else None
        assert tool["top_error"] == top

    for model in report["llm"]:
        requests = [
            e["data"]
            for e in events
            if e["event_type"] == "llm.request" and e["data"]["model"] == model["model"]
        ]
        latencies = [
            e["data"]["latency_ms"]
            for e in events
            if e["event_type"] == "llm.response" and e["data"]["model"] == model["model"]
        ]
        tokens_in = sum(r["tokens"]["input"] for r in requests)
        tokens_out = sum(r["tokens"]["output"] for r in requests)
        assert (model["requests"], model["input_tokens"], model["output_tokens"]) == (
            len(requests),
            tokens_in,
            tokens_out,
        )
        assert model["latency_ms_p95"] == pytest.approx(percentile(latencies, 0.95))
        price = PRICES.get(model["model"])
        expected_cost = (
            None if price is None else tokens_in / 1000 * price["input"] + tokens_out / 1000 * price["output"]
        )
        assert model["cost"] == pytest.approx(expected_cost)
    assert report["llm_cost"] == pytest.approx(sum(m["cost"] for m in report["llm"] if m["cost"] is not None))

    # Every recorded error, once per session and text: an error event's type wins,
    # else the type the text begins with ("Timeout: ..." is a Timeout); an ending
    # error only for a session that recorded no other.
    errors: dict[tuple[str, str], str] = {}
    for e in events:
        data = e["data"]
        if e["event_type"] == "error":
            errors[(e["session_id"], data["message"])] = data["error_type"]
    for e in events:
        text = e["data"].get("error")
        if e["event_type"] == "tool.completed" and text:
            errors.setdefault((e["session_id"], text), text.split(":")[0])
    for e in events:
        text = e["data"].get("error")
        if e["event_type"] == "session.ended" and text and not any(s == e["session_id"] for s, _ in errors):
            errors[(e["session_id"], text)] = text.split(":")[0]
    by_type = defaultdict(list)
    for (_, message), error_type in errors.items():
        by_type[error_type].append(message)
    assert sum(len(m) for m in by_type.values()) > sum(e["event_type"] == "error" for e in events)
    assert {r["error_type"]: (r["count"], r["example"]) for r in report["errors"]} == {
        t: (len(messages), min(messages)) for t, messages in by_type.items()
    }


def test_details_are_in_every_report(sample_dir: Path) -> None:
    """Tools, models and errors are in the default report, from files and from memory, and the
    --details flag earlier versions needed is accepted and changes nothing."""
    plain = TelemetryAnalyzer().analyze_file(sample_dir)
    calls = sum(1 for e in json_lines(sample_dir) if e["event_type"] == "tool.called")
    assert sum(t["calls"] for t in plain["tools"]) == calls > 0
    assert plain["llm"] and plain["errors"]
    memory = TelemetryAnalyzer().analyze_sessions(RuntimeCollector.load_from_file(sample_dir))
    assert memory["tools"] == plain["tools"] and memory["llm"] == plain["llm"]
    runner = CliRunner()
    outputs = [
        json.loads(runner.invoke(main, ["analyze", str(sample_dir), "--format", "json", *flag]).output)
        for flag in ([], ["--details"])
    ]
    assert outputs[0] == outputs[1] and outputs[0]["tools"] == plain["tools"]


def json_lines(folder: Path):
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            yield json.loads(line)


def test_bad_price_table_is_a_one_line_error(sample_dir: Path, tmp_path: Path) -> None:
    """A price table that is not model -> {input, output} is refused in one line."""
    table = tmp_path / "prices.yaml"
    table.write_text("gpt-4.1: {input: cheap}\n")
    result = CliRunner().invoke(main, ["analyze", str(sample_dir), "--prices", str(table)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: price table")


def test_errors_raised_through_the_session_api_are_counted_once(tmp_path: Path) -> None:
    """An exception from s.tool() that ends its session is one error of its type; so is an ended error."""
    with RuntimeCollector(directory=tmp_path / "t") as collector:
        for n in range(3):
            session = collector.session(f"Deploy app-{n}", skill_name="azure-deploy")
            with pytest.raises(RuntimeError), session as s, s.tool("az", args=["webapp", "create"]):
                raise RuntimeError("subscription not found")
        sid = collector.start_session("Check app-9")
        collector.end_session(sid, "", False, "QuotaExceeded: no cores left")
        sid = collector.start_session("Check app-10")
        collector.end_session(sid, "", False, "the skill gave up")
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"])
    assert {r["error_type"]: r["count"] for r in report["errors"]} == {
        "RuntimeError": 3,
        "QuotaExceeded": 1,
        "error": 1,
    }


def test_tokens_given_as_one_number_count_as_the_total(tmp_path: Path) -> None:
    """``tokens=812`` (a plain number), a split, and an SDK's total_tokens all count, in the report, in
    `waza compare` and in a behavior grader's token budget."""
    recorded = [812, {"input": 100, "output": 20}, {"total_tokens": 64}, {"prompt_tokens": 7}]
    with RuntimeCollector(directory=tmp_path / "t") as collector:
        for n, tokens in enumerate(recorded):
            with collector.session(f"Deploy app-{n}", skill_name="azure-deploy") as s:
                s.llm("gpt-4.1", tokens=tokens, latency_ms=10)
    expected = 812 + 120 + 64 + 7
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"])
    (model,) = report["llm"]
    assert model["total_tokens"] == expected and model["input_tokens"] == 107 and model["output_tokens"] == 20
    (outcomes,), _ = load_outcomes([tmp_path / "t"], [Slice()])
    assert sorted(o.tokens for o in outcomes) == sorted([812, 120, 64, 7])
    loaded, _ = load_sessions([tmp_path / "t"])
    assert sorted(tokens_used(s) for s in loaded) == sorted([812, 120, 64, 7])


def test_exports_give_the_same_details_as_the_event_log(tmp_path: Path) -> None:
    """The quick start's flow (record, export_to_file, analyze the export): tools, models, tokens and
    errors as counted here from the export file itself, and the same as from the event log."""
    with RuntimeCollector(directory=tmp_path / "log") as logged:
        memory = RuntimeCollector()
        for collector in (logged, memory):
            for n in range(12):
                sid = collector.start_session(f"Deploy app-{n}", {"user_id": f"u{n % 3}"})
                collector.record_event(sid, "skill.invoked", skill_name="azure-deploy")
                tool = "az" if n % 3 else "kubectl"
                collector.record_event(sid, "tool.called", data={"tool": tool, "args": ["create"]})
                ok = n % 4 != 0
                done = {
                    "tool": tool,
                    "success": ok,
                    "duration_ms": 100 + n,
                    "error": None if ok else "Quota: none",
                }
                collector.record_event(sid, "tool.completed", data=done)
                collector.record_event(
                    sid, "llm.request", data={"model": "gpt-4.1", "tokens": {"input": 50 + n, "output": 5}}
                )
                collector.end_session(sid, output="done", success=ok, error=None if ok else "Quota: none")
        memory.export_to_file(tmp_path / "export" / "sessions.json")
    document = json.loads((tmp_path / "export" / "sessions.json").read_text())
    events = [e for s in document["sessions"] for e in s["events"]]
    calls = Counter(e["data"]["tool"] for e in events if e["event_type"] == "tool.called")
    failed = Counter(
        e["data"]["tool"] for e in events if e["event_type"] == "tool.completed" and not e["data"]["success"]
    )
    tokens = [e["data"]["tokens"] for e in events if e["event_type"] == "llm.request"]
    failures = sum(1 for s in document["sessions"] if not s["success"])
    reports = {name: TelemetryAnalyzer().analyze_paths([tmp_path / name]) for name in ("export", "log")}
    for name, report in reports.items():
        assert {t["tool"]: t["calls"] for t in report["tools"]} == dict(calls), name
        assert {t["tool"]: round(t["failure_rate"] * t["completed"]) for t in report["tools"]} == {
            tool: failed[tool] for tool in calls
        }, name
        (model,) = report["llm"]
        assert model["requests"] == len(tokens) and model["input_tokens"] == sum(t["input"] for t in tokens)
        assert model["total_tokens"] == sum(t["input"] + t["output"] for t in tokens)
        assert report["errors"] == [{"error_type": "Quota", "count": failures, "example": "Quota: none"}], (
            name
        )
    assert reports["export"]["tools"] == reports["log"]["tools"]
