"""Compaction: closed event-log segments become Parquet, one file per day and run.

Layout, beside the day partitions of the event log::

    compacted/date=YYYY-MM-DD/events-<digest>.parquet
    compacted/date=YYYY-MM-DD/events-<digest>.manifest.json   (the segments it holds)

The manifest is the commit point: a Parquet file counts only once its manifest
exists, and a segment named in a manifest is never read again, so a crash at
any step leaves every record counted exactly once. Only closed segments
(``.jsonl.gz``) are compacted, so writers appending to open ones are never
disturbed; a segment with an unreadable line is left as it is and reported.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from waza.engine import rollup_sql, sql
from waza.engine.duckdb_engine import DuckDBEngine
from waza.schema import DATA_TYPES
from waza.store.compacted import (
    BESIDE,
    BESIDE_PATHS,
    COMPACTED,
    MANIFEST_SUFFIX,
    SUMMED,
    compacted_segments,
    details_path,
    digest_of,
    events_path,
    exclusive,
    parts_path,
    replaced_path,
    rollup_path,
    summed_rollups,
)
from waza.store.retention import partitions

# Typed copies of the data fields the engine reads, beside the full JSON text. Stores written
# earlier hold these fields, so new fields the engine reads come from ``data_json``.
STRUCTURED = ("success", "metadata", "limits", "tool", "duration_ms", "error", "model", "tokens",
              "latency_ms", "error_type", "message")  # fmt: skip
MEMORY_LIMIT = "512MB"
DATA_STRUCTURE = json.dumps({name: DATA_TYPES[name] for name in STRUCTURED})


@dataclass
class CompactionResult:
    segments: int = 0
    rows: int = 0
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # segment -> unreadable lines
    removed: int = 0  # segments already compacted, now deleted


def compact(directory: str | os.PathLike[str]) -> CompactionResult:
    """Compact every closed, clean segment of each day; safe to run again, during writes, and from
    several processes at once (one compacts at a time, the others wait their turn)."""
    root = Path(directory)
    with exclusive(root):
        return _compact(root)


def _compact(root: Path) -> CompactionResult:
    result = CompactionResult()
    _remove_uncommitted(root)
    held = compacted_segments(root)
    for segment in sorted(held):
        if segment.exists():  # a crash came between commit and clean-up
            segment.unlink()
            result.removed += 1
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    # Compaction runs beside the writers: it keeps to a bound and spills the rest, as analysis does.
    spill = tempfile.TemporaryDirectory(prefix="waza-compaction-")
    connection.execute("SET memory_limit = ?", [MEMORY_LIMIT])
    connection.execute("SET temp_directory = ?", [spill.name])
    connection.execute("SET enable_progress_bar = false")  # DuckDB's bar would land in the caller's output
    try:
        for day, partition in partitions(root):
            closed = [p for p in sorted(partition.glob("part-*.jsonl.gz")) if p not in held]
            clean = _clean(connection, closed, result)
            if clean:
                try:
                    _write(connection, root, day.isoformat(), clean, result)
                except duckdb.Error as error:  # a full disk, say: nothing was committed
                    reason = str(error).strip().splitlines()[0]
                    raise OSError(_errno(error), f"compacting {day} failed: {reason}") from None
        for folder in sorted((root / COMPACTED).glob("date=*")):
            try:
                _sum_rollups(connection, folder)
            except duckdb.Error as error:
                reason = str(error).strip().splitlines()[0]
                raise OSError(
                    _errno(error), f"adding up the rollups of {folder.name} failed: {reason}"
                ) from None
    finally:
        connection.close()
        spill.cleanup()
    return result


def _remove_uncommitted(root: Path) -> None:
    """Files a compaction killed before its commit left behind: never read (no manifest names
    them), and removed here, while no other compaction can be writing."""
    folder = root / COMPACTED
    for day in folder.glob("date=*") if folder.is_dir() else ():
        committed = {m.name[: -len(MANIFEST_SUFFIX)] for m in day.glob(f"*{MANIFEST_SUFFIX}")}
        for leftover in day.glob("*.parquet"):
            stem = leftover.stem
            for prefix in BESIDE:
                stem = stem.replace(prefix, "events-", 1) if stem.startswith(prefix) else stem
            if stem not in committed:
                leftover.unlink(missing_ok=True)
        for staged in day.glob(".*-*.tmp"):
            staged.unlink(missing_ok=True)


def _scan(files: list[Path]) -> str:
    return sql.fill(sql.SEGMENTS_SCAN, files="[" + ", ".join(sql.literal(str(p)) for p in files) + "]")


def _clean(
    connection: duckdb.DuckDBPyConnection, segments: list[Path], result: CompactionResult
) -> list[Path]:
    """The segments with no unreadable line; the others are counted and left alone."""
    if not segments:
        return []
    try:
        bad = dict(connection.execute(sql.fill(sql.SEGMENT_BAD_LINES, scan=_scan(segments))).fetchall())
    except duckdb.Error:  # a damaged file among them: look at each alone
        return [s for s in segments if _clean(connection, [s], result)] if len(segments) > 1 else []
    clean = []
    for segment in segments:
        if bad.get(str(segment), 0):
            result.skipped[str(segment)] = bad[str(segment)]
        else:
            clean.append(segment)
    return clean


def _write(
    connection: duckdb.DuckDBPyConnection,
    root: Path,
    day: str,
    segments: list[Path],
    result: CompactionResult,
) -> None:
    names = [str(p.relative_to(root)) for p in segments]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    folder = root / COMPACTED / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"events-{digest}.parquet"
    manifest = target.with_name(target.name[: -len(".parquet")] + MANIFEST_SUFFIX)
    written = (target, *(beside(target) for beside in BESIDE_PATHS), manifest)
    try:
        rows = _stage(connection, segments, names, target, manifest)
    except BaseException:
        # Nothing is committed before the manifest: what was written goes, rather than fill the disk.
        for leftover in (*written, *map(_staged, written)):
            leftover.unlink(missing_ok=True)
        raise
    os.replace(_staged(manifest), manifest)  # the commit point
    for segment in segments:
        segment.unlink(missing_ok=True)
        segment.with_name(segment.name.removesuffix(".gz")).unlink(missing_ok=True)  # a crash's twin
    result.segments += len(segments)
    result.rows += rows
    result.files.append(target)


def _stage(
    connection: duckdb.DuckDBPyConnection,
    segments: list[Path],
    names: list[str],
    target: Path,
    manifest: Path,
) -> int:
    """Write the Parquet, the session parts, the details, the rollup and the manifest to commit; the
    number of events."""
    # Each event id once: what readers count is what is stored.
    once = sql.fill(sql.ONCE, scan=f"SELECT * FROM {_scan(segments)}", order="filename")
    structure = sql.literal(DATA_STRUCTURE)
    _copy(connection, sql.fill(sql.COMPACTED_EVENTS, structure=structure, once=once), target)
    stored = f"[{sql.literal(str(target))}]"
    # Sessions folded as far as these segments allow, with the parts earlier files hold of them,
    # so readers need not fold the events again,
    events = sql.fill(sql.PARQUET_SCAN, files=stored, event_id="event_id")
    connection.execute(
        sql.fill(sql.NEW_PARTS, parts=sql.fill(sql.SESSION_PARTS, scan=events, tool_ids=sql.TOOL_IDS))
    )
    earlier = _keep_earlier_parts(connection, target.parent.parent)
    _copy(connection, sql.fill(sql.FOLDED_PARTS, row_group=sql.PARTS_ROW_GROUP), parts_path(target))
    if earlier:
        _copy(connection, sql.REPLACED_PARTS, replaced_path(target))
    # and their tool, LLM and error events as the report reads them,
    scan = sql.fill(sql.PARQUET_DETAIL_SCAN, files=stored, event_id="event_id", types=sql.DETAIL_EVENT_TYPES)
    details = sql.fill(sql.DETAIL_ROWS, scan=scan)
    if earlier:  # an event stored twice may be in an earlier file too: each id once
        held = sql.fill(sql.EARLIER_DETAILS, files=_listed(details_path(p) for p in earlier))
        details = sql.fill(sql.DETAILS_ONCE, scan=f"{details} UNION ALL {held}")
    beside = sql.literal(str(parts_path(target)))
    details = sql.fill(sql.FOLDED_DETAILS, rows=details, parts=beside, row_group=sql.DETAILS_ROW_GROUP)
    _copy(connection, details, details_path(target))
    # and the report's sums over the sessions held whole, less those of the whole parts replaced.
    _write_rollup(target, earlier)
    (rows,) = connection.execute(sql.fill(sql.PARQUET_ROWS, file=stored)).fetchone()
    _staged(manifest).write_text(json.dumps({"segments": names, "rows": rows}, indent=2), encoding="utf-8")
    _fsync(_staged(manifest))
    return rows


def _sum_rollups(connection: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Add up the rollups of a day's files into one, so that a report reads one file per day
    however many runs compacted it; the sum is committed by a manifest naming the files it covers,
    and the sum it replaces goes. Readers use a sum only when they listed every file it covers."""
    rolled = sorted(
        events.name
        for events in folder.glob("events-*.parquet")
        if rollup_path(events).exists() and events.with_name(events.stem + MANIFEST_SUFFIX).exists()
    )
    current = summed_rollups(folder)
    if len(rolled) < 2 or any(covered == set(rolled) for _, covered in current):
        return
    digest = hashlib.sha256("\n".join(rolled).encode()).hexdigest()[:16]
    target = folder / f"{SUMMED}{digest}.parquet"
    files = "[" + ", ".join(sql.literal(str(rollup_path(folder / name))) for name in rolled) + "]"
    rollups = sql.fill(rollup_sql.STORED, files=files)
    _copy(
        connection, sql.fill(rollup_sql.SUMMED, rollups=rollups, listed=rollup_sql.LISTED_PER_GROUP), target
    )
    manifest = target.with_name(target.stem + MANIFEST_SUFFIX)
    _staged(manifest).write_text(json.dumps({"rollups": rolled}, indent=2), encoding="utf-8")
    _fsync(_staged(manifest))
    os.replace(_staged(manifest), manifest)  # the commit point
    for parquet, _ in current:
        parquet.with_name(parquet.stem + MANIFEST_SUFFIX).unlink(missing_ok=True)
        parquet.unlink(missing_ok=True)


def _keep_earlier_parts(connection: duckdb.DuckDBPyConnection, compacted: Path) -> list[Path]:
    """Keep ``earlier_parts``: the live parts committed files hold of the sessions in ``new_parts``
    (every file is committed: this runs under the lock, after leftovers are removed); the events
    files that hold any. Files compacted before details were kept are left to readers to fold."""
    events = [
        events_path(p)
        for p in sorted(compacted.glob("date=*/sessions-*.parquet"))
        if details_path(events_path(p)).exists()
    ]
    if not events:
        connection.execute(sql.NO_EARLIER_PARTS)
        return []
    files = _listed(parts_path(p) for p in events)
    lists = [replaced_path(p) for p in events if replaced_path(p).exists()]
    replaced = sql.fill(sql.REPLACED_FILES, files=_listed(lists)) if lists else sql.NO_REPLACED
    stored = {name for (name,) in connection.execute(sql.fill(sql.PARQUET_COLUMNS, files=files)).fetchall()}
    columns = sql.part_columns(stored)
    connection.execute(sql.fill(sql.EARLIER_PARTS, columns=columns, files=files, replaced=replaced))
    by_digest = {digest_of(p): p for p in events}
    return [by_digest[digest] for (digest,) in connection.execute(sql.EARLIER_FILES).fetchall()]


def _listed(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(sql.literal(str(p)) for p in paths) + "]"


def _write_rollup(target: Path, earlier: list[Path]) -> None:
    with DuckDBEngine(memory_limit=MEMORY_LIMIT, threads=1) as engine:
        path = rollup_path(target)
        engine.write_rollup(target, _staged(path), earlier)
    _fsync(_staged(path))
    os.replace(_staged(path), path)


def _staged(path: Path) -> Path:
    """Where a file is written before it is renamed into place (hidden: no reader lists it)."""
    return path.with_name(f".{path.name}.tmp")


def _copy(connection: duckdb.DuckDBPyConnection, statement: str, path: Path) -> None:
    """Run a COPY ... TO {target} statement into ``path``, whole and on disk once it has its name."""
    connection.execute(sql.fill(statement, target=sql.literal(str(_staged(path)))))
    _fsync(_staged(path))
    os.replace(_staged(path), path)


def _errno(error: Exception) -> int:
    return errno.ENOSPC if "No space left" in str(error) else errno.EIO


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
