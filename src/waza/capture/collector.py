"""RuntimeCollector: records sessions and events inside the host skill's process."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import os
import random
import secrets
import sys
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from waza.capture.drops import DropCounter
from waza.capture.handle import SessionHandle
from waza.capture.limits import Limits
from waza.capture.redact import Redactor
from waza.capture.sampling import SessionSampler
from waza.capture.writer import BackgroundWriter, Sink
from waza.errors import TelemetryError, UnknownSessionError
from waza.model import (
    SessionTelemetry,
    TelemetryEvent,
    fold_session,
    session_events,
    utc_now,
)
from waza.schema import SESSION_ABANDONED, SESSION_ENDED, SESSION_STARTED, SKILL_INVOKED, TOOL_CALLED
from waza.store.export import write_export
from waza.store.folder_sink import FolderSink
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


@dataclass
class _Open:
    """What the collector holds for one open session."""

    session: SessionTelemetry
    kept: bool  # sampled in: events go out as they happen
    buffered: bool  # sampled out but held until its end, in case it fails
    events_dropped: int = 0
    values_truncated: int = 0

    def cuts(self) -> dict[str, int]:
        cut = {"events_dropped": self.events_dropped, "values_truncated": self.values_truncated}
        return {key: value for key, value in cut.items() if value}


class RuntimeCollector:
    """Collects sessions and events during live skill execution.

    Without ``directory`` finished sessions stay in memory for ``export_to_file``.
    With ``directory`` every event is streamed to the event log there by a
    background writer; call ``flush()`` to wait for it, ``close()`` (or leave the
    ``with`` block, or let the interpreter exit) to finish. A ``sink`` takes the
    events instead: a ``FolderSink`` with settings of its own (segment size and
    age, retention), or an ``HttpSink`` that ships them to a ``waza serve``.
    ``flush_interval`` and ``max_queue`` pace the collector's own writer.

    ``sample_rate`` keeps that share of sessions, decided from the session id;
    with ``keep_errors`` a session that fails is kept even when not sampled.
    ``redact`` (on by default) replaces personal data and secrets in everything
    that leaves the process; pass ``False`` or a configured ``Redactor``.
    ``capture_content=False`` keeps prompts, outputs and tool arguments out
    entirely (their lengths and hashes stay). ``limits`` bounds memory.
    Every method is safe to call from many threads at once and never raises
    into the host unless ``strict=True``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        strict: bool = False,
        sample_rate: float = 1.0,
        keep_errors: bool = True,
        redact: bool | Redactor = True,
        capture_content: bool = True,
        limits: Limits | None = None,
        flush_interval: float = 1.0,
        max_queue: int = 1_000_000,
        sink: Sink | None = None,
    ):
        if directory is not None and sink is not None:
            raise ValueError("give a directory or a sink, not both")
        self.strict = strict
        self.directory = directory
        self.sampler = SessionSampler(sample_rate, keep_errors)
        self.redactor: Redactor | None = Redactor() if redact is True else (redact or None)
        self.capture_content = capture_content
        self.limits = limits or Limits()
        self._drops = DropCounter()
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Open] = OrderedDict()  # least recently active first
        self._last_active: dict[str, float] = {}
        self._completed: list[SessionTelemetry] = []
        self._writer: BackgroundWriter | None = None
        self._new_ids()
        # Registered before the writer's own hook, so that the child's locks are new
        # before its writer thread starts.
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(reference))
        if directory is not None:
            sink = FolderSink(directory)
        if sink is not None:
            self._writer = BackgroundWriter(
                sink, self._drops, process=self._outgoing, flush_interval=flush_interval, max_queue=max_queue
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
        session_id = str(session_id) if session_id is not None else self._session_id()
        kept = self.sampler(session_id)
        buffered = not kept and self.sampler.keep_errors
        metadata = self.sampler.stamp(dict(metadata or {}))
        prompt_text, cut = self.limits.cut(str(prompt))
        session = SessionTelemetry(
            session_id=session_id,
            start_time=utc_now(),
            skill_name=skill_name,
            prompt=prompt_text,
            metadata=metadata,
        )
        state = _Open(session, kept, buffered, values_truncated=int(cut))
        with self._lock:
            if session_id in self._open:
                raise TelemetryError(f"session {session_id!r} is already open")
            self._make_room()
            self._open[session_id] = state
            self._last_active[session_id] = time.monotonic()
        if not (kept or buffered):
            self._drops.count("sampled_out")
        data = {"prompt": session.prompt, "metadata": session.metadata}
        started = TelemetryEvent(
            session.start_time, SESSION_STARTED, skill_name, data, session_id, self._event_id()
        )
        self._emit(state, started)
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
        with self._lock:
            state = self._state(session_id)
            if not (state.kept or state.buffered):
                return
            session = state.session
            if len(session.events) >= self.limits.max_events_per_session:
                state.events_dropped += 1
                return
            payload = data if isinstance(data, dict) else ({} if data is None else {"value": data})
            # A shallow copy: later changes to the caller's dict do not reach the record.
            payload, cuts = self.limits.cut_data(payload)
            state.values_truncated += cuts
            event = TelemetryEvent(
                utc_now(), str(event_type), skill_name, payload, session_id, self._event_id()
            )
            session.events.append(event)
            if skill_name and not session.skill_name:
                session.skill_name = skill_name
            if event.event_type == TOOL_CALLED:
                session.tool_calls.append(payload)
        self._emit(state, event)

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
            state = self._state(session_id)
            self._forget(session_id)
        session = state.session
        session.end_time = utc_now()
        session.output, cut_output = self.limits.cut("" if output is None else str(output))
        session.success = bool(success)
        session.error, cut_error = self.limits.cut(str(error)) if error is not None else (None, False)
        state.values_truncated += cut_output + cut_error
        data: dict[str, Any] = {"output": session.output, "success": session.success, "error": session.error}
        if state.cuts():
            data["limits"] = state.cuts()
        ended = TelemetryEvent(session.end_time, SESSION_ENDED, None, data, session_id, self._event_id())
        if state.buffered and (not session.success or session.error is not None):
            self._release(state, ended)
        elif state.buffered:
            self._drops.count("sampled_out")
        elif state.kept:
            self._emit(state, ended)
            if self._writer is None:
                with self._lock:
                    self._completed.append(session)
        return session

    def session(
        self,
        prompt: str,
        metadata: dict[str, Any] | None = None,
        *,
        skill_name: str | None = None,
        session_id: str | None = None,
    ) -> SessionHandle:
        """A session for a ``with`` block (or ``async with``); see ``SessionHandle``."""
        sid = self.start_session(prompt, metadata, session_id=session_id, skill_name=skill_name)
        handle = SessionHandle(self, sid)
        if skill_name:
            handle.event(SKILL_INVOKED, {"skill_name": skill_name}, skill_name=skill_name)
        return handle

    def skill(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate a skill's entry point ``fn(prompt, ...)``: each call is a session.

        The return value becomes the output; an exception marks the session failed
        and propagates. Sync and async functions are both supported.
        """

        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(function):

                @functools.wraps(function)
                async def run_async(prompt: str, *args: Any, **kwargs: Any) -> Any:
                    async with self.session(prompt, skill_name=name) as handle:
                        result = await function(prompt, *args, **kwargs)
                        handle.output = "" if result is None else str(result)
                        return result

                return run_async

            @functools.wraps(function)
            def run(prompt: str, *args: Any, **kwargs: Any) -> Any:
                with self.session(prompt, skill_name=name) as handle:
                    result = function(prompt, *args, **kwargs)
                    handle.output = "" if result is None else str(result)
                    return result

            return run

        return decorate

    # -- reading back ------------------------------------------------------

    def get_session(self, session_id: str) -> SessionTelemetry | None:
        """An open session, or a finished one kept in memory."""
        with self._lock:
            if session_id in self._open:
                return self._open[session_id].session
            return next((s for s in self._completed if s.session_id == session_id), None)

    @property
    def sessions(self) -> list[SessionTelemetry]:
        """Finished sessions kept in memory (none when streaming to a folder)."""
        with self._lock:
            return list(self._completed)

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def dropped(self) -> dict[str, int]:
        """What telemetry could not record or chose not to keep, counted by reason."""
        return self._drops.snapshot()

    def export_to_file(self, path: str | os.PathLike[str]) -> None:
        """Write finished sessions as one JSON export (folders made, file replaced atomically).

        The export is redacted like everything else that leaves the process. A
        collector streaming to a folder exports the sessions in that folder.
        """
        if self.directory is not None:
            self.flush()
            sessions = [s for s in read_sessions(self.directory) if s.completed]
        else:
            sessions = [self._outgoing_session(s) for s in self.sessions]
        write_export(sessions, path)

    @classmethod
    def load_from_file(cls, path: str | os.PathLike[str]) -> list[SessionTelemetry]:
        """Sessions from any file or folder waza reads; unreadable lines are skipped and logged."""
        return read_sessions(path)

    # -- lifecycle ---------------------------------------------------------

    def abandon_idle(self) -> int:
        """End sessions idle past ``limits.idle_timeout`` as abandoned; returns how many."""
        deadline = time.monotonic() - self.limits.idle_timeout
        abandoned = []
        with self._lock:
            for session_id in list(self._open):
                if self._last_active[session_id] > deadline:
                    break  # the rest were active more recently
                abandoned.append(self._forget(session_id))
        for state in abandoned:
            self._abandon(state, "idle_timeout")
        return len(abandoned)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is on disk; False if the timeout passed first."""
        return True if self._writer is None else self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Abandon sessions still open, flush, and stop the writer; later records are dropped.

        True once everything recorded is stored; False at the timeout, or when a disk that
        stayed full made the writer give lines up (counted in ``dropped``).
        """
        with self._lock:
            still_open = [self._forget(session_id) for session_id in list(self._open)]
        for state in still_open:
            self._abandon(state, "shutdown")
        return True if self._writer is None else self._writer.shutdown(timeout)

    def __enter__(self) -> RuntimeCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _new_ids(self) -> None:
        """Ids come from a generator seeded once per process from the OS (again in a forked child).

        Asking the OS for every id (``uuid4``) is a system call per session, and a thread
        that makes one that often keeps the writer thread from the interpreter:
        measured, it wrote 8,192 events in 2 s instead of 135,000.
        """
        self._ids = random.Random(secrets.token_bytes(16))
        self._id_prefix = f"{self._ids.getrandbits(64):016x}-"
        self._id_counter = itertools.count(1)

    def _session_id(self) -> str:
        return uuid.UUID(int=self._ids.getrandbits(128), version=4).hex

    def _event_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):x}"  # next() on a count is atomic

    def _after_fork(self) -> None:
        """In a forked child (Gunicorn --preload, Celery prefork, multiprocessing): start clean.

        Locks are new (another thread may have held one at the fork); sessions open
        or finished in the parent stay the parent's to end and write. A
        multiprocessing child leaves through os._exit, skipping atexit, so its
        collector is closed by the finalizers multiprocessing runs on the way out.
        """
        self._lock = threading.Lock()
        self._new_ids()  # a child's ids must not repeat its parent's
        self._drops.after_fork()
        self._open.clear()
        self._last_active.clear()
        self._completed = []
        multiprocessing_util = sys.modules.get("multiprocessing.util")
        if self._writer is not None and multiprocessing_util is not None:
            # Its child clears finalizers after this hook, then runs its after-fork hooks.
            multiprocessing_util.register_after_fork(self, _close_when_the_process_ends)

    def _state(self, session_id: str) -> _Open:
        """The open session (marked active now); call with the lock held."""
        state = self._open.get(session_id)
        if state is None:
            raise UnknownSessionError(f"no open session {session_id!r}")
        self._open.move_to_end(session_id)
        self._last_active[session_id] = time.monotonic()
        return state

    def _forget(self, session_id: str) -> _Open:
        del self._last_active[session_id]
        return self._open.pop(session_id)

    def _make_room(self) -> None:
        """Abandon idle sessions, then the least recently active past the cap; lock held.

        Abandoning only queues records for the writer, so it is safe under the lock.
        """
        deadline = time.monotonic() - self.limits.idle_timeout
        while self._open:
            session_id = next(iter(self._open))
            if self._last_active[session_id] < deadline:
                self._abandon(self._forget(session_id), "idle_timeout")
            elif len(self._open) >= self.limits.max_open_sessions:
                self._abandon(self._forget(session_id), "open_session_limit")
            else:
                break

    def _abandon(self, state: _Open, reason: str) -> None:
        """End an open session as incomplete: counted, marked, and written out."""
        self._drops.add(f"abandoned_{reason}", message=f"telemetry abandoned open sessions ({reason})")
        data: dict[str, Any] = {"reason": reason, **({"limits": state.cuts()} if state.cuts() else {})}
        event = TelemetryEvent(
            utc_now(), SESSION_ABANDONED, None, data, state.session.session_id, self._event_id()
        )
        if state.buffered:
            self._release(state, event)
        elif state.kept:
            self._emit(state, event)

    def _release(self, state: _Open, last: TelemetryEvent) -> None:
        """Write a buffered (sampled-out) session whole, now that it has to be kept."""
        state.kept, state.buffered = True, False
        session = state.session
        if last.event_type == SESSION_ENDED and self._writer is None:
            with self._lock:
                self._completed.append(session)
        if self._writer is not None:
            for event in session_events(dataclasses.replace(session, end_time=None)):
                self._writer.submit(event)
            self._writer.submit(last)

    def _emit(self, state: _Open, event: TelemetryEvent) -> None:
        if self._writer is not None and state.kept:
            self._writer.submit(event)

    def _outgoing(self, record: dict[str, Any]) -> dict[str, Any]:
        """What every record goes through on its way out: content policy, then redaction.

        Content (prompt, output, error and metadata) lives in ``data``; a session id
        or skill name that holds personal data becomes a stable pseudonym.
        """
        if not self.capture_content:
            record = _without_content(record)
        return record if self.redactor is None else self.redactor.record(record)

    def _outgoing_session(self, session: SessionTelemetry) -> SessionTelemetry:
        """The session as it may leave the process: rebuilt from its processed events."""
        events = [TelemetryEvent.from_dict(self._outgoing(e.to_dict())) for e in session_events(session)]
        return fold_session(events[0].session_id or session.session_id, events)


_CONTENT_FIELDS = {"prompt", "output", "args"}


def _without_content(record: dict[str, Any]) -> dict[str, Any]:
    """Replace prompts, outputs and tool arguments by their length and SHA-256."""
    data = record.get("data")
    if not isinstance(data, dict) or not _CONTENT_FIELDS & data.keys():
        return record
    data = dict(data)
    for name in _CONTENT_FIELDS & data.keys():
        value = data[name]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
        data[name] = "" if isinstance(value, str) else None
        data[f"{name}_chars"] = len(text)
        data[f"{name}_sha256"] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return {**record, "data": data}


def _reset_in_child(ref: weakref.ref[RuntimeCollector]) -> None:
    collector = ref()
    if collector is not None:
        collector._after_fork()


def _close_when_the_process_ends(collector: RuntimeCollector) -> None:
    """In a multiprocessing child: close the collector among the finalizers run as it exits."""
    from multiprocessing import util

    util.Finalize(collector, _close_at_exit, args=(weakref.ref(collector),), exitpriority=10)


def _close_at_exit(ref: weakref.ref[RuntimeCollector]) -> None:
    collector = ref()
    if collector is not None:
        collector.close(timeout=5.0)
