"""Spark and DuckDB give the same JSON report on the same data (Spark in local mode)."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.analysis.test_details import PRICES
from waza.cli import main
from waza.engine.compaction import compact
from waza.engine.slicing import Slice
from waza.model import TelemetryEvent, fold_session
from waza.sample import sample_sessions, write_sample
from waza.store.export import write_export
from waza.telemetry import FolderSink, RuntimeCollector, TelemetryAnalyzer


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind of input at once: compacted Parquet, raw and gzip segments, a sampled
    capture, an export of an earlier version, and a segment with an unreadable line."""
    root = tmp_path_factory.mktemp("mixed")
    write_sample(root / "compacted", 500, seed=11, compress=True)
    compact(root / "compacted")
    write_sample(root / "raw", 300, seed=12)
    write_sample(root / "gzip", 200, seed=13, compress=True)
    sink = FolderSink(root / "sampled", compact=False)  # stays raw: the compacted kind is above
    with RuntimeCollector(sink=sink, sample_rate=0.5, keep_errors=True, redact=False) as collector:
        for n in range(300):
            sid = collector.start_session(f"prompt {n}", {"user_id": f"u{n % 7}"}, skill_name="azure-cost")
            collector.record_event(sid, "tool.called", {"tool": "az"})
            collector.record_event(sid, "llm.request", {"model": "gpt-4.1", "tokens": 500 + n})  # one number
            collector.end_session(sid, "out", n % 9 != 0, None if n % 9 != 0 else "quota")
    exported = (
        fold_session(events[0]["session_id"], [TelemetryEvent.from_dict(e) for e in events])
        for events in sample_sessions(150, seed=14)
    )
    write_export(exported, root / "export" / "old.json")
    damaged = next((root / "raw").rglob("*.jsonl"))
    with open(damaged, "ab") as out:
        out.write(b'{"timestamp": "2026-11-02T10:00:00+00:00", "event_type": \n')
    return root


def assert_same(duckdb_value: Any, spark_value: Any, where: str = "report") -> None:
    """Equal, numbers to 1e-9 relative (sums of floats may round differently)."""
    if isinstance(duckdb_value, dict):
        assert isinstance(spark_value, dict) and duckdb_value.keys() == spark_value.keys(), where
        for key in duckdb_value:
            assert_same(duckdb_value[key], spark_value[key], f"{where}.{key}")
    elif isinstance(duckdb_value, list):
        assert isinstance(spark_value, list) and len(duckdb_value) == len(spark_value), where
        for index, (a, b) in enumerate(zip(duckdb_value, spark_value, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(duckdb_value, float) and not isinstance(spark_value, bool):
        assert isinstance(spark_value, int | float), where
        assert math.isclose(duckdb_value, spark_value, rel_tol=1e-9, abs_tol=1e-12), (
            where,
            duckdb_value,
            spark_value,
        )
    else:
        assert duckdb_value == spark_value, (where, duckdb_value, spark_value)


def test_everything_with_details_and_cost(mixed_store: Path) -> None:
    duck = TelemetryAnalyzer().analyze_paths([mixed_store], prices=PRICES)
    spark = TelemetryAnalyzer(engine="spark").analyze_paths([mixed_store], prices=PRICES)
    # Every input counted: 500 + 300 + 200 sample sessions, the export, and the sampled capture.
    assert 1150 < duck["total_sessions"] < 1450
    assert duck["input"]["problems"] and duck["tools"] and duck["llm"] and duck["errors"]
    assert_same(duck, spark)


def test_breakdown_by_day_in_one_environment(mixed_store: Path) -> None:
    scope = Slice(by="day", where=(("environment", "production"),), since=datetime(2026, 11, 3, tzinfo=UTC))
    duck = TelemetryAnalyzer().analyze_paths([mixed_store], scope=scope)
    spark = TelemetryAnalyzer(engine="spark").analyze_paths([mixed_store], scope=scope)
    assert duck["total_sessions"] > 0
    assert_same(duck, spark)


def test_cli_on_a_local_master(mixed_store: Path) -> None:
    """`--master` picks Spark; the JSON printed is DuckDB's, breakdown by a metadata key."""
    common = [
        "analyze",
        str(mixed_store),
        "--format",
        "json",
        "--skill",
        "azure-deploy",
        "--by",
        "environment",
    ]
    duck = CliRunner().invoke(main, common)
    spark = CliRunner().invoke(main, [*common, "--master", "local[2]"])
    assert duck.exit_code == 0 and spark.exit_code == 0, (duck.output, spark.output)
    assert_same(json.loads(duck.stdout), json.loads(spark.stdout))


def test_object_store_prefix(tmp_path: Path) -> None:
    """A store named by URL is listed through Spark's file systems, with the same rules
    as a local folder: Parquet without a manifest, a segment beside its gzip copy and
    hidden files are left out; other files are reported. file:// stands in for s3a://."""
    store = tmp_path / "store"
    write_sample(store, 300, seed=21, compress=True)
    compact(store)
    write_sample(store, 200, seed=22, compress=True)
    segment = next(store.glob("date=*/*.jsonl.gz"))
    segment.with_suffix("").write_bytes(gzip.decompress(segment.read_bytes()))  # a crash before unlink
    committed = next(store.glob("compacted/date=*/events-*.parquet"))
    shutil.copy(committed, committed.with_name("events-0123456789abcdef.parquet"))  # never committed
    (store / ".hidden.jsonl").write_text("not telemetry\n")
    duck = TelemetryAnalyzer().analyze_paths([store])
    (store / "notes.txt").write_text("not telemetry\n")
    spark = TelemetryAnalyzer(engine="spark").analyze_paths([store.as_uri()])
    assert duck["total_sessions"] == 500 and not duck["input"]["problems"]
    (stray,) = spark["input"].pop("problems")
    assert stray["path"].endswith("/notes.txt")
    duck["input"].pop("problems")
    assert_same(duck, spark)


def test_prefix_needs_spark() -> None:
    result = CliRunner().invoke(main, ["analyze", "s3a://bucket/telemetry"])
    assert result.exit_code == 2
    assert "object-store prefix: analyze it with --engine spark" in result.output


def test_compacted_store_alone(tmp_path: Path) -> None:
    """Only compacted Parquet, with details: the sessions come from the parts compaction folded."""
    write_sample(tmp_path, 400, seed=31, compress=True)
    compact(tmp_path)
    assert not list(tmp_path.glob("date=*/*.jsonl*"))
    duck = TelemetryAnalyzer().analyze_paths([tmp_path])
    spark = TelemetryAnalyzer(engine="spark").analyze_paths([tmp_path])
    assert duck["total_sessions"] == 400
    assert_same(duck, spark)


def test_convert_and_check_pick_and_grade_the_same_sessions(mixed_store: Path, tmp_path: Path) -> None:
    """`waza convert --engine spark` ranks, filters and reads the sessions it picks as DuckDB does:
    the same task files for the same seed, whether picked at random or as the most interesting
    (the sample's prompts are near-duplicates: a few stand for all); `waza check --engine spark`
    grades them the same."""
    stores = [str(mixed_store / name) for name in ("compacted", "raw", "gzip", "sampled")]
    written: dict[tuple[str, str], dict[str, str]] = {}
    graded: dict[str, Any] = {}
    for engine in ("duckdb", "spark"):
        for mode in ("random", "interesting"):
            out = tmp_path / engine / mode
            convert = ["convert", *stores, "-o", str(out), "--select", mode, "--limit", "40", "--seed", "3"]
            result = CliRunner().invoke(main, [*convert, "--mocks", "--engine", engine])
            assert result.exit_code == 0, result.output
            written[engine, mode] = {
                str(path.relative_to(out)): path.read_text(encoding="utf-8") for path in out.rglob("*.yaml")
            }
        check = ["check", str(tmp_path / engine / "random"), *stores, "--format", "json", "--engine", engine]
        result = CliRunner().invoke(main, check)
        assert result.exit_code in (0, 1), result.output
        graded[engine] = json.loads(result.stdout)
    assert sum("/tasks/" in name for name in written["duckdb", "random"]) == 40
    assert 1 < sum("/tasks/" in name for name in written["duckdb", "interesting"]) < 40
    for mode in ("random", "interesting"):
        assert written["duckdb", mode] == written["spark", mode], mode
    assert len(graded["duckdb"]["results"]) == 40
    assert graded["duckdb"] == graded["spark"]


def test_compare_reads_the_same_outcomes(mixed_store: Path) -> None:
    """`waza compare --engine spark` tests the same sessions, tokens and costs as DuckDB."""
    prices = mixed_store / "prices.yaml"
    prices.write_text(
        "gpt-4.1: {input: 0.002, output: 0.008}\ngpt-4.1-mini: {input: 0.0004, output: 0.0016}\n"
        "claude-sonnet-4: {input: 0.003, output: 0.015}\n"
    )
    common = ["compare", str(mixed_store / "raw"), str(mixed_store / "gzip"), "--format", "json"]
    common += ["--prices", str(prices)]
    duck = CliRunner().invoke(main, common)
    spark = CliRunner().invoke(main, [*common, "--engine", "spark"])
    assert duck.exit_code == 0 and spark.exit_code == 0, (duck.output, spark.output)
    found = json.loads(duck.stdout)
    figures = {c["figure"] for c in found["changes"]}
    assert {"success_rate", "tokens_per_session", "cost_per_session"} <= figures
    assert_same(found, json.loads(spark.stdout))
