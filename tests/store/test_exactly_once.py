"""At-least-once delivery, exactly-once counting: an event stored twice carries one id and counts once."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import duckdb

from bench.chaos import LosingProxy
from tests.analysis.test_spark_parity import assert_same
from tests.conftest import read_log
from tests.serve.test_server import server
from waza.capture.http_sink import HttpSink
from waza.engine.compaction import compact
from waza.store.reader import load_sessions
from waza.telemetry import FolderSink, RuntimeCollector, TelemetryAnalyzer


def record(collector: RuntimeCollector, prefix: str, count: int) -> None:
    for n in range(count):
        with collector.session(f"Deploy app-{n}", session_id=f"{prefix}-{n}", skill_name="azure-deploy") as s:
            for tool in ("az", "git")[: 1 + n % 2]:
                with s.tool(tool, args=["up"]):
                    pass
            s.llm("gpt-4.1", tokens={"input": 100 + n, "output": 10}, latency_ms=5)


def figures(*folders: Path, engine: str = "duckdb") -> dict:
    report = TelemetryAnalyzer(engine=engine).analyze_paths(list(folders))
    report.pop("input"), report.pop("storage")
    return report


def duplicate_every_other_line(folder: Path) -> int:
    """Store every other event a second time, in a segment of its own, as a retried write would."""
    lines = [json.dumps(event) for event in read_log(folder)][::2]
    partition = next(folder.glob("date=*"))
    (partition / "part-retry-1-1-00001.jsonl").write_text("\n".join(lines) + "\n")
    return len(lines)


def test_events_stored_twice_count_once_in_every_reader(tmp_path: Path) -> None:
    """Duplicated lines change no figure: DuckDB, Spark, the Python reader, and after compaction."""
    clean, doubled = tmp_path / "clean", tmp_path / "doubled"
    with RuntimeCollector(clean, redact=False) as collector:
        record(collector, "s", 40)
    doubled.mkdir()
    for path in clean.rglob("*.gz"):
        target = doubled / path.relative_to(clean)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert duplicate_every_other_line(doubled) > 100
    expected = figures(clean)
    assert expected["metrics"]["total_tool_calls"] == 60 and expected["llm"][0]["requests"] == 40
    assert figures(doubled) == expected
    assert_same(figures(doubled, engine="spark"), expected)
    sessions, _ = load_sessions([doubled])
    assert sum(len(s.tool_calls) for s in sessions) == 60
    close_segments(doubled)
    compact(doubled)
    assert figures(doubled) == expected


def close_segments(folder: Path) -> None:
    """Compress open segments, as a writer does at rollover: compaction takes closed ones."""
    for path in folder.rglob("*.jsonl"):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()


def test_a_copy_arriving_after_its_original_was_compacted_counts_once(tmp_path: Path) -> None:
    """A retry stored after compaction, beside the Parquet and then compacted in a second run, changes
    no figure in DuckDB, Spark, or the Python reader."""
    store = tmp_path / "store"
    with RuntimeCollector(sink=FolderSink(store, compact=False), redact=False) as collector:
        record(collector, "s", 40)
    expected = figures(store)
    assert expected["metrics"]["total_tool_calls"] == 60
    copies = [json.dumps(event) for event in read_log(store)][::2]  # the same ids, sent again
    partition = next(store.glob("date=*"))
    close_segments(store)
    compact(store)
    assert not list(partition.glob("*.gz"))
    (partition / "part-retry-1-1-00001.jsonl").write_text("\n".join(copies) + "\n")
    for stage in ("beside the compacted store", "compacted in a second run"):
        assert figures(store) == expected, stage
        assert_same(figures(store, engine="spark"), expected)
        sessions, _ = load_sessions([store])
        assert sum(len(s.tool_calls) for s in sessions) == 60, stage
        close_segments(store)
        compact(store)
    assert len(list(store.rglob("events-*.parquet"))) == 2


def test_a_client_retrying_after_a_lost_answer_is_counted_once(tmp_path: Path) -> None:
    """HttpSink through a proxy that loses every other answer: batches are stored twice, counted once."""
    with server(tmp_path / "t") as (url, _):
        LosingProxy.upstream, LosingProxy.lose_every, LosingProxy.count = url, 2, 0
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), LosingProxy)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        sink = HttpSink(f"http://127.0.0.1:{proxy.server_address[1]}", max_backoff=0.1)
        collector = RuntimeCollector(sink=sink, flush_interval=0.05, redact=False)
        for round_ in range(4):
            record(collector, f"r{round_}", 10)
            deadline = time.monotonic() + 20
            while not collector.flush(2):  # a flush answered 504 is retried until one is stored
                assert time.monotonic() < deadline
        collector.close()
        proxy.shutdown()
    stored = read_log(tmp_path / "t")
    assert len(stored) > len({e["event_id"] for e in stored})  # lost answers left doubles on disk
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"])
    assert report["total_sessions"] == 40 and report["metrics"]["total_tool_calls"] == 60
    assert report["llm"][0]["requests"] == 40 and sink.dropped == 0


def test_a_store_compacted_by_an_older_version_reads_beside_a_new_one(tmp_path: Path) -> None:
    """Parquet written before events kept their ids (no ``event_id``, no ``tool_ids``) still reads,
    alone and beside files compacted now, in both engines and the Python reader."""
    store = tmp_path / "store"
    with RuntimeCollector(sink=FolderSink(store, compact=False), redact=False) as collector:
        record(collector, "old", 20)
    close_segments(store)
    shutil.copytree(store, tmp_path / "raw-old")
    compact(store)
    with (
        duckdb.connect() as connection
    ):  # what version 0.2 wrote: the same files without ids, details or rollups
        for path in [*store.rglob("details-*.parquet"), *store.rglob("rollup-*.parquet")]:
            path.unlink()
        for path in store.rglob("*.parquet"):
            dropped = "tool_ids" if path.name.startswith("sessions-") else "event_id"
            connection.execute(
                f"COPY (SELECT * EXCLUDE ({dropped}) FROM read_parquet(?)) TO '{path}.old' (FORMAT parquet)",
                [str(path)],
            )
            path.with_name(path.name + ".old").replace(path)
    with RuntimeCollector(sink=FolderSink(store, compact=False), redact=False) as collector:
        record(collector, "new", 20)
    close_segments(store)
    shutil.copytree(store, tmp_path / "raw-new", ignore=shutil.ignore_patterns("compacted"))
    compact(store)
    expected = figures(tmp_path / "raw-old", tmp_path / "raw-new")
    assert expected["total_sessions"] == 40
    assert figures(store) == expected
    assert_same(figures(store, engine="spark"), expected)
    sessions, problems = load_sessions([store])
    assert len(sessions) == 40 and not problems
