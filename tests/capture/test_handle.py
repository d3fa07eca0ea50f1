"""The session handle, tools, LLM calls, the skill decorator, and the current session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import read_log
from waza.telemetry import RuntimeCollector, current_session


def test_session_block_records_tools_and_llm_calls() -> None:
    """A with-block session records skill, tool calls with duration, and LLM calls."""
    collector = RuntimeCollector()
    with collector.session("deploy", {"env": "prod"}, skill_name="azure-deploy") as s:
        with s.tool("az", args=["webapp", "create"]) as result:
            result["exit_code"] = 0
        s.llm("gpt-4.1", tokens={"input": 10, "output": 5}, latency_ms=120)
        s.output = "done"
    (session,) = collector.sessions
    kinds = [e.event_type for e in session.events]
    assert kinds == ["skill.invoked", "tool.called", "tool.completed", "llm.request", "llm.response"]
    completed = session.events[2].data
    assert completed["success"] is True and completed["exit_code"] == 0 and completed["duration_ms"] >= 0
    assert (session.skill_name, session.output, session.success) == ("azure-deploy", "done", True)
    assert session.tool_calls == [{"tool": "az", "args": ["webapp", "create"]}]


def test_exception_marks_session_and_tool_failed() -> None:
    """An exception inside a tool fails the tool and the session, and still propagates."""
    collector = RuntimeCollector()
    with pytest.raises(RuntimeError, match="quota"):
        with collector.session("deploy") as s:
            with s.tool("az"):
                raise RuntimeError("quota exceeded")
    (session,) = collector.sessions
    assert session.events[-1].data["success"] is False
    assert session.events[-1].data["error"] == "RuntimeError: quota exceeded"
    assert (session.success, session.error) == (False, "RuntimeError: quota exceeded")


def test_skill_decorator_sync_and_async() -> None:
    """Decorated entry points record one session per call, output from the return value."""
    collector = RuntimeCollector()

    @collector.skill("echo")
    def echo(prompt: str) -> str:
        current_session().event("thinking")
        return prompt.upper()

    @collector.skill("echo-async")
    async def echo_async(prompt: str) -> str:
        await asyncio.sleep(0)
        current_session().event("thinking")
        return prompt[::-1]

    assert echo("hi") == "HI"
    assert asyncio.run(echo_async("abc")) == "cba"
    first, second = collector.sessions
    assert (first.skill_name, first.output, [e.event_type for e in first.events]) == (
        "echo",
        "HI",
        ["skill.invoked", "thinking"],
    )
    assert (second.skill_name, second.output) == ("echo-async", "cba")


def test_current_session_follows_asyncio_tasks() -> None:
    """Concurrent tasks each record into their own session through the context."""
    collector = RuntimeCollector()

    async def helper(n: int) -> None:
        await asyncio.sleep(0.001 * (3 - n))
        current_session().event("step", {"n": n})

    async def one(n: int) -> None:
        async with collector.session(f"task {n}"):
            await asyncio.gather(helper(n), helper(n))

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(3)))

    asyncio.run(main())
    assert current_session() is None
    for session in collector.sessions:
        n = int(session.prompt.split()[1])
        assert [e.data["n"] for e in session.events] == [n, n]


def test_handle_writes_to_a_folder(tmp_path: Path) -> None:
    """The handle streams through the folder sink like the plain calls."""
    with RuntimeCollector(tmp_path) as collector, collector.session("p", skill_name="s") as s:
        s.event("custom", {"k": 1})
    assert [e["event_type"] for e in read_log(tmp_path)] == [
        "session.started",
        "skill.invoked",
        "custom",
        "session.ended",
    ]
