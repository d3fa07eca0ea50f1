"""`waza sample` dates its data as a new user expects, and the documented extras of the CLI work."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_analyze_cli import waza


def timestamps(folder: Path) -> list[datetime]:
    found = []
    for path in folder.rglob("*.jsonl.gz"):
        with gzip.open(path, "rt") as lines:
            found += [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in lines]
    return found


def test_sample_ends_now_and_the_guide_window_finds_it(tmp_path: Path) -> None:
    """30 days of sample data end before now, start 30 days ago, and --since 7d finds the last week."""
    before = datetime.now(UTC)
    result = waza("sample", "-o", str(tmp_path / "t"), "--sessions", "600", "--days", "30")
    assert result.returncode == 0, result.stderr
    moments = timestamps(tmp_path / "t")
    assert len(moments) > 600 and not list((tmp_path / "t").rglob("*.jsonl"))  # closed and gzipped
    assert max(moments) <= datetime.now(UTC)
    assert min(moments) >= before - timedelta(days=30, minutes=1)
    recent = json.loads(waza("analyze", str(tmp_path / "t"), "--since", "7d", "--format", "json").stdout)
    assert 0 < recent["total_sessions"] < 600


def test_sample_with_an_end_is_the_same_every_time(tmp_path: Path) -> None:
    """--end with --seed writes the same telemetry on every run, dated before that end."""
    runs = []
    for name in ("a", "b"):
        args = ["sample", "-o", str(tmp_path / name), "--sessions", "50", "--end", "2026-03-01T12:00:00"]
        assert waza(*args).returncode == 0
        runs.append(sorted(timestamps(tmp_path / name)))
    assert runs[0] == runs[1] and max(runs[0]) < datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_help_spells_analyze_and_completion_works() -> None:
    """The analyze help says what it does in the command's own spelling; the documented completion runs."""
    assert "Analyze telemetry files" in waza("analyze", "--help").stdout
    env = {**os.environ, "_WAZA_COMPLETE": "bash_source"}
    command = Path(sys.executable).with_name("waza")  # the console script completion is set up for
    script = subprocess.run([str(command)], capture_output=True, text=True, env=env)
    assert "complete " in script.stdout and "_WAZA_COMPLETE" in script.stdout
