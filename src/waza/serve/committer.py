"""Group commit: the lines of many concurrent requests written and fsynced together.

A request hands its lines over and waits; one thread takes everything waiting,
appends it to the event log, fsyncs once, and then answers every request of
that group. So a 2xx answer means the lines are on disk, and the cost of an
fsync is shared by all the requests that arrived while the previous one ran.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from datetime import date
from pathlib import Path

from waza.store.folder_sink import FolderSink

Lines = list[tuple[date, bytes]]


class GroupCommitter:
    def __init__(self, directory: str | Path, *, max_group_lines: int = 100_000):
        self._sink = FolderSink(directory, sync_new_files=True)
        self._waiting: deque[tuple[Lines, Future[None]]] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._max_group_lines = max_group_lines
        self._thread = threading.Thread(target=self._run, name="waza-commit", daemon=True)
        self._thread.start()

    def submit(self, lines: Lines) -> Future[None]:
        """Queue lines; the future completes once they are on disk (or fails with the write's error)."""
        done: Future[None] = Future()
        with self._ready:
            if self._closing:
                done.set_exception(RuntimeError("the server is shutting down"))
                return done
            self._waiting.append((lines, done))
            self._ready.notify()
        return done

    def close(self) -> None:
        """Commit everything queued, then close the open segments."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()
        self._sink.shutdown()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closing:
                    self._ready.wait()
                if not self._waiting:
                    return
                group: list[tuple[Lines, Future[None]]] = []
                count = 0
                while self._waiting and (not group or count < self._max_group_lines):
                    lines, done = self._waiting.popleft()
                    group.append((lines, done))
                    count += len(lines)
            try:
                self._sink.append(line for lines, _ in group for line in lines)
                self._sink.flush(fsync=True)
            except OSError as error:
                self._answer_partly(group, error)
            else:
                for _, done in group:
                    done.set_result(None)

    def _answer_partly(self, group: list[tuple[Lines, Future[None]]], error: OSError) -> None:
        """After a failed write: the requests whose lines all reached the disk succeed, the others
        learn how many of theirs did (the sink stores a group's lines in order)."""
        stored = getattr(error, "stored", 0)
        try:
            self._sink.flush(fsync=True)
        except OSError:
            stored = 0  # nothing is known to be on disk
        self._sink.reset()  # the failed part was cut back; a retry starts clean
        offset = 0
        for lines, done in group:
            kept = max(0, min(len(lines), stored - offset))
            if kept == len(lines):
                done.set_result(None)
            else:
                done.set_exception(PartlyStored(error, kept, len(lines)))
            offset += len(lines)


class PartlyStored(OSError):
    """A request's lines of which only the first ``stored`` reached the disk before a write failed."""

    def __init__(self, error: OSError, stored: int, total: int):
        super().__init__(error.errno, error.strerror or str(error))
        self.stored = stored
        self.total = total
