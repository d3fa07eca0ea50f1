"""An agent loop on the plain ``openai`` client, traced and exported over OTLP/HTTP.

``python openai_client_app.py INSTRUMENTATION ENDPOINT RUNS``: RUNS runs of a
weather agent against a scripted OpenAI server on 127.0.0.1 (started here, no
network). Each run asks the model, calls the tool it names, and asks again.
Run 0 and run 2 call a tool that raises; in run 1 the server answers HTTP 500.
Every answered request uses 100 prompt and 20 completion tokens.

INSTRUMENTATION is ``otel`` (``opentelemetry-instrumentation-openai-v2`` for the
model calls, ``opentelemetry-util-genai`` for the agent and tool spans) or
``openinference`` (``openinference-instrumentation-openai``, with OpenInference's
own tracer for the agent and tool spans).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

AGENT = "weather-agent"
MODEL = "scripted-model"
FAILING_TOOL_RUNS = (0, 2)
FAILING_MODEL_RUN = 1
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "add")
]


def get_weather(city: str) -> str:
    if city == "Atlantis":
        raise RuntimeError("no such city")
    return f"sunny in {city}"


def add(a: int, b: int) -> int:
    return a + b


class ScriptedOpenAI(BaseHTTPRequestHandler):
    """Chat completions as the OpenAI API answers them: a tool call first, then text."""

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        messages = request["messages"]
        run = int(messages[0]["content"].rsplit(" ", 1)[1])
        if run == FAILING_MODEL_RUN:
            return self._answer(
                500, {"error": {"message": "the model is overloaded", "type": "server_error"}}
            )
        if messages[-1]["role"] == "tool":
            message: dict[str, Any] = {"role": "assistant", "content": "done"}
            finish = "stop"
        else:
            name, arguments = (
                ("get_weather", {"city": "Atlantis" if run in FAILING_TOOL_RUNS else "Paris"})
                if (run % 2 == 0)
                else ("add", {"a": 2, "b": run})
            )
            call = {"id": f"call-{run}", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip
            message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        choice = {"index": 0, "message": message, "finish_reason": finish}
        self._answer(200, {"id": f"chatcmpl-{run}", "object": "chat.completion", "created": 0, "model": MODEL,
                           "choices": [choice], "usage": usage})  # fmt: skip

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def run_agent(
    client: openai.OpenAI, run: int, agent_span: Callable[[], Any], tool_span: Callable[..., Any]
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"Question number {run}"}]
    with agent_span():
        answer = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        message = answer.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls or []:
            arguments = json.loads(call.function.arguments)
            with tool_span(call.function.name, call.id, call.function.arguments):
                result = {"get_weather": get_weather, "add": add}[call.function.name](**arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": str(result)})
        client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)


def otel_spans(provider: TracerProvider, logs: Any) -> tuple[Callable[[], Any], Callable[..., Any]]:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.util.genai.handler import TelemetryHandler

    OpenAIInstrumentor().instrument(tracer_provider=provider, logger_provider=logs)
    handler = TelemetryHandler(tracer_provider=provider, logger_provider=logs)

    def agent() -> Any:
        return handler.invoke_local_agent(agent_name=AGENT, request_model=MODEL)

    @contextmanager
    def tool(name: str, call_id: str, arguments: str) -> Iterator[None]:
        with handler.tool(name, tool_type="function") as invocation:
            invocation.tool_call_id = call_id
            invocation.arguments = arguments
            yield

    return agent, tool


def openinference_spans(provider: TracerProvider, logs: Any) -> tuple[Callable[[], Any], Callable[..., Any]]:
    from openinference.instrumentation import OITracer, TraceConfig
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = OITracer(provider.get_tracer(__name__), config=TraceConfig())

    @contextmanager
    def agent() -> Iterator[None]:
        with tracer.start_as_current_span(AGENT, openinference_span_kind="agent") as span:
            span.set_attribute("agent.name", AGENT)
            yield

    @contextmanager
    def tool(name: str, call_id: str, arguments: str) -> Iterator[None]:
        with tracer.start_as_current_span(name, openinference_span_kind="tool") as span:
            span.set_tool(name=name, parameters={"type": "object"})
            span.set_input(arguments, mime_type="application/json")
            yield

    return agent, tool


def main() -> None:
    instrumentation, endpoint, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    # GenAI content events, where the instrumentation emits them, go to the logs endpoint beside.
    logs = LoggerProvider()
    logs.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint.replace("/v1/traces", "/v1/logs")))
    )
    agent_span, tool_span = (otel_spans if instrumentation == "otel" else openinference_spans)(provider, logs)
    scripted = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedOpenAI)
    threading.Thread(target=scripted.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{scripted.server_address[1]}/v1"
    client = openai.OpenAI(base_url=base_url, api_key="not-a-key", max_retries=0)
    for run in range(runs):
        try:
            run_agent(client, run, agent_span, tool_span)
        except Exception as error:  # the failing runs, on purpose
            print(f"run {run} failed: {type(error).__name__}", file=sys.stderr)
    provider.shutdown()
    logs.shutdown()
    scripted.shutdown()


if __name__ == "__main__":
    main()
