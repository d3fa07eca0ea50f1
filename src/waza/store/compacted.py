"""The compacted part of a telemetry folder, as files: where compaction writes, and what it has committed.

Compaction itself (``engine/compaction.py``) writes these files; readers use
this module to tell committed Parquet from leftovers, and which segments a
manifest already holds.
"""

from __future__ import annotations

import json
from pathlib import Path

COMPACTED = "compacted"
MANIFEST_SUFFIX = ".manifest.json"


def manifests(root: Path) -> list[Path]:
    folder = root / COMPACTED
    return sorted(folder.rglob(f"*{MANIFEST_SUFFIX}")) if folder.is_dir() else []


def compacted_segments(root: Path, committed: list[Path] | None = None) -> set[Path]:
    """Every segment some committed manifest holds, with its uncompressed twin.

    A crash while a segment was being compressed can leave ``x.jsonl`` beside a
    whole ``x.jsonl.gz``; once the ``.gz`` is compacted, the twin's lines are held
    too and must not be read again. ``committed`` limits it to these manifests
    (those of one listing of the folder).
    """
    held: set[Path] = set()
    for manifest in manifests(root) if committed is None else committed:
        try:
            names = json.loads(manifest.read_text(encoding="utf-8"))["segments"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for name in names:
            held.update((root / name, root / name.removesuffix(".gz")))
    return held


def committed_parquet(manifest: Path) -> Path:
    return manifest.with_name(manifest.name[: -len(MANIFEST_SUFFIX)] + ".parquet")


def parts_path(events: Path) -> Path:
    """Where compaction keeps the per-session partial folds of an events file."""
    return events.with_name("sessions-" + events.name.removeprefix("events-"))


def is_parts_file(path: Path) -> bool:
    return path.name.startswith("sessions-") and path.suffix == ".parquet" and COMPACTED in path.parts
