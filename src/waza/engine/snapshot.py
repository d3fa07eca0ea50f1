"""Hard links that keep the files of one analysis as they were listed.

An analysis reads its files more than once (the sessions, then their tools and
models; a task check reads sessions, then the events of those it picks), and
meanwhile a writer may have compressed a segment, a compaction running in the
background deleted it, or prune removed its day. A hard link taken at listing
time keeps the very bytes readable whatever happens to the name. A segment
that may still grow (uncompressed, in a day partition, written to within the
longest a segment stays open, and the last its writer began in that day) is
copied instead, up to the last whole line it had when listed, so that every
read sees the same events: a log written minutes ago is not copied whole,
only the last segment of each writer and day. Links live in a
hidden folder beside each file (the same file system, and skipped by every
reader of the store) and go when the analysis ends; a folder left by a
process that died is removed by the next. Where a link cannot be made (a
read-only store), the file is read in place.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from waza.store.compacted import BESIDE_PATHS, MANIFEST_SUFFIX, summed_rollups
from waza.store.folder_sink import DEFAULT_SEGMENT_SECONDS
from waza.store.sources import Format, Problem, Source

PREFIX = ".waza-snapshot-"
# A segment closes after DEFAULT_SEGMENT_SECONDS; one untouched for longer is taken as closed
# (a collector idle that long, with a longer setting, may append to it during a read, rarely).
OPEN_SECONDS = DEFAULT_SEGMENT_SECONDS + 5 * 60
# A writer's segment names: part-<host>-<pid>-<start>-<sequence> (store/layout.py).
SEGMENT_NAME = re.compile(r"part-(?P<writer>.+)-(?P<sequence>\d{5,})\.jsonl(?:\.gz)?")


class Snapshot:
    def __init__(self) -> None:
        self._token = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self._folders: set[Path] = set()
        self._originals: dict[str, str] = {}
        self._closed: set[Path] = set()

    def pin(self, sources: list[Source]) -> list[Source]:
        """The sources as links; a source that vanished since listing keeps its name, to be reported."""
        self._closed = _followed(source.path for source in sources if source.url is None)
        return [self._pin(source) for source in sources]

    def original(self, problem: Problem) -> Problem:
        """A problem named by the file the user knows, not by its link."""
        path = self._originals.get(problem.path)
        return dataclasses.replace(problem, path=path) if path else problem

    def release(self) -> None:
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)
        self._folders.clear()
        self._originals.clear()

    def _pin(self, source: Source) -> Source:
        if source.url is not None:
            return source
        folder = source.path.parent / self._token
        linked = folder / source.path.name
        try:
            if folder not in self._folders:
                _remove_abandoned(source.path.parent)
                folder.mkdir(mode=0o700)
                self._folders.add(folder)
            if source.path not in self._closed and _open_segment(source):
                _copy_whole_lines(source.path, linked, source.size)
            else:
                os.link(source.path, linked)
            if source.format is Format.PARQUET:
                for beside in BESIDE_PATHS:
                    if beside(source.path).exists():
                        os.link(beside(source.path), beside(linked))
                _link_sums(source.path.parent, folder)
        except OSError:
            return source
        self._originals[str(linked)] = str(source.path)
        return dataclasses.replace(source, path=linked)


def _link_sums(day: Path, folder: Path) -> None:
    """Link a day's sums of rollups, each with its manifest (first, so that a sum is whole when
    linked; one replaced meanwhile is left out, and its files' own rollups are read)."""
    for parquet, _ in summed_rollups(day):
        manifest = parquet.with_name(parquet.stem + MANIFEST_SUFFIX)
        try:
            for path in (manifest, parquet):
                if not (folder / path.name).exists():
                    os.link(path, folder / path.name)
        except OSError:
            (folder / manifest.name).unlink(missing_ok=True)


def _open_segment(source: Source) -> bool:
    """A segment a collector may still append to: uncompressed, in a day partition, written to lately."""
    path = source.path
    if source.format is not Format.EVENTS or source.compressed:
        return False
    if not (path.name.startswith("part-") and path.parent.name.startswith("date=")):
        return False
    try:
        return time.time() - path.stat().st_mtime < OPEN_SECONDS
    except OSError:
        return False


def _followed(paths: Iterable[Path]) -> set[Path]:
    """Segments that a later segment of the same writer in the same day follows: closed, since a
    writer begins a day's next segment only once it has closed the last."""
    by_writer: dict[tuple[Path, str], list[tuple[int, Path]]] = {}
    for path in paths:
        if name := SEGMENT_NAME.fullmatch(path.name):
            by_writer.setdefault((path.parent, name["writer"]), []).append((int(name["sequence"]), path))
    return {path for segments in by_writer.values() for _, path in sorted(segments)[:-1]}


def _copy_whole_lines(path: Path, target: Path, size: int) -> None:
    with open(path, "rb") as source, open(target, "wb") as out:
        head = source.read(size)
        out.write(head[: head.rfind(b"\n") + 1])


def _remove_abandoned(parent: Path) -> None:
    """Snapshot folders of processes that no longer run."""
    for folder in parent.glob(f"{PREFIX}*"):
        try:
            pid = int(folder.name.removeprefix(PREFIX).split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue
