"""`waza analyze` as a user runs it: output, exit codes, bad input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import expected_metrics, write_jsonl
from tests.tasks.test_convert import session_events
from waza.cli import main
from waza.engine.compaction import compact
from waza.sample import sample_sessions, write_sample

WAZA = [sys.executable, "-m", "waza"]


def waza(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([*WAZA, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_terminal_report_looks_like_the_spec(tmp_path: Path) -> None:
    """Title, counts with separators, skills, the metrics table in SPEC.md's number formats."""
    write_sample(tmp_path / "t", 1234, seed=5)
    raw = list(sample_sessions(1234, seed=5))
    expected = expected_metrics(raw)
    result = waza("analyze", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Runtime Telemetry Analysis\n")
    assert "Sessions analyzed: 1,234\n" in out
    assert f"Skills invoked: {', '.join(expected['skills'])}\n" in out
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.splitlines()
        if line.startswith("│") and line.count("│") == 3
    }
    assert rows["Success rate"] == f"{expected['success_rate'] * 100:.1f}%"
    assert rows["Mean duration (ms)"] == f"{round(expected['avg_duration_ms']):,}"
    assert rows["Tool calls"] == f"{expected['total_tool_calls']:,}"
    assert rows["Tool calls per session"] == f"{expected['avg_tool_calls_per_session']:.1f}"
    incomplete = expected["total_sessions"] - expected["completed_sessions"]
    assert f"Incomplete sessions: {incomplete:,} " in out
    assert "Per-Skill Metrics" in out


def test_the_report_fits_80_columns_and_cuts_no_name(tmp_path: Path) -> None:
    """At COLUMNS=80, into a pipe, no line is longer and every skill and outlier session id shows whole."""
    write_sample(tmp_path / "t", 5000, seed=7)  # what `make demo` analyses
    long_skill = "azure-container-apps-deployment-with-managed-identity"
    write_jsonl(tmp_path / "t" / "long.jsonl", session_events("s" * 60, "Deploy app-1", skill=long_skill))
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([*WAZA, "analyze", str(tmp_path / "t")], capture_output=True,
                            text=True, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    report = json.loads(waza("analyze", str(tmp_path / "t"), "--format", "json").stdout)
    assert first_column(lines, "Per-Skill Metrics") == report["skills"]
    for outlier in report["slowest_sessions"] + report["most_tool_calls"]:
        assert outlier["session_id"] in result.stdout
    first, last = report["per_day"][0]["sessions"], report["per_day"][-1]["sessions"]
    (trend,) = [line for line in lines if line.startswith("  Sessions ")]
    assert trend.split()[1] == f"{first:,}" and trend.split()[-1] == f"{last:,}"


def first_column(lines: list[str], title: str) -> list[str]:
    """The names in a table's first column, a name folded over several lines joined back."""
    rows = lines[next(n for n, line in enumerate(lines) if line.strip() == title) :]
    names: list[str] = []
    for line in rows[3:]:
        if line.startswith("└"):
            return names
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            if cells[1]:
                names.append(cells[0])
            else:  # no figures: the name goes on
                names[-1] += cells[0]
    return names


def test_json_report_file_keeps_the_earlier_keys(tmp_path: Path) -> None:
    """-o writes the JSON report with the keys earlier versions wrote, and the skill filter applies."""
    write_sample(tmp_path / "t", 300, seed=2)
    target = tmp_path / "out" / "report.json"
    result = CliRunner().invoke(
        main,
        ["analyze", str(tmp_path / "t"), "--skill", "azure-deploy", "-o", str(target)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    report = json.loads(target.read_text())
    assert {"total_sessions", "skills", "metrics", "skill_breakdown", "time_range"} <= set(report)
    expected = expected_metrics(list(sample_sessions(300, seed=2)), "azure-deploy")
    assert report["total_sessions"] == expected["total_sessions"]
    assert report["skills"] == ["azure-deploy"]


def test_json_on_stdout(tmp_path: Path) -> None:
    """--format json prints the report as JSON."""
    write_sample(tmp_path / "t", 50, seed=2)
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "t"), "--format", "json"])
    assert json.loads(result.output)["total_sessions"] == 50


def test_a_compacted_store_reads_the_same_from_inside_it(tmp_path: Path) -> None:
    """`waza analyze .` in a compacted store reads its Parquet as the store's, never as stray files."""
    store = tmp_path / "t"
    write_sample(store, 200, seed=4, compress=True)
    compact(store)
    tail = list(sample_sessions(30, seed=5))
    write_jsonl(store / "date=2026-12-01" / "events-tail.jsonl", [e for events in tail for e in events])
    expected = expected_metrics(list(sample_sessions(200, seed=4)) + tail)
    inside = waza("analyze", ".", "--format", "json", cwd=store)
    assert inside.returncode == 0, inside.stderr
    report = json.loads(inside.stdout)
    assert report["input"]["problems"] == []
    assert report["total_sessions"] == expected["total_sessions"]
    assert report["metrics"]["total_tool_calls"] == expected["total_tool_calls"]
    assert report["metrics"]["success_rate"] == pytest.approx(expected["success_rate"], rel=1e-12)


def test_nothing_to_analyse_exits_1(tmp_path: Path) -> None:
    """A time window without sessions is an error with a one-line message naming what the data covers."""
    write_sample(tmp_path / "t", 20, seed=2)
    raw = list(sample_sessions(20, seed=2))
    first = min(events[0]["timestamp"] for events in raw)[:16].replace("T", " ")
    result = waza("analyze", str(tmp_path / "t"), "--until", "2020-01-01")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"Error: no sessions match the filters; {tmp_path / 't'} holds 20 sessions from {first}"
    )


def test_usage_error_exits_2() -> None:
    """An unknown option is a usage error."""
    assert waza("analyze", "--no-such-option", ".").returncode == 2


def _readable_events(path: Path) -> list[dict]:
    """Independently of waza: every complete, valid JSON line that can be decompressed."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = zlib.decompressobj(31).decompress(data)
    events = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is torn
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """Good files, a truncated file, a truncated gzip, an empty file, a binary file, one bad line."""
    folder = tmp_path / "damaged"
    lines = lambda seed, n: [e for s in sample_sessions(n, seed=seed) for e in s]  # noqa: E731
    write_jsonl(folder / "good" / "a.jsonl", lines(1, 100))
    (folder / "good" / "export.json").write_text(
        json.dumps(
            {
                "exported_at": "2026-11-20T00:00:00",
                "sessions": [
                    {
                        "session_id": "legacy-1",
                        "start_time": "2026-11-20T00:00:00",
                        "end_time": "2026-11-20T00:00:01",
                        "skill_name": "azure-cost",
                        "tool_calls": [{"tool": "az"}],
                        "success": True,
                        "duration_ms": 1000,
                    }
                ],
            }
        )
    )
    torn = write_jsonl(folder / "torn.jsonl", lines(2, 40))
    torn.write_bytes(torn.read_bytes()[:-25])
    packed = gzip.compress("".join(json.dumps(e) + "\n" for e in lines(3, 200)).encode())
    (folder / "torn-packed.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    (folder / "empty.jsonl").write_bytes(b"")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    one_bad = lines(4, 30)
    write_jsonl(folder / "one-bad-line.jsonl", one_bad)
    text = (folder / "one-bad-line.jsonl").read_text().splitlines(keepends=True)
    text[6] = '{"timestamp": "2026-11-01T00:00:00", "event_type": \n'
    (folder / "one-bad-line.jsonl").write_text("".join(text))
    return folder


def test_damaged_folder_analyses_the_good_data(damaged: Path) -> None:
    """Every readable record is analysed, every bad place is named, and the exit code is 0."""
    result = waza("analyze", str(damaged), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    by_session: dict[str, list[dict]] = defaultdict(list)
    for path in ["good/a.jsonl", "torn.jsonl", "torn-packed.jsonl.gz", "one-bad-line.jsonl"]:
        for event in _readable_events(damaged / path):
            by_session[event["session_id"]].append(event)
    legacy = [
        {
            "timestamp": "2026-11-20T00:00:00",
            "event_type": "session.started",
            "skill_name": "azure-cost",
            "data": {},
            "session_id": "legacy-1",
        },
        {
            "timestamp": "2026-11-20T00:00:00",
            "event_type": "tool.called",
            "skill_name": None,
            "data": {},
            "session_id": "legacy-1",
        },
        {
            "timestamp": "2026-11-20T00:00:01",
            "event_type": "session.ended",
            "skill_name": None,
            "data": {"success": True},
            "session_id": "legacy-1",
        },
    ]
    expected = expected_metrics([*by_session.values(), legacy])
    assert report["total_sessions"] == expected["total_sessions"]
    assert report["metrics"]["total_tool_calls"] == expected["total_tool_calls"]
    assert report["metrics"]["success_rate"] == pytest.approx(expected["success_rate"], rel=1e-12)
    assert report["metrics"]["avg_duration_ms"] == pytest.approx(expected["avg_duration_ms"], rel=1e-12)

    places = {(Path(p["path"]).name, p["line"]) for p in report["input"]["problems"]}
    torn_line = len((damaged / "torn.jsonl").read_text().splitlines())
    assert places == {
        ("torn.jsonl", torn_line),
        ("torn-packed.jsonl.gz", None),
        ("empty.jsonl", None),
        ("image.png", None),
        ("one-bad-line.jsonl", 7),
    }
    for name in ["torn.jsonl", "torn-packed.jsonl.gz", "empty.jsonl", "image.png", "one-bad-line.jsonl"]:
        assert name in result.stderr


def test_damaged_folder_under_strict_exits_1(damaged: Path) -> None:
    """--strict turns the first bad place into a one-line error and exit code 1."""
    result = waza("analyze", str(damaged), "--strict")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(damaged) in line
    assert result.stdout == ""


def test_no_traceback_for_a_missing_path(tmp_path: Path) -> None:
    """A path that does not exist is a usage error in one line, even beside one that does."""
    write_sample(tmp_path / "good", 5, seed=2)
    result = waza("analyze", str(tmp_path / "good"), str(tmp_path / "typo"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'typo'}: no such file or folder" in result.stderr


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    """A progress bar is drawn on stderr when it is a terminal, and never into a pipe."""
    import pty

    write_sample(tmp_path / "t", 3000, seed=8)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*WAZA, "analyze", str(tmp_path / "t")], stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    process.wait(timeout=120)
    os.close(leader)
    assert process.returncode == 0
    assert b"Reading telemetry" in drawn
    assert "Reading telemetry" not in waza("analyze", str(tmp_path / "t")).stderr
