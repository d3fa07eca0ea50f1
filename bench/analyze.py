"""How fast `waza analyze` is, next to its two yardsticks, in one process.

For each size the event log (and, for the plain-Python reader, a SPEC.md-style
export of the same sessions) is generated once and cached in bench/.cache.
Then, side by side:

  waza         TelemetryAnalyzer().analyze_paths on the event-log folder
               (what `waza analyze` runs, minus interpreter start-up)
  duckdb-sql   one hand-written DuckDB query over the same files computing the
               same overall and per-skill figures: the floor
  plain-python json.load of the export and a loop over the sessions, as
               earlier waza versions analyzed
  waza-parquet (with --compacted) waza on the same sessions after `waza compact`
  waza-mixed   (with --compacted) waza on the compacted days but the last, and the
               raw segments of the last day: a store whose writers compact in the
               background, read with its tail not compacted yet
  waza-spark   (with --spark) waza with --engine spark, local mode on this machine

With --scaled N (a multiple of 10^6), waza then analyzes the raw event log, the
compacted store and the mixed store of N sessions side by side (see BASE_SIZE
for how they are made); with --scaled-raw 0 the compacted and mixed ones only.
With --collector N, waza analyzes N sessions recorded through RuntimeCollector
by two processes, compacted in the background as they wrote (collector_store).

waza's runs compute the whole report (tools, models, tokens and errors too);
duckdb-sql and plain-python compute the session figures only. Each line gives
the best wall time of three interleaved rounds, sessions per second, and the
highest peak RSS of this process while a run lasted (for waza-spark, with
Spark's JVM). Usage:

  python bench/analyze.py [--sizes 10000,100000,1000000] [--python-max 100000] [--rounds 3]
                          [--compacted] [--spark] [--scaled 10000000]
                          [--collector 10000000]
"""

from __future__ import annotations

import argparse
import functools
import gc
import gzip
import json
import multiprocessing
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from waza.analysis.analyzer import TelemetryAnalyzer
from waza.engine import sql
from waza.engine.compaction import compact
from waza.model import SessionTelemetry, TelemetryEvent, fold_session
from waza.sample import sample_sessions, write_sample
from waza.store.compacted import MANIFEST_SUFFIX
from waza.store.export import write_export

CACHE = Path(__file__).resolve().parent / ".cache"
SEED = 20261124


def rss_bytes(pid: int | str = "self", children: bool = False) -> int:
    """Resident memory of a process, and with ``children`` of all its descendants too."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            total = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:")), 0)
        for task in Path(f"/proc/{pid}/task").iterdir() if children else ():
            for child in (task / "children").read_text().split():
                total += rss_bytes(child, children=True)
    except OSError:  # the process ended meanwhile
        pass
    return total


def measure(action: Callable[[], Any], children: bool = False) -> tuple[float, int, Any]:
    """Wall seconds, peak RSS (sampled every 5 ms, or 100 ms with children) and the result of one run.

    ``children`` counts the memory of child processes too (Spark's JVM).
    """
    gc.collect()
    peak = rss_bytes(children=children)
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, rss_bytes(children=children))
            time.sleep(0.1 if children else 0.005)  # walking the JVM's threads costs CPU

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    running = False
    watcher.join()
    return elapsed, max(peak, rss_bytes(children=children)), result


def event_log(sessions: int) -> Path:
    folder = CACHE / f"events-{sessions}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"  generating {sessions:,} sessions ...", file=sys.stderr, flush=True)
        write_sample(folder, sessions, seed=SEED)
        # The log stands for past days, written earlier: its segments as old as closed ones are
        # (a segment written to lately may still be open, and readers copy it rather than link it).
        closed = time.time() - 3600
        for segment in folder.rglob("part-*.jsonl"):
            os.utime(segment, (closed, closed))
        (folder / ".complete").touch()
    return folder


def compacted_store(sessions: int) -> Path:
    """The same event log with segments closed as gzip, then compacted to Parquet."""
    folder = CACHE / f"compacted-{sessions}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"  compacting {sessions:,} sessions ...", file=sys.stderr, flush=True)
        for segment in event_log(sessions).rglob("*.jsonl"):
            target = folder / segment.relative_to(event_log(sessions))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(segment, "rb") as source, gzip.open(f"{target}.gz", "wb", compresslevel=1) as packed:
                shutil.copyfileobj(source, packed, 1 << 20)
        compact(folder)
        (folder / ".complete").touch()
    return folder


def mixed_store(sessions: int) -> Path:
    """The compacted store's days but the last, and the raw segments of the last day (hard links)."""
    return _mixed(sessions, compacted_store(sessions), lambda days: event_log(sessions))


def _mixed(sessions: int, compacted: Path, raw: Callable[[int], Path]) -> Path:
    """The days of ``compacted`` but the last, and the last day of the raw log ``raw(days)`` gives."""
    folder = CACHE / f"mixed-{sessions}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        days = sorted(p.name for p in (compacted / "compacted").glob("date=*"))
        for day in days[:-1]:
            shutil.copytree(compacted / "compacted" / day, folder / "compacted" / day, copy_function=os.link)
        shutil.copytree(raw(len(days)) / days[-1], folder / days[-1], copy_function=os.link)
        (folder / ".complete").touch()
    return folder


# Stores beyond 10^6 sessions are the 10^6 sample again and again, each copy
# with its own session ids (suffix "-<copy>"): generating and compacting 10^7
# sessions from scratch takes over an hour on a 2-core machine, copies minutes.
BASE_SIZE = 1_000_000


def scaled_event_log(sessions: int, days: slice = slice(None)) -> Path:
    """The raw event log of ``sessions`` sessions, as copies of the 10^6 one (``days``: of those
    day partitions only)."""
    part = "" if days == slice(None) else f"-days{days.start}"
    folder = CACHE / f"events-{sessions}{part}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        base = event_log(BASE_SIZE)
        print(f"  writing {sessions // BASE_SIZE} copies of the event log ...", file=sys.stderr, flush=True)
        for copy in range(sessions // BASE_SIZE):
            for day in sorted(base.glob("date=*"))[days]:
                for segment in sorted(day.glob("*.jsonl")):
                    target = folder / segment.relative_to(base).with_name(f"{segment.stem}-{copy}.jsonl")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(segment, "rb") as source, open(target, "wb") as out:
                        # Every line of the log ends with its session id.
                        while chunk := source.read(1 << 26) + source.readline():
                            out.write(chunk.replace(b'"}\n', f'-{copy}"}}\n'.encode()))
                    # As old as the original (see event_log).
                    os.utime(target, ns=(segment.stat().st_atime_ns, segment.stat().st_mtime_ns))
        (folder / ".complete").touch()
    return folder


# What a copy of a compacted file changes: session ids get the copy's suffix (the lists of
# sessions a rollup keeps name them as ``key``).
COPIED = {
    "events": "session_id || '-{copy}' AS session_id",
    "sessions": "session_id || '-{copy}' AS session_id",
    "details": "session_id || '-{copy}' AS session_id",
    "rollup": "CASE WHEN kind IN ('slowest', 'most_tools') THEN key || '-{copy}' ELSE key END AS key",
}
# Copies keep the row groups compaction writes (and their order): readers skip by their statistics.
ROW_GROUPS = {"sessions": sql.PARTS_ROW_GROUP, "details": sql.DETAILS_ROW_GROUP}


def scaled_store(sessions: int) -> Path:
    """The compacted store of ``sessions`` sessions: the compacted 10^6 store in copies with the
    same session ids as ``scaled_event_log``, each as one more compaction run of every day would
    write it, then the rollups of each day added up as compaction does."""
    folder = CACHE / f"compacted-{sessions}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        base = compacted_store(BASE_SIZE) / "compacted"
        print(
            f"  writing {sessions // BASE_SIZE} copies of the compacted store ...",
            file=sys.stderr,
            flush=True,
        )
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for copy in range(sessions // BASE_SIZE):
            for events in sorted(base.glob("date=*/events-*.parquet")):
                name = events.name.removesuffix(".parquet") + f"{copy:03d}"
                target = folder / "compacted" / events.parent.name
                target.mkdir(parents=True, exist_ok=True)
                for prefix, replaced in COPIED.items():
                    source = events.with_name(events.name.replace("events", prefix, 1))
                    row_group = f", ROW_GROUP_SIZE {ROW_GROUPS[prefix]}" if prefix in ROW_GROUPS else ""
                    con.execute(
                        f"COPY (SELECT * REPLACE ({replaced.format(copy=copy)}) "
                        f"FROM read_parquet('{source}', hive_partitioning = false)) "
                        f"TO '{target / name.replace('events', prefix, 1)}.parquet' "
                        f"(FORMAT parquet, COMPRESSION zstd{row_group})"
                    )
                manifest = json.loads(
                    events.with_name(events.name.replace(".parquet", MANIFEST_SUFFIX)).read_text()
                )
                (target / f"{name}{MANIFEST_SUFFIX}").write_text(json.dumps(manifest | {"segments": []}))
        con.close()
        compact(folder)  # adds up each day's rollups
        (folder / ".complete").touch()
    return folder


def scaled_mixed_store(sessions: int) -> Path:
    """``mixed_store`` at a scaled size: the scaled compacted days but the last, and the raw copies
    of the last day."""
    return _mixed(
        sessions, scaled_store(sessions), lambda days: scaled_event_log(sessions, slice(days - 1, None))
    )


# Writer processes of the collector-written store, one per core of the machines the README measures on.
WRITERS = 2


def collector_store(sessions: int) -> Path:
    """``sessions`` sample sessions recorded through RuntimeCollector by WRITERS processes into one
    folder, with the defaults a skill gets (redaction, gzip on close, compaction in the background),
    then one last ``compact`` as the next writer would run it. Prints how long that took."""
    folder = CACHE / f"collected-{sessions}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"  recording {sessions:,} sessions with {WRITERS} collectors ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(WRITERS) as pool:
            shares = [
                (folder, sessions // WRITERS + (w < sessions % WRITERS), SEED + w) for w in range(WRITERS)
            ]
            counts = pool.starmap(_record, shares)
        recorded = time.perf_counter() - started
        compact(folder)
        events = sum(events for events, _ in counts)
        dropped = sum((Counter(dropped) for _, dropped in counts), Counter())
        print(
            f"  {events:,} events recorded in {recorded:.0f} s, all compacted "
            f"{time.perf_counter() - started:.0f} s after the start; dropped: {dict(dropped) or 'none'}",
            file=sys.stderr,
            flush=True,
        )
        (folder / ".complete").touch()
    return folder


def _record(folder: Path, sessions: int, seed: int) -> tuple[int, dict[str, int]]:
    """One writer process: the sample's sessions through the collector's API, stamped with the
    sample's times (the clock is the only thing replaced). A producer this much faster than any real
    skill would be told to drop; it waits for its writer every 500 sessions instead (fewer events
    than the writer's queue always takes)."""
    from waza.capture import collector as module
    from waza.telemetry import RuntimeCollector

    now = [datetime.now()]
    module.utc_now = lambda: now[0]
    events = 0
    collector = RuntimeCollector(folder)
    for number, session in enumerate(sample_sessions(sessions, seed=seed)):
        session_id = None
        for event in session:
            now[0] = datetime.fromisoformat(event["timestamp"])
            kind, data = event["event_type"], event["data"]
            if kind == "session.started":
                session_id = collector.start_session(
                    data["prompt"], data["metadata"], session_id=event["session_id"]
                )
            elif kind == "session.ended":
                collector.end_session(session_id, data["output"], data["success"], data["error"])
            else:
                collector.record_event(session_id, kind, data, skill_name=event.get("skill_name"))
        events += len(session)
        if number % 500 == 499:
            collector.flush()
    collector.close()
    return events, collector.dropped


def export_file(sessions: int) -> Path:
    path = CACHE / f"export-{sessions}.json"
    if not path.exists():
        print(f"  writing the export of {sessions:,} sessions ...", file=sys.stderr, flush=True)
        folded = (
            fold_session(events[0]["session_id"], [TelemetryEvent.from_dict(e) for e in events])
            for events in sample_sessions(sessions, seed=SEED)
        )
        write_export(folded, path)
    return path


def run_waza(folder: Path, engine: str = "duckdb") -> tuple[int, float]:
    report = TelemetryAnalyzer(engine=engine).analyze_paths([folder])
    return report["total_sessions"], report["metrics"]["success_rate"]


# The same figures as waza's overall and per-skill report (success rate, mean and
# percentiles of duration, tool calls, distinct users), written by hand as one query.
HAND_WRITTEN = """
WITH sessions AS (
  SELECT session_id,
    coalesce(min(timestamp) FILTER (WHERE event_type = 'session.started'), min(timestamp)) AS started_at,
    max(timestamp) FILTER (WHERE event_type = 'session.ended') AS ended_at,
    bool_or(data.success = 'true') FILTER (WHERE event_type = 'session.ended') AS ok,
    count(*) FILTER (WHERE event_type = 'tool.called') AS tools,
    min(skill_name) AS skill,
    any_value(json_extract_string(data.metadata, '$.user_id'))
      FILTER (WHERE event_type = 'session.started') AS user_id
  FROM read_json(?, format = 'newline_delimited', columns = {
    'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'skill_name': 'VARCHAR',
    'data': 'STRUCT(success VARCHAR, metadata JSON)', 'session_id': 'VARCHAR'})
  GROUP BY session_id
)
SELECT skill, count(*) AS sessions, count(*) FILTER (WHERE ok) / count(ended_at) AS success_rate,
  avg(date_diff('millisecond', started_at, ended_at)) AS avg_ms,
  quantile_cont(date_diff('millisecond', started_at, ended_at), [0.5, 0.9, 0.95, 0.99]) AS percentiles,
  sum(tools) AS tool_calls, count(DISTINCT user_id) AS users
FROM sessions GROUP BY GROUPING SETS ((), (skill)) ORDER BY skill NULLS FIRST
"""


def run_duckdb(folder: Path) -> tuple[int, float]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    overall = con.execute(HAND_WRITTEN, [f"{folder}/**/*.jsonl"]).fetchone()
    con.close()
    return overall[1], overall[2]


def run_plain_python(path: Path) -> tuple[int, float]:
    """Earlier versions' way: load the whole export, build objects, loop."""
    with open(path, encoding="utf-8") as stream:
        document = json.load(stream)
    sessions = [SessionTelemetry.from_dict(record) for record in document["sessions"]]
    completed = [s for s in sessions if s.end_time is not None]
    succeeded = sum(1 for s in completed if s.success)
    durations = sum(s.duration_ms for s in completed)
    tools = sum(len(s.tool_calls) for s in sessions)
    per_skill: dict[str, list[SessionTelemetry]] = {}
    for session in sessions:
        per_skill.setdefault(session.skill_name or "", []).append(session)
    _ = durations, tools, {k: len(v) for k, v in per_skill.items()}, datetime.now()
    return len(sessions), succeeded / len(completed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--python-max",
        type=int,
        default=100_000,
        help="largest size the plain-Python reader runs at",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each engine; the best counts")
    parser.add_argument(
        "--compacted", action="store_true", help="also time waza on the store after `waza compact`"
    )
    parser.add_argument("--spark", action="store_true", help="also time waza --engine spark (local mode)")
    parser.add_argument("--scaled", type=int, help="then time waza on a store this large, made of copies")
    parser.add_argument("--scaled-raw", type=int, default=1, help="0: the scaled compacted store only")
    parser.add_argument(
        "--collector", type=int, help="then time waza on a store this large, recorded by the collector"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    CACHE.mkdir(exist_ok=True)

    print(f"duckdb {duckdb.__version__}, python {sys.version.split()[0]}")
    header = (
        f"{'sessions':>10} {'engine':<13} {'wall s':>8} {'sessions/s':>12} {'peak RSS':>10} {'vs waza':>8}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        folder = event_log(size)
        runs: dict[str, Callable[[], tuple[int, float]]] = {
            "waza": functools.partial(run_waza, folder),
            "duckdb-sql": functools.partial(run_duckdb, folder),
        }
        if size <= args.python_max:
            runs["plain-python"] = functools.partial(run_plain_python, export_file(size))
        if args.compacted:
            runs["waza-parquet"] = functools.partial(run_waza, compacted_store(size))
            runs["waza-mixed"] = functools.partial(run_waza, mixed_store(size))
        if args.spark:
            runs["waza-spark"] = functools.partial(run_waza, folder, "spark")
        run_duckdb(folder)  # warm the page cache, so no run pays for the first read
        results: dict[str, tuple[float, int]] = {}
        answers = {}
        # Rounds interleave the engines so a noisy moment hits them alike; each keeps its best.
        for _ in range(args.rounds):
            for name, action in runs.items():
                wall, peak, answers[name] = measure(action, children=name == "waza-spark")
                best = results.get(name)
                results[name] = (min(wall, best[0]), max(peak, best[1])) if best else (wall, peak)
        assert len({count for count, _ in answers.values()}) == 1, answers
        for name, (wall, peak) in results.items():
            report_line(size, name, wall, peak, results["waza"][0])
        print()
    if args.scaled:
        runs = {
            "waza-parquet": functools.partial(run_waza, scaled_store(args.scaled)),
            "waza-mixed": functools.partial(run_waza, scaled_mixed_store(args.scaled)),
        }
        if args.scaled_raw:
            runs = {"waza": functools.partial(run_waza, scaled_event_log(args.scaled))} | runs
        results = {}
        for _ in range(args.rounds):
            for name, action in runs.items():
                wall, peak, (count, _) = measure(action)
                assert count == args.scaled, count
                best = results.get(name)
                results[name] = (min(wall, best[0]), max(peak, best[1])) if best else (wall, peak)
        for name, (wall, peak) in results.items():
            report_line(args.scaled, name, wall, peak, results.get("waza", (None,))[0])
        print()
    if args.collector:
        folder = collector_store(args.collector)
        results = {}
        for _ in range(args.rounds):
            wall, peak, (count, _) = measure(functools.partial(run_waza, folder))
            assert count == args.collector, count
            results["waza-collected"] = (min(wall, results.get("waza-collected", (wall,))[0]), peak)
        for name, (wall, peak) in results.items():
            report_line(args.collector, name, wall, peak, None)
        print()
    print("'vs waza' is each run's wall time over waza's: above 1 means slower than waza.")


def report_line(size: int, name: str, wall: float, peak: int, base: float | None) -> None:
    ratio = f"{wall / base:>7.2f}x" if base else f"{'-':>8}"
    print(
        f"{size:>10,} {name:<13} {wall:>8.2f} {size / wall:>12,.0f} {peak / 2**20:>8,.0f}MB {ratio}",
        flush=True,
    )


if __name__ == "__main__":
    main()
