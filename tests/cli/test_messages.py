"""What `waza analyze` says when it has nothing to show, or is asked for something it cannot do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_analyze_cli import waza
from tests.conftest import write_jsonl
from tests.tasks.test_convert import START, session_events
from waza.sample import write_sample


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_sampled_out_folder_says_why_it_is_empty(tmp_path: Path) -> None:
    """A collector whose sampling dropped every session leaves a folder that analyze explains, exit 1."""
    from waza.telemetry import RuntimeCollector

    with RuntimeCollector(directory=tmp_path / "telemetry", sample_rate=0.0) as collector:
        with collector.session("Deploy my app", skill_name="azure-deploy"):
            pass
    assert collector.dropped == {"sampled_out": 1}
    result = waza("analyze", str(tmp_path / "telemetry"))
    assert result.returncode == 1
    assert "sample_rate" in one_line_error(result)


def test_unknown_skills_and_keys_suggest_the_known_ones(tmp_path: Path) -> None:
    """A misspelt skill or metadata key is a usage error naming the closest ones that exist."""
    write_sample(tmp_path / "t", 200, seed=4)
    result = waza("analyze", str(tmp_path / "t"), "--skill", "azure-deplyo")
    assert result.returncode == 2
    assert "no skill 'azure-deplyo'" in one_line_error(result) and "'azure-deploy'" in result.stderr
    result = waza("analyze", str(tmp_path / "t"), "--where", "enviroment=production")
    assert result.returncode == 2
    assert "did you mean 'environment'?" in one_line_error(result)


def test_where_compares_booleans_and_numbers_as_people_mean_them(tmp_path: Path) -> None:
    """canary=True finds JSON true, build=3.0 finds 3, and text still compares exactly."""
    lines = []
    for n in range(6):
        metadata = {
            "user_id": f"u{n}",
            "canary": n % 2 == 0,
            "build": n % 3,
            "ring": "Beta" if n < 2 else "beta",
        }
        lines += session_events(f"s{n}", f"Deploy app-{n}", metadata=metadata)
    write_jsonl(tmp_path / "t" / "events.jsonl", lines)

    def sessions(*where: str) -> int:
        args = [arg for w in where for arg in ("--where", w)]
        result = waza("analyze", str(tmp_path / "t"), *args, "--format", "json")
        if result.returncode == 1:
            return 0
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["total_sessions"]

    assert sessions("canary=True") == 3 and sessions("canary=false") == 3
    assert sessions("build=2") == 2 and sessions("build=2.0") == 2
    assert sessions("ring=beta") == 4 and sessions("ring=Beta") == 2
    assert sessions("canary=true", "build=0") == 1  # n = 0 only (n = 3 is odd)


def test_bad_option_values_are_usage_errors(tmp_path: Path) -> None:
    """A memory limit that is not a size exits 2 with a one-line fix."""
    write_sample(tmp_path / "t", 5, seed=4)
    result = waza("analyze", str(tmp_path / "t"), "--memory-limit", "lots")
    assert result.returncode == 2 and "like 512MB or 4GB" in one_line_error(result)


def test_the_spark_engine_without_its_extra_names_the_install(tmp_path: Path) -> None:
    """Without PySpark and sqlglot, --engine spark says which extra to install, in one line."""
    write_sample(tmp_path / "t", 5, seed=4)
    hide = "import sys; sys.modules.update(pyspark=None, sqlglot=None); import waza.cli; waza.cli.main()"
    result = subprocess.run(
        [sys.executable, "-c", hide, "analyze", str(tmp_path / "t"), "--engine", "spark"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "pip install 'waza[spark]'" in one_line_error(result)


def test_convert_refuses_contradictory_outcomes(tmp_path: Path) -> None:
    """--succeeded and --failed together select nothing, and say so."""
    write_jsonl(tmp_path / "t" / "events.jsonl", session_events("s1", "Deploy app-1", at=START))
    result = waza("convert", str(tmp_path / "t"), "-o", str(tmp_path / "tasks"), "--succeeded", "--failed")
    assert result.returncode == 2
    assert "--succeeded" in one_line_error(result) and not (tmp_path / "tasks").exists()


def test_check_shows_whole_task_ids_at_80_columns(tmp_path: Path) -> None:
    """Long task ids wrap in the regression table rather than lose characters."""
    from tests.cli.test_analyze_cli import first_column
    from tests.tasks.test_check_replay import task, write_suite

    tasks = [task(n) | {"id": f"runtime-{n:02d}-" + "a1b2c3d4" * 7} for n in range(3)]
    for item in tasks:
        item["inputs"]["prompt"] = f"Deploy app-{tasks.index(item)}"
    lines = []
    for n in range(3):
        lines += session_events(f"s{n}", f"Deploy app-{n}", tools=[("az", True)])
    write_jsonl(tmp_path / "t" / "events.jsonl", lines)
    write_suite(tmp_path / "tasks", tasks)
    result = subprocess.run([sys.executable, "-m", "waza", "check", "tasks", "t"], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "80"})  # fmt: skip
    shown = result.stdout.splitlines()
    assert max(len(line) for line in shown) <= 80
    assert first_column(shown, "Regression check") == [t["id"] for t in tasks]


def test_telemetry_text_is_shown_literally(tmp_path: Path) -> None:
    """Markup and terminal escapes in skill names and errors reach the screen as plain characters."""
    skill = "[bold red]pwned[/] \x1b[2J"
    lines = session_events(
        "s1", "Deploy", skill=skill, ok=False, error="[link=http://x]Boom[/link]\x1b]0;t\x07"
    )
    write_jsonl(tmp_path / "t" / "events.jsonl", lines)
    result = waza("analyze", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "[bold red]pwned[/] \\x1b[2J" in result.stdout
    assert "[link=http://x]Boom[/link]" in result.stdout


def test_memory_that_runs_out_is_said_in_a_line(tmp_path: Path) -> None:
    """An analysis that cannot fit its memory limit says how to give it room, exit 1, no traceback."""
    write_sample(tmp_path / "t", 3000, seed=4)
    result = waza("analyze", str(tmp_path / "t"), "--memory-limit", "1MB")
    assert result.returncode == 1
    assert "--memory-limit" in one_line_error(result)


def test_a_disk_too_full_for_the_spill_files_is_told_apart_from_input_that_moved() -> None:
    """DuckDB reports a full spill disk as an IO error, as it reports a file that vanished; the
    first is said in a line with what to do, where the second would start the reading over."""
    import duckdb
    import pytest

    from waza.engine.duckdb_engine import _moved_files_reported
    from waza.errors import InputChangedError, SpillSpaceError

    full = 'IO Error: Could not write file "/tmp/waza-x/spill/duckdb_temp_1.tmp": No space left on device'
    with pytest.raises(SpillSpaceError, match="--memory-limit"), _moved_files_reported():
        raise duckdb.IOException(full)
    with pytest.raises(InputChangedError), _moved_files_reported():
        raise duckdb.IOException('IO Error: No files found that match the pattern "x.jsonl"')
