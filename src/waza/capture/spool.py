"""A folder where ``HttpSink`` keeps the batches it could not deliver yet.

Each batch is one file, written whole by rename after an fsync, so a crash
leaves either the whole batch or nothing. A sender holds an advisory lock on
the file it is posting, so two processes sharing the folder (a restarted
service, forked workers) never post the same file at once; the lock dies with
its process. A file is deleted only after the server acknowledged it: a crash
in between sends it again, which the event ids make harmless.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: one process per spool folder
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".ndjson"
STALE_SECONDS = 600  # a staged file this old was left by a crash


@dataclass
class Claim:
    path: Path
    lines: list[bytes]

    def delivered(self) -> None:
        self.path.unlink(missing_ok=True)


class Spool:
    def __init__(self, folder: str | os.PathLike[str], max_bytes: int):
        if max_bytes <= 0:
            raise ValueError("spool_max_bytes must be positive")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_bytes = max_bytes
        self._names = itertools.count()
        for staged in self.folder.glob(".*.tmp"):
            try:
                if time.time() - staged.stat().st_mtime > STALE_SECONDS:
                    staged.unlink()
            except OSError:
                pass

    def put(self, batches: list[list[bytes]]) -> int:
        """Keep the batches, oldest first; the number of lines that did not fit or could not be written."""
        room = self.max_bytes - self._size()
        for index, lines in enumerate(batches):
            body = b"\n".join(lines) + b"\n"
            room -= len(body)
            if room < 0 or not self._write(body, len(lines)):
                return sum(len(rest) for rest in batches[index:])
        return 0

    @contextmanager
    def oldest(self) -> Iterator[Claim | None]:
        """The oldest batch no other sender holds, locked until the block ends."""
        for path in self._files():
            try:
                handle = open(path, "rb")
            except OSError:  # sent and deleted by another process meanwhile
                continue
            with handle:
                if fcntl is not None:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue
                if not path.exists():  # deleted between listing and locking
                    continue
                yield Claim(path, handle.read().splitlines())
                return
        yield None

    @property
    def lines(self) -> int:
        """Lines waiting in the folder (every process's), from the file names."""
        return sum(_line_count(path) for path in self._files())

    def _write(self, body: bytes, count: int) -> bool:
        # Time first, so that names sort oldest first across processes.
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._names)}-{count}{SUFFIX}"
        staged = self.folder / f".{name}.tmp"
        try:
            with open(staged, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(staged, self.folder / name)
            return True
        except OSError:  # a full disk: what did not fit is counted by the caller
            staged.unlink(missing_ok=True)
            return False

    def _files(self) -> list[Path]:
        try:
            return sorted(
                p for p in self.folder.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")
            )
        except OSError:
            return []

    def _size(self) -> int:
        total = 0
        for path in self._files():
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total


def _line_count(path: Path) -> int:
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0
