"""The compacted part of a telemetry folder, as files: where compaction writes, and what it has committed.

Compaction itself (``engine/compaction.py``) writes these files. ``each_once``
is the one rule by which every listing of a store (a local folder, or an
object-store prefix) picks the files to read so that each record is read
exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

COMPACTED = "compacted"
MANIFEST_SUFFIX = ".manifest.json"
# Held by whoever compacts or prunes a store: two compactions choosing segments at once could
# each commit a segment the other holds. Hidden, so readers never list it.
LOCK = ".compaction.lock"


@contextlib.contextmanager
def exclusive(root: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the store's compaction lock while the block runs; yields False (holding nothing) when
    ``wait`` is off and another process holds it. The lock goes with the process, however it ends."""
    descriptor = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # closing releases the lock


def compacted_segments(root: Path) -> set[Path]:
    """Every segment a committed manifest of the store at ``root`` holds, with its uncompressed twin
    (a crash while compressing can leave ``x.jsonl`` beside a whole ``x.jsonl.gz``)."""
    folder = root / COMPACTED
    held: set[Path] = set()
    for manifest in folder.rglob(f"*{MANIFEST_SUFFIX}") if folder.is_dir() else ():
        try:
            segments = manifest_segments(manifest.read_text(encoding="utf-8"))
        except OSError:
            continue
        held.update(p for name in segments for p in (root / name, root / name.removesuffix(".gz")))
    return held


def parts_path(events: Path) -> Path:
    """Where compaction keeps the per-session partial folds of an events file."""
    return events.with_name("sessions-" + events.name.removeprefix("events-"))


def details_path(events: Path) -> Path:
    """Where compaction keeps the tool, LLM and error events of an events file, as the report reads them."""
    return events.with_name("details-" + events.name.removeprefix("events-"))


def events_path(beside: Path) -> Path:
    """The compacted events file a file compaction keeps beside it belongs to."""
    for prefix in BESIDE:
        if beside.name.startswith(prefix):
            return beside.with_name("events-" + beside.name.removeprefix(prefix))
    return beside


def rollup_path(events: Path) -> Path:
    """Where compaction keeps the report's sums over the sessions an events file holds whole."""
    return events.with_name("rollup-" + events.name.removeprefix("events-"))


def replaced_path(events: Path) -> Path:
    """Where compaction lists the parts of earlier files that the parts of an events file replace:
    a session met again is folded whole into the file that meets it (only written when any is)."""
    return events.with_name("replaced-" + events.name.removeprefix("events-"))


def digest_of(path: Path) -> str:
    """The digest that names an events file and the files beside it."""
    return path.stem.rsplit("-", 1)[-1]


# Files compaction keeps beside each events file, named by the same digest.
BESIDE = ("sessions-", "details-", "rollup-", "replaced-")
BESIDE_PATHS = (parts_path, details_path, rollup_path, replaced_path)
# The rollups of a day's files added up, committed by a manifest naming the files: ``summed-<digest>``.
SUMMED = "summed-"


def summed_rollups(folder: Path) -> list[tuple[Path, set[str]]]:
    """The sums of rollups committed in a day's folder: (the Parquet, the events files it covers)."""
    found = []
    for manifest in sorted(folder.glob(f"{SUMMED}*{MANIFEST_SUFFIX}")):
        try:
            names = json.loads(manifest.read_text(encoding="utf-8"))["rollups"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        parquet = manifest.with_name(manifest.name[: -len(MANIFEST_SUFFIX)] + ".parquet")
        if parquet.exists() and isinstance(names, list):
            found.append((parquet, {str(name) for name in names}))
    return found


def each_once(names: Iterable[str], segments_of: Callable[[str], list[str]]) -> list[str]:
    """Of the files of one listing (names with ``/`` between folders), those holding each record once.

    - a segment beside its ``.gz`` is skipped (a crash while compressing left both, whole);
    - compacted Parquet counts once its manifest is in the listing, and the segments the
      manifest names (``segments_of(manifest)``, relative to the store), and their twins, are
      not read again: the manifests come from the same listing as the files, so a compaction
      that commits meanwhile cannot hide segments whose Parquet this listing does not hold;
    - manifests, the session parts, details and rollups beside compacted Parquet, and the sums
      of rollups, are compaction's own.
    """
    # A listing of "." names "compacted/..." with no folder before it: each name is read with a
    # leading "/" so that the store's own folder is found the same way at any depth.
    given = {f"/{name}": name for name in names}
    names = set(given)
    marker = f"/{COMPACTED}/"
    held: set[str] = set()
    committed: set[str] = set()
    for manifest in (n for n in names if n.endswith(MANIFEST_SUFFIX) and marker in n):
        store = manifest[: manifest.index(marker)]
        committed.add(manifest[: -len(MANIFEST_SUFFIX)] + ".parquet")
        for segment in segments_of(given[manifest]):
            held.update((f"{store}/{segment}", f"{store}/{segment.removesuffix('.gz')}"))
    chosen = []
    for name in sorted(names):
        leaf = name.rsplit("/", 1)[-1]
        compacted_parquet = marker in name and leaf.endswith(".parquet")
        if (
            f"{name}.gz" in names
            or name in held
            or leaf.endswith(MANIFEST_SUFFIX)
            or (compacted_parquet and (leaf.startswith((*BESIDE, SUMMED)) or name not in committed))
        ):
            continue
        chosen.append(given[name])
    return chosen


def manifest_segments(text: str) -> list[str]:
    """The segments a manifest names; none when it cannot be read (it then commits only its Parquet)."""
    try:
        segments = json.loads(text)["segments"]
    except (ValueError, KeyError, TypeError):
        return []
    return [s for s in segments if isinstance(s, str)] if isinstance(segments, list) else []
