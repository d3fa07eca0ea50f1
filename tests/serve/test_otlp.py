"""OTLP/HTTP ingest: the OpenTelemetry SDK's own exporter, and OTLP JSON as the spec encodes it."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtobufExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.analysis.test_spark_parity import assert_same
from tests.conftest import read_log
from tests.serve.test_server import server
from waza.analysis.details import load_prices
from waza.telemetry import TelemetryAnalyzer


@pytest.mark.parametrize("exporter", [ProtobufExporter, JsonExporter], ids=["protobuf", "json"])
def test_the_sdk_exporter_sends_genai_spans(tmp_path: Path, exporter: type) -> None:
    """OpenTelemetry's own OTLP/HTTP exporters, in both encodings they offer."""
    tokens_in = [120, 80, 300, 45, 61]
    with server(tmp_path / "t") as (url, _):
        provider = TracerProvider(resource=Resource.create({"service.name": "agent-runtime"}))
        provider.add_span_processor(BatchSpanProcessor(exporter(endpoint=f"{url}/v1/traces")))
        tracer = provider.get_tracer("test")
        for n, count in enumerate(tokens_in):
            agent = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "copilot",
                "user.id": f"u{n % 3}",
            }
            with tracer.start_as_current_span("invoke_agent copilot", attributes=agent) as root:
                if n % 2 == 0:  # a skill loaded: it names the session and owns the tools after it
                    loading = {"gen_ai.operation.name": "execute_tool", "gen_ai.skill.name": "azure-deploy"}
                    tracer.start_span("execute_tool load_skill", attributes=loading).end()
                for tool in ("az", "git")[: 1 + n % 2]:
                    with tracer.start_as_current_span(f"execute_tool {tool}", attributes={
                            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                            "gen_ai.tool.call.arguments": json.dumps(["webapp", "up"])}) as span:  # fmt: skip
                        if tool == "git":
                            span.set_status(Status(StatusCode.ERROR, "merge conflict"))
                with tracer.start_as_current_span("chat gpt-4o", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                        "gen_ai.usage.input_tokens": count, "gen_ai.usage.output_tokens": 10}):  # fmt: skip
                    time.sleep(0.001)
                if n == 4:
                    root.set_status(Status(StatusCode.ERROR, "quota exceeded"))
        assert provider.force_flush(10_000)
        provider.shutdown()

    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"])
    assert report["total_sessions"] == 5 and report["completed_sessions"] == 5
    assert report["metrics"]["success_rate"] == 0.8
    assert report["skill_breakdown"]["azure-deploy"]["invocations"] == 3  # n = 0, 2, 4
    assert report["skill_breakdown"]["copilot"]["invocations"] == 2
    assert report["metrics"]["distinct_users"] == 3
    tools = {t["tool"]: t for t in report["tools"]}
    assert (tools["az"]["calls"], tools["az"]["failure_rate"]) == (5, 0.0)
    assert (tools["git"]["calls"], tools["git"]["failure_rate"], tools["git"]["top_error"]) == (
        2,
        1.0,
        "merge conflict",
    )
    (model,) = report["llm"]
    assert model["model"] == "gpt-4o" and model["requests"] == 5
    assert (model["input_tokens"], model["output_tokens"]) == (sum(tokens_in), 50)
    assert all(len(e["session_id"]) == 32 for e in read_log(tmp_path / "t"))  # trace ids in hex


def otlp_json(trace_id: str, *, bad_span: bool = False) -> dict:
    """An export as OTLP's JSON encoding writes it: hex ids, 64-bit integers as strings, integer enums."""
    start = 1_795_000_000_000_000_000  # 2026-11-18
    spans = [
        {"traceId": trace_id, "spanId": "00f067aa0ba902b7", "name": "invoke_agent azure-cost", "kind": 1,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 2_000_000_000),
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                        {"key": "gen_ai.agent.name", "value": {"stringValue": "azure-cost"}},
                        {"key": "gen_ai.conversation.id", "value": {"stringValue": "conv-1"}},
                        {"key": "waza.metadata.environment", "value": {"stringValue": "production"}}],
         "status": {"code": 2, "message": "budget exceeded"},
         "events": [{"name": "exception", "timeUnixNano": start + 1_000_000_000,
                     "attributes": [{"key": "exception.type", "value": {"stringValue": "QuotaError"}},
                                    {"key": "exception.message", "value": {"stringValue": "no budget"}}]}]},
        {"traceId": trace_id, "spanId": "00f067aa0ba902b8", "parentSpanId": "00f067aa0ba902b7",
         "name": "chat gpt-4o-mini", "kind": 3, "startTimeUnixNano": start + 10,
         "endTimeUnixNano": str(start + 500_000_000),
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                        {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "42"}},
                        {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": 7}}]},
    ]  # fmt: skip
    if bad_span:
        spans.append(
            {"traceId": "", "spanId": "00f067aa0ba902b9", "name": "orphan", "startTimeUnixNano": "1"}
        )
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cost-bot"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]}  # fmt: skip


def test_otlp_json_with_hex_ids_and_a_refused_span(tmp_path: Path) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with server(tmp_path / "t") as (url, _):
        body = gzip.compress(json.dumps(otlp_json(trace_id, bad_span=True)).encode())
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        reply = httpx.post(f"{url}/v1/traces", content=body, headers=headers)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
        assert reply.json()["partialSuccess"]["rejectedSpans"] == "1"
        for bad, status in [(b"{", 400), (b"[]", 400), (b"\x00\x01", 400)]:
            assert httpx.post(f"{url}/v1/traces", content=bad, headers={"content-type": "application/json"}
                              ).status_code == status  # fmt: skip
        assert (
            httpx.post(f"{url}/v1/traces", content=b"x", headers={"content-type": "text/plain"}).status_code
            == 415
        )
        bomb = gzip.compress(b"0" * 50 * 2**20)
        assert httpx.post(f"{url}/v1/traces", content=bomb, headers=headers).status_code == 413

    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"], scope=None)
    assert report["total_sessions"] == 1 and report["metrics"]["success_rate"] == 0.0
    assert report["skills"] == ["azure-cost"] and report["metrics"]["avg_duration_ms"] == 2000
    assert report["llm"][0]["input_tokens"] == 42 and report["llm"][0]["output_tokens"] == 7
    assert report["errors"] == [{"error_type": "QuotaError", "count": 1, "example": "no budget"}]
    (started,) = [e for e in read_log(tmp_path / "t") if e["event_type"] == "session.started"]
    assert started["session_id"] == trace_id
    assert started["data"]["metadata"] == {
        "service.name": "cost-bot",
        "environment": "production",
        "conversation_id": "conv-1",
    }


def test_a_copilot_style_trace_gives_loaded_skills_nested_calls_once_and_cached_tokens(
    tmp_path: Path,
) -> None:
    """`invoke_agent copilot` sessions that load skills through tool calls, run a skill script that
    fails once, and trace each model request twice (an agent span around the client's span), with
    cached and reasoning tokens: per-skill figures for the loaded skills, the script's failure as a
    failed tool call, each request once, and cost priced with the cache price."""
    skills = ["azure-deploy", "azure-diagnostics", "azure-deploy", "azure-cost"]
    with server(tmp_path / "t") as (url, _):
        provider = TracerProvider(resource=Resource.create({"service.name": "copilot-cli"}))
        provider.add_span_processor(BatchSpanProcessor(ProtobufExporter(endpoint=f"{url}/v1/traces")))
        tracer = provider.get_tracer("test")
        for n, skill in enumerate(skills):
            agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "copilot"}
            with tracer.start_as_current_span("invoke_agent copilot", attributes=agent):
                load = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "skill"}
                if n % 2:  # the skill in the call's arguments, or where the Copilot CLI records it
                    load["gen_ai.tool.call.arguments"] = json.dumps({"skill": skill})
                else:
                    load["github.copilot.tool.parameters.skill_name"] = skill
                tracer.start_span("execute_tool skill", attributes=load).end()
                command = json.dumps({"command": f"./{skill}/run.sh"})
                script = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "bash",
                          "gen_ai.tool.call.arguments": command}  # fmt: skip
                with tracer.start_as_current_span("execute_tool bash", attributes=script) as span:
                    if n == 1:
                        span.set_status(Status(StatusCode.ERROR, "exit status 2"))
                chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-5"}
                with tracer.start_as_current_span("chat gpt-5", attributes=chat):  # the agent's view
                    with tracer.start_as_current_span("chat gpt-5", attributes=chat | {  # the client's
                            "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200,
                            "gen_ai.usage.cache_read.input_tokens": 600,
                            "gen_ai.usage.reasoning.output_tokens": 50}):  # fmt: skip
                        pass
        provider.shutdown()
    prices = tmp_path / "prices.yaml"
    prices.write_text("gpt-5: {input: 1.0, output: 10.0, cache_read: 0.1}\n")
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"], prices=load_prices(prices))
    breakdown = report["skill_breakdown"]
    assert {name: row["invocations"] for name, row in breakdown.items()} == {
        "azure-deploy": 2, "azure-diagnostics": 1, "azure-cost": 1}  # fmt: skip
    assert report["metrics"]["success_rate"] == 1.0  # the agent recovered from the failed script
    tools = {row["tool"]: (row["calls"], row["failure_rate"]) for row in report["tools"]}
    assert tools == {"skill": (4, 0.0), "bash": (4, 0.25)}
    # Each load, and the calls after it until the next, per skill: the failing script is azure-diagnostics'.
    loaded = {row["skill"]: (row["loads"], row["sessions"], row["tool_calls"], row["tool_failures"])
              for row in report["skills_loaded"]}  # fmt: skip
    assert loaded == {
        "azure-deploy": (2, 2, 4, 0),
        "azure-diagnostics": (1, 1, 2, 1),
        "azure-cost": (1, 1, 2, 0),
    }
    (llm,) = report["llm"]
    assert (llm["requests"], llm["input_tokens"], llm["output_tokens"]) == (4, 4000, 800)
    assert (llm["cache_read_tokens"], llm["reasoning_tokens"]) == (2400, 200)
    per_request = (400 * 1.0 + 600 * 0.1 + 200 * 10.0) / 1000  # uncached input, cached input, output
    assert llm["cost"] == pytest.approx(4 * per_request) == report["llm_cost"]
    spark = TelemetryAnalyzer(engine="spark").analyze_paths([tmp_path / "t"], prices=load_prices(prices))
    for found in (report, spark):
        found.pop("input"), found.pop("storage")
    assert_same(report, spark)


def test_the_tools_that_load_skills_are_the_operators_choice(tmp_path: Path) -> None:
    """A runtime whose skill-loading tool has a name of its own: `--skill-tool` names it, and its
    calls then name the sessions' skills; without it they are plain tool calls."""
    reports = {}
    for name, args in (("default", ()), ("configured", ("--skill-tool", "open_skill"))):
        with server(tmp_path / name, *args) as (url, _):
            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(ProtobufExporter(endpoint=f"{url}/v1/traces")))
            tracer = provider.get_tracer("test")
            agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "runtime"}
            with tracer.start_as_current_span("invoke_agent runtime", attributes=agent):
                tracer.start_span("execute_tool open_skill", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "open_skill",
                    "gen_ai.tool.call.arguments": json.dumps({"name": "azure-deploy"})}).end()  # fmt: skip
            provider.shutdown()
        reports[name] = TelemetryAnalyzer().analyze_paths([tmp_path / name])
    assert list(reports["default"]["skill_breakdown"]) == ["runtime"]
    assert list(reports["configured"]["skill_breakdown"]) == ["azure-deploy"]
    for report in reports.values():  # a tool call either way
        assert [(row["tool"], row["calls"]) for row in report["tools"]] == [("open_skill", 1)]


def test_tool_arguments_that_are_no_json_or_nested_past_any_bound_are_kept_as_text(tmp_path: Path) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4737"
    document = otlp_json(trace_id)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    deep = "[" * 5000 + "]" * 5000
    for number, arguments in enumerate([deep, "NaN", '{"region": "westus"}']):
        spans.append(
            {"traceId": trace_id, "spanId": f"00f067aa0ba903{number:02x}", "parentSpanId": "00f067aa0ba902b7",
             "name": "execute_tool az", "startTimeUnixNano": str(1_795_000_000_000_000_100 + number),
             "endTimeUnixNano": str(1_795_000_000_100_000_000),
             "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                            {"key": "gen_ai.tool.name", "value": {"stringValue": "az"}},
                            {"key": "gen_ai.tool.call.arguments", "value": {"stringValue": arguments}}]}
        )  # fmt: skip
    with server(tmp_path / "t") as (url, _):
        reply = httpx.post(f"{url}/v1/traces", json=document)
        assert reply.status_code == 200 and "partialSuccess" not in reply.json()
    called = [e["data"]["args"] for e in read_log(tmp_path / "t") if e["event_type"] == "tool.called"]
    assert sorted(called, key=str) == sorted([deep, "NaN", {"region": "westus"}], key=str)
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"], scope=None)
    assert {t["tool"]: t["calls"] for t in report["tools"]} == {"az": 3}
