"""A LangGraph ReAct agent, traced by ``openinference-instrumentation-langchain`` and exported over OTLP/HTTP.

``python langgraph_app.py openinference ENDPOINT RUNS``: RUNS runs of an agent
named ``weather-agent`` with two tools and a chat model of its own (no network).
Run 0 and run 2 call a tool that raises (tool errors are not handed back to the
model, so the run fails); run 1 meets a model error. Every answered model call
uses 100 input and 20 output tokens.
"""

from __future__ import annotations

import sys
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.prebuilt import ToolNode, create_react_agent
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

AGENT = "weather-agent"
FAILING_TOOL_RUNS = (0, 2)
FAILING_MODEL_RUN = 1


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    if city == "Atlantis":
        raise RuntimeError("no such city")
    return f"sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class ScriptedChatModel(BaseChatModel):
    """Asks for one tool, then answers."""

    run: int

    @property
    def _llm_type(self) -> str:
        return "scripted-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        if self.run == FAILING_MODEL_RUN:
            raise RuntimeError("the model answered HTTP 500")
        usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
        if isinstance(messages[-1], ToolMessage):
            message = AIMessage(content="done", usage_metadata=usage)
        else:
            if self.run % 2 == 0:
                city = "Atlantis" if self.run in FAILING_TOOL_RUNS else "Paris"
                name, arguments = "get_weather", {"city": city}
            else:
                name, arguments = "add", {"a": 2, "b": self.run}
            call = {"name": name, "args": arguments, "id": f"call-{self.run}", "type": "tool_call"}
            message = AIMessage(content="", tool_calls=[call], usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])


def main() -> None:
    _, endpoint, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    from openinference.instrumentation.langchain import LangChainInstrumentor

    LangChainInstrumentor().instrument(tracer_provider=provider)
    for run in range(runs):
        tools = ToolNode([get_weather, add], handle_tool_errors=False)
        agent = create_react_agent(ScriptedChatModel(run=run), tools, name=AGENT)
        try:
            agent.invoke({"messages": [("user", f"Question number {run}")]})
        except Exception as error:  # the failing runs, on purpose
            print(f"run {run} failed: {type(error).__name__}", file=sys.stderr)
    provider.shutdown()


if __name__ == "__main__":
    main()
