"""Compaction changes no figure: run twice, run during writes, or stopped half-way."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import read_log, rounded
from waza.cli import main
from waza.engine.compaction import compact
from waza.engine.slicing import Slice
from waza.sample import write_sample
from waza.telemetry import FolderSink, RuntimeCollector, TelemetryAnalyzer


def figures(folder: Path) -> dict:
    """The whole report with details, less what describes the files themselves."""
    report = TelemetryAnalyzer().analyze_paths([folder], scope=Slice(by="day"))
    report.pop("input"), report.pop("storage")
    return rounded(report)


def test_compact_twice_changes_nothing(tmp_path: Path) -> None:
    """Figures are the same before, after one run, and after a second run that finds nothing."""
    folder = tmp_path / "t"
    write_sample(folder, 1500, seed=21, compress=True)
    before = figures(folder)
    first = compact(folder)
    assert first.segments == 7 and not list(folder.glob("date=*/part-*"))
    assert figures(folder) == before
    second = compact(folder)
    assert (second.segments, second.rows) == (0, 0)
    assert figures(folder) == before
    loaded = sorted(s.session_id for s in RuntimeCollector.load_from_file(folder))
    assert len(loaded) == 1500 == len(set(loaded))


def test_compact_while_a_writer_appends(tmp_path: Path) -> None:
    """Compaction running over and over during writes loses and doubles nothing."""
    folder = tmp_path / "t"
    sink = FolderSink(folder, segment_seconds=0.05)
    collector = RuntimeCollector(sink=sink, flush_interval=0.02, redact=False)
    done = threading.Event()

    def write() -> None:
        for n in range(3000):
            sid = collector.start_session("p", {"user_id": f"u{n % 7}"}, skill_name="s")
            collector.record_event(sid, "tool.called", {"tool": "az"})
            collector.end_session(sid, "ok", n % 5 != 0)
        collector.close()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    runs = 0
    while not done.is_set():
        compact(folder)
        runs += 1
    writer.join()
    compact(folder)
    report = TelemetryAnalyzer().analyze_file(folder)
    assert runs > 1
    assert report["total_sessions"] == report["completed_sessions"] == 3000
    assert report["metrics"]["total_tool_calls"] == 3000
    assert report["metrics"]["success_rate"] == 0.8
    assert report["input"]["problems"] == []


def test_a_half_done_compaction_counts_everything_once(tmp_path: Path) -> None:
    """A Parquet file without its manifest is ignored; segments named in a manifest are not read twice."""
    folder = tmp_path / "t"
    write_sample(folder, 800, seed=22, compress=True)
    before = figures(folder)
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    compact(folder)

    # Stopped after the Parquet, before the manifest: the raw segments still count, the Parquet not.
    no_manifest = tmp_path / "no-manifest"
    shutil.copytree(saved, no_manifest)
    for parquet in (folder / "compacted").rglob("*.parquet"):
        target = no_manifest / parquet.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(parquet, target)
    assert figures(no_manifest) == before

    # Stopped after the manifest, before the segments were deleted: nothing is counted twice.
    no_cleanup = tmp_path / "no-cleanup"
    shutil.copytree(saved, no_cleanup)
    shutil.copytree(folder / "compacted", no_cleanup / "compacted")
    assert figures(no_cleanup) == before
    assert compact(no_cleanup).removed == 7
    assert figures(no_cleanup) == before


def test_segments_with_bad_lines_are_left_alone(tmp_path: Path) -> None:
    """A segment holding an unreadable line is not compacted, so the line stays reportable."""
    folder = tmp_path / "t"
    write_sample(folder, 200, seed=23, compress=True)
    damaged = sorted(folder.rglob("*.jsonl.gz"))[0]
    lines = gzip.decompress(damaged.read_bytes()).splitlines(keepends=True)
    damaged.write_bytes(gzip.compress(b"".join(lines[:3] + [b"{oops\n"] + lines[3:])))
    result = compact(folder)
    assert result.skipped == {str(damaged): 1} and damaged.exists()
    report = TelemetryAnalyzer().analyze_file(folder)
    assert [(Path(p["path"]).name, p["line"]) for p in report["input"]["problems"]] == [(damaged.name, 4)]
    assert report["total_sessions"] == 200


def test_compact_command(tmp_path: Path) -> None:
    """waza compact says what it did."""
    folder = tmp_path / "t"
    write_sample(folder, 100, seed=24, compress=True)
    result = CliRunner().invoke(main, ["compact", str(folder)])
    assert result.exit_code == 0
    manifests = list(folder.rglob("*.manifest.json"))
    rows = sum(json.loads(m.read_text())["rows"] for m in manifests)
    assert f"{rows:,} event(s)" in result.output


def test_sessions_split_between_compacted_and_open_segments(tmp_path: Path, sample_raw) -> None:
    """A session with events both in the compacted store and in an open segment counts once, whole."""
    from tests.conftest import expected_metrics

    events = [e for session in sample_raw for e in session]
    partition = tmp_path / "t" / "date=2026-11-01"
    partition.mkdir(parents=True)
    closed = "".join(json.dumps(e) + "\n" for e in events[0::2]).encode()
    (partition / "part-a-1.jsonl.gz").write_bytes(gzip.compress(closed))
    (partition / "part-b-1.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events[1::2]))
    assert compact(tmp_path / "t").segments == 1
    report = TelemetryAnalyzer().analyze_file(tmp_path / "t")
    expected = expected_metrics(sample_raw)
    assert report["total_sessions"] == expected["total_sessions"]
    assert report["completed_sessions"] == expected["completed_sessions"]
    assert report["metrics"]["total_tool_calls"] == expected["total_tool_calls"]
    assert report["metrics"]["avg_duration_ms"] == pytest.approx(expected["avg_duration_ms"], rel=1e-12)
    assert report["metrics"]["success_rate"] == pytest.approx(expected["success_rate"], rel=1e-12)


def test_sample_then_compact_as_the_guide_shows(tmp_path: Path) -> None:
    """`waza sample` gzips its segments, so `waza compact` compacts them and counts the files it wrote."""
    from click.testing import CliRunner

    from waza.cli import main

    runner = CliRunner()
    folder = tmp_path / "demo"
    sampled = runner.invoke(main, ["sample", "-o", str(folder), "--sessions", "300", "--days", "3"])
    assert sampled.exit_code == 0, sampled.output
    days = sorted(p.name for p in folder.glob("date=*"))
    result = runner.invoke(main, ["compact", str(folder)], catch_exceptions=False)
    written = list((folder / "compacted").rglob("*.parquet"))
    assert len(written) == 4 * len(days)  # events, folded sessions, details and rollup for each day
    assert f"into {len(written):,} Parquet file(s)" in result.output
    assert not list(folder.glob("date=*/part-*"))


def test_a_crash_twin_beside_a_compacted_segment_never_counts(tmp_path: Path) -> None:
    """x.jsonl left beside a whole x.jsonl.gz (a crash while compressing) counts once before and after
    compaction, and compaction removes it."""
    folder = tmp_path / "t"
    write_sample(folder, 60, seed=25, compress=True)
    segment = next(folder.rglob("part-*.jsonl.gz"))
    twin = segment.with_name(segment.name.removesuffix(".gz"))
    lines = gzip.decompress(segment.read_bytes())
    twin.write_bytes(lines)
    before = figures(folder)
    assert before["total_sessions"] == 60
    compact(folder)
    assert not twin.exists()
    assert figures(folder) == before
    twin.write_bytes(lines)  # a twin the clean-up missed (a crash after the commit) is never read
    assert figures(folder)["total_sessions"] == 60


def test_a_session_stored_whole_twice_counts_once_after_compaction(tmp_path: Path) -> None:
    """A session whole in the compacted store and again in a raw segment is one session, as the
    Python reader and a fold of the raw log say."""
    from waza.store.reader import load_sessions

    folder = tmp_path / "t"
    with RuntimeCollector(sink=FolderSink(folder, compact=False), redact=False) as collector:
        for n in range(20):
            with collector.session(f"Deploy app-{n}", session_id=f"s{n}", skill_name="azure-deploy") as s:
                s.event("tool.called", {"tool": "az"})
    again = [json.dumps(e) for e in read_log(folder) if e["session_id"] in ("s1", "s2", "s3")]
    compact(folder)
    partition = next(folder.glob("date=*"))
    (partition / "part-resent-1-1-00001.jsonl").write_text("\n".join(again) + "\n")
    report = TelemetryAnalyzer().analyze_file(folder)
    sessions, _ = load_sessions([folder])
    assert report["total_sessions"] == len(sessions) == 20
    assert report["completed_sessions"] == 20 and report["metrics"]["success_rate"] == 1.0
