"""Shared fixtures: sample telemetry, and metrics computed from it without waza's readers."""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

# Tests read the segments writers leave; those about compaction in the background turn it on
# themselves (FolderSink(..., compact=True)), and every other test reads a store that stays put.
os.environ["WAZA_COMPACTION"] = "off"

from waza.sample import sample_sessions


def expected_metrics(sessions: list[list[dict[str, Any]]], skill: str | None = None) -> dict[str, Any]:
    """The DESIGN.md metric definitions, computed directly from raw event dicts."""
    rows = []
    for events in sessions:
        by_type = defaultdict(list)
        for event in events:
            by_type[event["event_type"]].append(event)
        times = [datetime.fromisoformat(e["timestamp"]) for e in events]
        started = by_type["session.started"]
        start = datetime.fromisoformat(started[0]["timestamp"]) if started else min(times)
        ended = by_type["session.ended"]
        end = datetime.fromisoformat(ended[-1]["timestamp"]) if ended else None
        skill_name = next((e["skill_name"] for e in events if e["skill_name"]), None)
        micros = None if end is None else (end - start) // (end - start).resolution
        rows.append(
            {
                "skill": skill_name,
                "completed": end is not None,
                "success": bool(ended) and ended[-1]["data"].get("success") is True,
                "duration_ms": None if micros is None else int(micros / 1000),
                "tools": len(by_type["tool.called"]),
            }
        )
    if skill is not None:
        rows = [row for row in rows if row["skill"] == skill]
    completed = [row for row in rows if row["completed"]]
    tools = sum(row["tools"] for row in rows)
    return {
        "total_sessions": len(rows),
        "completed_sessions": len(completed),
        "success_rate": sum(row["success"] for row in completed) / len(completed),
        "avg_duration_ms": sum(row["duration_ms"] for row in completed) / len(completed),
        "total_tool_calls": tools,
        "avg_tool_calls_per_session": tools / len(rows),
        "skills": sorted({row["skill"] for row in rows if row["skill"]}),
    }


def rounded(value: Any, digits: int = 10) -> Any:
    """A report with every float to ``digits`` significant digits: percentiles read from rollups
    and from the sessions may differ in the last bit (DuckDB interpolates with a fused multiply-add)."""
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    return value


def read_log(folder: Path, *, torn_tails: bool = False) -> list[dict[str, Any]]:
    """Every line of an event-log folder (plain and gzipped segments), parsed strictly.

    With ``torn_tails``, a segment's last line without its newline (a writer
    killed in the middle of a write) is left out; any other bad line still fails.
    """
    lines = []
    for path in sorted(folder.rglob("*.jsonl*")):
        if path.name.startswith("."):  # a compression's temporary file: readers skip it too
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        if torn_tails and data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
        lines.extend(json.loads(line) for line in data.decode("utf-8").splitlines())
    return lines


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sample_raw() -> list[list[dict[str, Any]]]:
    """400 sample sessions as raw event dicts (seed 11)."""
    return list(sample_sessions(400, seed=11))


@pytest.fixture
def sample_dir(tmp_path: Path, sample_raw: list[list[dict[str, Any]]]) -> Path:
    """The same sessions written as an event log folder."""
    from waza.sample import write_sample

    write_sample(tmp_path / "telemetry", 400, seed=11)
    return tmp_path / "telemetry"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real file system of 2 MiB (tmpfs), to fill up; it needs root, which CI and these machines have."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk with one file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler
