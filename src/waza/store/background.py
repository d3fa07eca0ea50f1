"""Closed segments compressed and compacted in the background: ``waza compact`` in a process of its own.

A writer that closes a segment hands it over here and returns: a thread of the
writer's compresses it (so that the writer's next commit never waits for it),
then asks for a compaction of the store. The run happens in a child process,
so that DuckDB's memory and CPU stay out of the process that records
telemetry, and a crash there costs the writer nothing (compaction commits by
manifest: a killed run leaves every record counted once). One run goes at a
time per writer; asks made meanwhile are served by one more run after it.
Several writers on one store take turns through the store's compaction lock.
A segment not yet compressed is read as it is; at shutdown the writer
compresses what is still waiting itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("waza.telemetry")

# Set to "off" where closed segments are left to a `waza compact` run elsewhere (a
# `--watch` beside the writers, cron), for every writer that does not say otherwise.
SWITCH = "WAZA_COMPACTION"


def background_compaction_wanted() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() not in ("off", "0", "false", "no")


# What the child may see of the writer's environment: enough to run Python and find
# waza, never the host's secrets.
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class BackgroundCompaction:
    """Compresses closed segments and compacts one store in a child process whenever asked (``request``)."""

    def __init__(self, directory: Path, compress: Callable[[Path], None]):
        self.directory = directory
        self._compress = compress  # a closed segment's .jsonl into .jsonl.gz; OSError when it cannot
        self._owner: int | None = None  # the process whose thread serves the asks
        self._changed = threading.Condition()
        self._asked = self._served = 0
        self._closed: deque[Path] = deque()  # closed segments waiting to be compressed
        self._failed: list[Path] = []  # closed segments that could not be (a full disk): asked again later
        self._compressing = 0

    def request(self, closed: Path | None = None) -> None:
        """Ask for ``closed`` to be compressed and the store compacted soon; returns at once."""
        if self._owner != os.getpid():  # the first ask, or the first in a forked child
            self._changed = threading.Condition()
            self._asked = self._served = 0
            self._closed, self._failed, self._compressing = deque(), [], 0  # the parent's are the parent's
            try:
                threading.Thread(target=self._serve, name="waza-compaction", daemon=True).start()
            except RuntimeError as error:  # no thread to be had: compressed here; the next close asks again
                log.warning("cannot start compaction of %s: %s", self.directory, error)
                if closed is not None:
                    self._compress_logged(closed)
                return
            self._owner = os.getpid()
        with self._changed:
            self._retry_failed()
            if closed is not None:
                self._closed.append(closed)
            self._asked += 1
            self._changed.notify_all()

    def compress_waiting(self) -> None:
        """Compress every closed segment still waiting, in this thread, and wait for any being compressed
        (a writer's shutdown: nothing it closed stays uncompressed)."""
        if self._owner != os.getpid():  # nothing asked in this process: what waits is a parent's
            return
        with self._changed:
            self._retry_failed()
        while True:
            with self._changed:
                while not self._closed and self._compressing:
                    self._changed.wait()
                if not self._closed:
                    return
                segment = self._closed.popleft()
                self._compressing += 1
            try:
                self._compress_logged(segment)
            finally:
                with self._changed:
                    self._compressing -= 1
                    self._changed.notify_all()

    def _compress_logged(self, segment: Path) -> None:
        try:
            self._compress(segment)
        except OSError as error:  # the plain segment is read as it is meanwhile
            log.warning("telemetry segment %s not compressed, tried again later: %s", segment.name, error)
            with self._changed:
                self._failed.append(segment)

    def _retry_failed(self) -> None:
        """Put the segments that failed back in line (once per ask, so a disk that stays full costs
        one try each time). Left plain, a closed segment would never be compacted."""
        self._closed.extend(segment for segment in self._failed if segment.exists())
        self._failed.clear()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every compaction asked for so far has run; False when ``timeout`` came first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._served >= self._asked, timeout)

    def _serve(self) -> None:
        changed = self._changed
        while True:
            with changed:
                changed.wait_for(lambda: self._asked > self._served)
                asked = self._asked
            self.compress_waiting()
            self._run()
            with changed:
                self._served = asked
                changed.notify_all()

    def _run(self) -> None:
        command = [sys.executable, "-m", "waza", "compact", str(self.directory), "--background"]
        try:
            finished = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=_environment(),
                start_new_session=True,  # a Ctrl-C meant for the host does not cut a run short
                check=False,
            )
        except OSError as error:
            log.warning("cannot start compaction of %s: %s", self.directory, error)
            return
        if finished.returncode:
            reason = finished.stderr.decode(errors="replace").strip().splitlines()
            log.warning("compaction of %s failed: %s", self.directory, reason[-1] if reason else "no message")


def _environment() -> dict[str, str]:
    passed = {name: os.environ[name] for name in _PASSED if name in os.environ}
    # The child imports the same waza as this process, wherever it was found.
    passed["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    return passed
