"""Retention: whole day partitions older than a limit are deleted."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from waza.store.compacted import COMPACTED, exclusive

PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def partitions(directory: Path) -> list[tuple[date, Path]]:
    """Day partitions directly under ``directory`` (links are never followed)."""
    found = []
    if not directory.is_dir():
        return found
    for entry in directory.iterdir():
        match = PARTITION.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            try:
                found.append((date.fromisoformat(match.group(1)), entry))
            except ValueError:
                continue
    return sorted(found)


def prune(
    directory: str | Path,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    wait: bool = True,
) -> list[Path]:
    """Delete (or, dry, list) partitions whose whole UTC day ended at least ``older_than`` ago.

    The age is exact: with 12h, yesterday's partition stays until noon today. Pruning waits
    for a compaction of the store to finish (with ``wait`` off, it prunes nothing meanwhile).
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    root = Path(directory)
    if not root.is_dir():
        return []
    with exclusive(root, wait=wait) as held:
        # Compacted days are partitioned the same way, under compacted/.
        found = partitions(root) + partitions(root / COMPACTED) if held else []
        doomed = [path for day, path in found if _end_of(day) <= cutoff]
        if not dry_run:
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)
    return doomed


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
