"""Traces from real agent runtimes, exported over OTLP/HTTP to `waza serve` on loopback, give exactly
the sessions that ran: the OpenAI Agents SDK under both of its OpenTelemetry bridges, an agent loop
on the plain `openai` client under both client instrumentations, and a LangGraph agent."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.producers import langgraph_app, openai_client_app
from tests.producers import openai_agents_app as app
from tests.serve.test_server import server
from waza.store.reader import load_sessions

RUNS = 20
# Application, instrumentation, the agent's name, requests per model. With OpenInference's client
# instrumentation the span of a request the server failed names no model, and a LangChain chat
# model of one's own reports none at all: they are shown so.
SETUPS = [
    (app, "openinference", "Assistant", {"scripted-model": 37}),
    (app, "otel", "Assistant", {"scripted-model": 37}),
    (openai_client_app, "openinference", "weather-agent", {"scripted-model": 36, None: 1}),
    (openai_client_app, "otel", "weather-agent", {"scripted-model": 37}),
    (langgraph_app, "openinference", "weather-agent", {None: 37}),
]
# Content capture on: the client instrumentations record prompts only then.
CONTENT = {
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
    "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
}


def expected_figures() -> dict:
    """What the applications did, from their own script (see their docstrings), not from waza."""
    for module in (app, openai_client_app, langgraph_app):  # all follow one script
        assert (module.FAILING_TOOL_RUNS, module.FAILING_MODEL_RUN) == ((0, 2), 1)
    failed_tool = set(app.FAILING_TOOL_RUNS)
    weather = [run for run in range(RUNS) if run % 2 == 0]
    adds = [run for run in range(RUNS) if run % 2 == 1 and run != app.FAILING_MODEL_RUN]
    # Two model calls for a run whose tool worked; one for a failed tool; one failed call for the model error.
    answered = 2 * (len(weather) + len(adds) - len(failed_tool)) + len(failed_tool)
    return {
        "sessions": RUNS,
        "failed": len(failed_tool) + 1,
        "tools": {"get_weather": (len(weather), len(failed_tool & set(weather))), "add": (len(adds), 0)},
        "requests": answered + 1,
        "input_tokens": 100 * answered,
        "output_tokens": 20 * answered,
    }


def run_app(module: ModuleType, instrumentation: str, endpoint: str) -> None:
    command = [sys.executable, str(module.__file__), instrumentation, endpoint, str(RUNS)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ | CONTENT)
    assert done.returncode == 0, done.stderr[-2000:]


def analyze(folder: Path) -> dict:
    command = [sys.executable, "-m", "waza", "analyze", str(folder), "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("module", "instrumentation", "agent", "requests"),
    SETUPS,
    ids=[f"{module.__name__.rsplit('.', 1)[1]}-{kind}" for module, kind, _, _ in SETUPS],
)
def test_each_runtime_and_instrumentation_gives_the_runs_as_they_were(
    tmp_path: Path, module: ModuleType, instrumentation: str, agent: str, requests: dict
) -> None:
    """Failures sit on the agent span, below a root the Agents SDK's bridges always close OK, and
    the agent's name is on that span too: both must reach the session. Every tool, model call and
    token counts once, each failed run once among the errors, and the prompt is the user's message."""
    expected = expected_figures()
    with server(tmp_path / "t") as (url, _):
        run_app(module, instrumentation, f"{url}/v1/traces")
    report = analyze(tmp_path / "t")
    assert report["total_sessions"] == report["completed_sessions"] == expected["sessions"]
    succeeded = expected["sessions"] - expected["failed"]
    assert report["metrics"]["success_rate"] == succeeded / expected["sessions"]
    assert list(report["skill_breakdown"]) == [agent]
    tools = {
        row["tool"]: (row["calls"], round(row["failure_rate"] * row["completed"])) for row in report["tools"]
    }
    assert tools == expected["tools"]
    assert {row["model"]: row["requests"] for row in report["llm"]} == requests
    assert sum(requests.values()) == expected["requests"]
    tokens = [sum(row[kind] for row in report["llm"]) for kind in ("input_tokens", "output_tokens")]
    assert tokens == [expected["input_tokens"], expected["output_tokens"]]
    assert sum(row["count"] for row in report["errors"]) == expected["failed"]
    sessions, problems = load_sessions([tmp_path / "t"])
    assert not problems
    failing = {*app.FAILING_TOOL_RUNS, app.FAILING_MODEL_RUN}
    assert {s.prompt: s.success for s in sessions} == {
        f"Question number {run}": run not in failing for run in range(RUNS)
    }


class Recorder(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps every export it is sent."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        self.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def recorder() -> Iterator[tuple[str, list[bytes]]]:
    Recorder.bodies = []
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{endpoint.server_address[1]}/v1/traces", Recorder.bodies
    finally:
        endpoint.shutdown()


def exports(bodies: list[bytes], pieces: list[tuple[int, int, int, int]]) -> bytes:
    """One export request holding the given spans (request, resource, scope, span indexes)."""
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies]
    out = ExportTraceServiceRequest()
    for r, rs, ss, sp in pieces:
        resource_spans = requests[r].resource_spans[rs]
        target = out.resource_spans.add()
        target.resource.CopyFrom(resource_spans.resource)
        scope = target.scope_spans.add()
        scope.scope.CopyFrom(resource_spans.scope_spans[ss].scope)
        scope.spans.add().CopyFrom(resource_spans.scope_spans[ss].spans[sp])
    return out.SerializeToString()


def test_spans_sent_twice_shuffled_and_split_across_workers_give_the_same_report(tmp_path: Path) -> None:
    """OTLP exporters retry, batch as they like, and replicas see parts of a trace: none of it changes
    a figure. The same spans, once in one request and then twice, shuffled, three spans a request
    to a server with two workers."""
    with recorder() as (endpoint, bodies):
        run_app(app, "otel", endpoint)
    pieces = [
        (r, rs, ss, sp)
        for r, body in enumerate(bodies)
        for rs, resource_spans in enumerate(ExportTraceServiceRequest.FromString(body).resource_spans)
        for ss, scope_spans in enumerate(resource_spans.scope_spans)
        for sp in range(len(scope_spans.spans))
    ]
    assert len(pieces) > 100
    protobuf = {"content-type": "application/x-protobuf"}
    with server(tmp_path / "clean") as (url, _):
        assert (
            httpx.post(f"{url}/v1/traces", content=exports(bodies, pieces), headers=protobuf).status_code
            == 200
        )
    messy = pieces * 2
    random.Random(7).shuffle(messy)
    with server(tmp_path / "messy", "--workers", "2") as (url, _):
        for start in range(0, len(messy), 3):  # a connection each: the requests spread over the workers
            answer = httpx.post(f"{url}/v1/traces", content=exports(bodies, messy[start : start + 3]),
                                headers=protobuf)  # fmt: skip
            assert answer.status_code == 200
    clean, twice = analyze(tmp_path / "clean"), analyze(tmp_path / "messy")
    for report in (clean, twice):
        report.pop("input"), report.pop("storage")
    assert clean["total_sessions"] == RUNS and clean["llm"][0]["requests"] == expected_figures()["requests"]
    assert twice == clean


def test_content_events_at_v1_logs_give_the_prompts_the_spans_leave_out(tmp_path: Path) -> None:
    """With content captured as events only, the prompts reach waza as OTLP log records of the
    trace: each joins its session by the trace id, and a retried export adds nothing."""
    events_only = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENT_ONLY"}
    command = [sys.executable, str(openai_client_app.__file__), "otel", "", str(RUNS)]
    with server(tmp_path / "t") as (url, _):
        command[3] = f"{url}/v1/traces"
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env=os.environ | CONTENT | events_only)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        stored = [
            line for path in (tmp_path / "t").rglob("*.jsonl") for line in path.read_text().splitlines()
        ]
        contents = [json.loads(line) for line in stored if "inference.operation.details" in line]
        assert len(contents) == expected_figures()["requests"]  # one content event per model request
        again = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(time.time_ns()),  # after the run: the session's prompt stays its own
            "traceId": contents[0]["session_id"], "eventName": "gen_ai.user.message",
            "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "hello"}}]}},
        }]}]}]}  # fmt: skip
        for _ in range(2):  # the same record twice, as an exporter's retry sends it
            assert httpx.post(f"{url}/v1/logs", json=again).status_code == 200
        refused = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "1", "body": {}}]}]}]}
        answer = httpx.post(f"{url}/v1/logs", json=refused).json()
        assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
    sessions, problems = load_sessions([tmp_path / "t"])
    assert not problems
    failing = {*app.FAILING_TOOL_RUNS, app.FAILING_MODEL_RUN}
    assert {s.prompt: s.success for s in sessions} == {
        f"Question number {run}": run not in failing for run in range(RUNS)
    }
    retried = [e for s in sessions for e in s.events if e.event_type == "gen_ai.user.message"]
    assert len(retried) == 1 and json.loads(retried[0].data["body"]) == {"content": "hello"}
