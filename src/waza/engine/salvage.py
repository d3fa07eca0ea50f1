"""Files an engine cannot read as they are: rewritten by the Python reader as a clean event log.

Serves the formats only Python reads (exports, session lists, OTLP files), salvages what can be
read of a damaged file, and names the line of every unreadable record.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from waza.model import session_events
from waza.store.codec import bounded_line
from waza.store.reader import event_lines, session_records, translated_events
from waza.store.sources import EVENT_FORMATS, TRANSLATED_FORMATS, Format, Problem, Source

SCRATCH_PREFIX = "waza-analysis-"
# Its name: the prefix, the pid, and the random part tempfile adds.
SCRATCH_NAME = re.compile(re.escape(SCRATCH_PREFIX) + r"(?P<pid>\d+)-[a-z0-9_]{8}")
# A scratch folder whose process is gone (an analysis killed) is removed once untouched this long:
# a process of another container that shares the temporary folder has a pid this one cannot see.
ABANDONED_SECONDS = 3600


class Salvage:
    """A scratch folder of rewritten files, and which file each came from."""

    def __init__(self) -> None:
        _remove_abandoned(Path(tempfile.gettempdir()))
        self._scratch = tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
        self._salvaged: dict[str, str] = {}  # scratch copy -> the damaged file it came from

    def cleanup(self) -> None:
        self._scratch.cleanup()

    def scratch_file(self, name: str) -> Path:
        return Path(self._scratch.name) / name

    def rewrite(self, source: Source, problems: list[Problem], error: Exception | None = None) -> Source:
        """Rewrite what Python can read of a file as a clean event log in scratch space.

        Serves files an engine cannot read itself, and salvages damaged ones
        (``error`` is why the engine failed on it).
        """
        found: list[Problem] = []
        if source.format in EVENT_FORMATS:
            events: Iterator = event_lines(source, found)
        elif source.format in TRANSLATED_FORMATS:
            events = translated_events(source, found)
        else:
            events = (e for s in session_records(source, found) for e in session_events(s))
        target = self.scratch_file(f"salvaged-{len(self._salvaged)}.jsonl")
        with open(target, "wb") as out:
            for event in events:
                out.write(bounded_line(event.to_dict())[0] + b"\n")
        if not found and error is not None:
            found.append(Problem(str(source.path), None, f"cannot read: {first_line(error)}"))
        problems.extend(found)
        self._salvaged[str(target)] = str(source.path)
        return Source(target, Format.EVENTS, False, target.stat().st_size)

    def name_bad_lines(self, sources: list[Source], counts: dict[str, int]) -> list[Problem]:
        """The line of every unreadable record, in the files the engine found some in."""
        problems: list[Problem] = []
        for source in sources:
            bad = counts.get(str(source.path))
            if not bad or str(source.path) in self._salvaged:
                continue
            if source.url:  # out of the Python reader's reach: counted, not located
                problems.append(Problem(source.url, None, f"{bad} unreadable records"))
                continue
            found: list[Problem] = []
            records = (
                event_lines(source, found)
                if source.format in EVENT_FORMATS
                else session_records(source, found)
            )
            for _ in records:
                pass
            problems.extend(found or [Problem(str(source.path), None, f"{bad} unreadable records")])
        return problems


def first_line(error: Exception) -> str:
    """The first line of an engine's error message: the part a person needs."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _remove_abandoned(folder: Path) -> None:
    """Scratch folders of analyses that were killed (their spill files can take gigabytes)."""
    for scratch in folder.glob(f"{SCRATCH_PREFIX}*"):
        if not (name := SCRATCH_NAME.fullmatch(scratch.name)):
            continue
        try:
            touched = max(path.stat().st_mtime for path in [scratch, *scratch.iterdir()])
            if time.time() - touched < ABANDONED_SECONDS:
                continue
            os.kill(int(name["pid"]), 0)
        except ProcessLookupError:
            shutil.rmtree(scratch, ignore_errors=True)
        except OSError:  # alive, gone meanwhile, or not ours to see
            continue
