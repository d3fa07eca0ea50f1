"""RuntimeCollector: records sessions and events inside the host skill's process."""

from __future__ import annotations

import atexit
import functools
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from waza.capture.drops import DropCounter
from waza.capture.writer import BackgroundWriter
from waza.errors import TelemetryError, UnknownSessionError
from waza.model import (
    SESSION_ENDED,
    SESSION_STARTED,
    TOOL_CALLED,
    SessionTelemetry,
    TelemetryEvent,
    utc_now,
)
from waza.store.codec import encode_line
from waza.store.export import write_export
from waza.store.folder_sink import DEFAULT_SEGMENT_BYTES, FolderSink
from waza.store.reader import read_sessions

T = TypeVar("T")


def _never_raise(default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Telemetry must not break the host: count and log failures unless the collector is strict."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def guarded(self: RuntimeCollector, *args: Any, **kwargs: Any) -> T:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if self.strict:
                    raise
                reason = "unknown_session" if isinstance(exc, UnknownSessionError) else "error"
                self._drops.add(reason, message=f"telemetry call {method.__name__} failed: {exc}")
                return default

        return guarded

    return decorate


class RuntimeCollector:
    """Collects sessions and events during live skill execution.

    Without ``directory`` finished sessions stay in memory for ``export_to_file``.
    With ``directory`` every event is streamed to the event log there by a
    background writer; call ``flush()`` to wait for it, ``close()`` (or leave the
    ``with`` block, or let the interpreter exit) to finish.
    Every method is safe to call from many threads at once.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        strict: bool = False,
        flush_interval: float = 1.0,
        max_queue: int = 1_000_000,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ):
        self.strict = strict
        self.directory = directory
        self._drops = DropCounter()
        self._lock = threading.Lock()
        self._open: dict[str, SessionTelemetry] = {}
        self._completed: list[SessionTelemetry] = []
        self._writer: BackgroundWriter | None = None
        if directory is not None:
            sink = FolderSink(directory, segment_bytes=segment_bytes)
            self._writer = BackgroundWriter(
                sink, self._drops, flush_interval=flush_interval, max_queue=max_queue
            )
            atexit.register(_close_at_exit, weakref.ref(self))

    # -- recording ---------------------------------------------------------

    @_never_raise(default="")
    def start_session(
        self,
        prompt: str,
        metadata: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        skill_name: str | None = None,
    ) -> str:
        """Open a session and return its id (a new UUID unless one is given)."""
        session_id = str(session_id) if session_id is not None else uuid.uuid4().hex
        session = SessionTelemetry(
            session_id=session_id,
            start_time=utc_now(),
            skill_name=skill_name,
            prompt=str(prompt),
            metadata=dict(metadata or {}),
        )
        with self._lock:
            if session_id in self._open:
                raise TelemetryError(f"session {session_id!r} is already open")
            self._open[session_id] = session
        data = {"prompt": session.prompt, "metadata": session.metadata}
        self._emit(TelemetryEvent(session.start_time, SESSION_STARTED, skill_name, data, session_id))
        return session_id

    @_never_raise(default=None)
    def record_event(
        self,
        session_id: str,
        event_type: str,
        data: dict[str, Any] | None = None,
        *,
        skill_name: str | None = None,
    ) -> None:
        """Record one event in an open session."""
        payload = data if isinstance(data, dict) else ({} if data is None else {"value": data})
        event = TelemetryEvent(utc_now(), str(event_type), skill_name, payload, session_id)
        with self._lock:
            session = self._session(session_id)
            session.events.append(event)
            if skill_name and not session.skill_name:
                session.skill_name = skill_name
            if event.event_type == TOOL_CALLED:
                session.tool_calls.append(payload)
        self._emit(event)

    @_never_raise(default=None)
    def end_session(
        self,
        session_id: str,
        output: str = "",
        success: bool = True,
        error: str | None = None,
    ) -> SessionTelemetry | None:
        """Close a session and return it, finished."""
        with self._lock:
            session = self._session(session_id)
            del self._open[session_id]
            session.end_time = utc_now()
            session.output = "" if output is None else str(output)
            session.success = bool(success)
            session.error = None if error is None else str(error)
            if self._writer is None:
                self._completed.append(session)
        data = {"output": session.output, "success": session.success, "error": session.error}
        self._emit(TelemetryEvent(session.end_time, SESSION_ENDED, None, data, session_id))
        return session

    # -- reading back ------------------------------------------------------

    def get_session(self, session_id: str) -> SessionTelemetry | None:
        """An open session, or a finished one kept in memory."""
        with self._lock:
            if session_id in self._open:
                return self._open[session_id]
            return next((s for s in self._completed if s.session_id == session_id), None)

    @property
    def sessions(self) -> list[SessionTelemetry]:
        """Finished sessions kept in memory (none when streaming to a folder)."""
        with self._lock:
            return list(self._completed)

    @property
    def dropped(self) -> dict[str, int]:
        """What telemetry could not record, counted by reason."""
        return self._drops.snapshot()

    def export_to_file(self, path: str | os.PathLike[str]) -> None:
        """Write finished sessions as one JSON export (folders made, file replaced atomically).

        A collector streaming to a folder exports the sessions in that folder.
        """
        if self._writer is not None:
            self.flush()
            sessions = [s for s in read_sessions(self.directory) if s.completed]
        else:
            sessions = self.sessions
        write_export(sessions, path)

    @classmethod
    def load_from_file(cls, path: str | os.PathLike[str]) -> list[SessionTelemetry]:
        """Sessions from any file or folder waza reads; unreadable lines are skipped and logged."""
        return read_sessions(path)

    # -- lifecycle ---------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is on disk; False if the timeout passed first."""
        return True if self._writer is None else self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and stop the writer; later records are counted as dropped."""
        return True if self._writer is None else self._writer.shutdown(timeout)

    def __enter__(self) -> RuntimeCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _session(self, session_id: str) -> SessionTelemetry:
        session = self._open.get(session_id)
        if session is None:
            raise UnknownSessionError(f"no open session {session_id!r}")
        return session

    def _emit(self, event: TelemetryEvent) -> None:
        if self._writer is None:
            return
        line = encode_line(event.to_dict(), self._count_unserialisable)
        self._writer.submit(event.timestamp.date(), line)

    def _count_unserialisable(self) -> None:
        message = "telemetry stored a value JSON cannot hold as its repr()"
        self._drops.add("unserialisable_value", message=message)


def _close_at_exit(ref: weakref.ref[RuntimeCollector]) -> None:
    collector = ref()
    if collector is not None:
        collector.close(timeout=5.0)
