"""An analysis killed mid-way leaves its scratch folder (spill files, staged Parquet); the next removes it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from waza.telemetry import RuntimeCollector, TelemetryAnalyzer

# A process that takes its scratch folder as an analysis does, writes into it, and is killed.
KILLED = """
import os, signal
from waza.engine.salvage import Salvage
salvage = Salvage()
scratch = salvage.scratch_file("spill")
scratch.write_bytes(b"x" * 4096)
print(scratch.parent, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_analysis_scratch(temporary: Path) -> Path:
    child = subprocess.run(
        [sys.executable, "-c", KILLED],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    assert child.returncode == -9, child.stderr
    return Path(child.stdout.strip())


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (then, then))


def test_scratch_of_a_killed_analysis_goes_once_untouched_for_an_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    old, recent = _killed_analysis_scratch(temporary), _killed_analysis_scratch(temporary)
    assert old.parent == temporary and (old / "spill").exists()
    _age(old, 2 * 3600)
    _age(recent, 10 * 60)  # a process of another container may still use it
    alive = temporary / f"waza-analysis-{os.getpid()}-abcd1234"  # this process is alive
    alive.mkdir()
    _age(alive, 2 * 3600)
    notes = temporary / "waza-analysis-notes"  # not a scratch folder's name
    notes.mkdir()
    _age(notes, 2 * 3600)

    folder = tmp_path / "telemetry"
    with RuntimeCollector(folder, redact=False) as collector:
        with collector.session("prompt", skill_name="azure-deploy"):
            pass
    assert TelemetryAnalyzer().analyze_paths([folder])["total_sessions"] == 1
    assert not old.exists()
    assert recent.exists() and alive.exists() and notes.exists()
    assert sorted(path.name for path in temporary.iterdir()) == sorted(
        path.name for path in (recent, alive, notes)
    )  # the analysis's own scratch went with it
