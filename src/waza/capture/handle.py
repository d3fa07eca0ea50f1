"""The session handle: ``with collector.session(...) as s:`` and helpers that record into it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from waza.schema import LLM_REQUEST, LLM_RESPONSE, TOOL_CALLED, TOOL_COMPLETED

if TYPE_CHECKING:
    from waza.capture.collector import RuntimeCollector

_current: ContextVar[SessionHandle | None] = ContextVar("waza_current_session", default=None)


def current_session() -> SessionHandle | None:
    """The session open in this thread or asyncio task, if any."""
    return _current.get()


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class SessionHandle:
    """One open session. As a context manager it ends the session on exit: with
    success, or with the exception as the error (the exception still propagates).
    Set ``output`` before leaving the block to record the skill's answer.
    """

    def __init__(self, collector: RuntimeCollector, session_id: str):
        self.collector = collector
        self.id = session_id
        self.output = ""
        self._token: Token[SessionHandle | None] | None = None
        self._ended = False

    def event(
        self, event_type: str, data: dict[str, Any] | None = None, *, skill_name: str | None = None
    ) -> None:
        self.collector.record_event(self.id, event_type, data, skill_name=skill_name)

    @contextmanager
    def tool(self, name: str, args: Any = None, **data: Any) -> Iterator[dict[str, Any]]:
        """Record ``tool.called`` now and ``tool.completed`` (duration, success, error) on exit.

        The yielded dict is added to ``tool.completed``: put the tool's result details there.
        """
        self.event(
            TOOL_CALLED,
            {"tool": name, "args": args, **data} if args is not None else {"tool": name, **data},
        )
        details: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            yield details
        except BaseException as exc:
            took = round((time.perf_counter() - started) * 1000, 3)
            failure = {"tool": name, "success": False, "duration_ms": took, "error": describe(exc)}
            self.event(TOOL_COMPLETED, {**details, **failure})
            raise
        took = round((time.perf_counter() - started) * 1000, 3)
        self.event(TOOL_COMPLETED, {**details, "tool": name, "success": True, "duration_ms": took})

    def llm(
        self,
        model: str,
        tokens: dict[str, int] | int | None = None,
        latency_ms: float | None = None,
        **data: Any,
    ) -> None:
        """Record one LLM call: ``llm.request`` (model, tokens) and ``llm.response`` (latency)."""
        self.event(LLM_REQUEST, {"model": model, "tokens": tokens, **data})
        self.event(LLM_RESPONSE, {"model": model, "latency_ms": latency_ms})

    def end(self, output: str | None = None, success: bool = True, error: str | None = None) -> None:
        """End the session now (the ``with`` block does this for you)."""
        if not self._ended:
            self._ended = True
            self.collector.end_session(self.id, self.output if output is None else output, success, error)

    def __enter__(self) -> SessionHandle:
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if exc is None:
            self.end()
        else:
            self.end(success=False, error=describe(exc))

    async def __aenter__(self) -> SessionHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        self.__exit__(exc_type, exc, traceback)
