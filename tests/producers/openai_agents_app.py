"""An application on the OpenAI Agents SDK, traced by a bridge and exported over OTLP/HTTP.

``python openai_agents_app.py BRIDGE ENDPOINT RUNS``: RUNS runs of one agent with
two function tools and a model of its own (no network). Run 0 and run 2 call a
tool that raises, run 1 meets a model error (as an HTTP 500 would raise); every
other run calls one tool and answers. Each successful model call uses 100 input
and 20 output tokens. BRIDGE is ``openinference`` or ``otel``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from agents import Agent, Runner, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.tracing import generation_span
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

FAILING_TOOL_RUNS = (0, 2)
FAILING_MODEL_RUN = 1


@function_tool(failure_error_function=None)  # a raising tool ends the run, as in strict setups
def get_weather(city: str) -> str:
    """The weather in a city."""
    if city == "Atlantis":
        raise RuntimeError("no such city")
    return f"sunny in {city}"


@function_tool(failure_error_function=None)
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class ScriptedModel(Model):
    """Asks for one tool, then answers; traces each request as the SDK's own models do."""

    def __init__(self, run: int):
        self.run, self.calls = run, 0

    async def get_response(
        self, system_instructions, input, model_settings, tools, output_schema, handoffs, tracing, **kwargs
    ):
        messages = list(input) if isinstance(input, list) else [{"role": "user", "content": input}]
        with generation_span(model="scripted-model", input=messages) as span:
            try:
                response = self._respond()
            except RuntimeError as error:
                span.set_error({"message": "Error getting response", "data": {"error": str(error)}})
                raise
            usage = {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
            }
            span.span_data.usage = usage
            return response

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError

    def _respond(self) -> ModelResponse:
        self.calls += 1
        usage = Usage(requests=1, input_tokens=100, output_tokens=20, total_tokens=120)
        if self.run == FAILING_MODEL_RUN:
            raise RuntimeError("the model answered HTTP 500")
        if self.calls == 1:
            if self.run % 2 == 0:
                name, arguments = (
                    "get_weather",
                    {"city": "Atlantis" if self.run in FAILING_TOOL_RUNS else "Paris"},
                )
            else:
                name, arguments = "add", {"a": 2, "b": self.run}
            call = ResponseFunctionToolCall(
                arguments=json.dumps(arguments),
                call_id=f"call-{self.run}",
                name=name,
                type="function_call",
                id=f"fc-{self.run}",
            )
            return ModelResponse(output=[call], usage=usage, response_id=None)
        text = ResponseOutputText(text="done", type="output_text", annotations=[])
        message = ResponseOutputMessage(
            id=f"m-{self.run}", content=[text], role="assistant", status="completed", type="message"
        )
        return ModelResponse(output=[message], usage=usage, response_id=None)


async def main(runs: int) -> None:
    for run in range(runs):
        agent = Agent(
            name="Assistant", instructions="Help.", tools=[get_weather, add], model=ScriptedModel(run)
        )
        try:
            await Runner.run(agent, f"Question number {run}")
        except Exception as error:  # the failing runs, on purpose
            print(f"run {run} failed: {type(error).__name__}", file=sys.stderr)


if __name__ == "__main__":
    bridge, endpoint, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if bridge == "openinference":
        from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    else:
        from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    asyncio.run(main(count))
    provider.shutdown()  # exports what the batch processor holds
