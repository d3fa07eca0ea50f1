"""How much `waza serve` takes, fsync on, driven from a second process on loopback.

The server runs as `waza serve` (redaction on, as by default) in a process of
its own; the load comes from another process: an asyncio client holding
keep-alive connections and sending prepared requests, one at a time per
connection, for a fixed time. Two loads:

  single  POST /telemetry/session/<id>/event, one small event per request
  batch   POST /telemetry/batch, 100 events per request (NDJSON)
  otlp    POST /v1/traces, OTLP protobuf, 512 GenAI spans per request (the SDK's
          batch size): a trace of an agent run with model and tool calls

Each line gives acknowledged requests per second, events (for otlp: spans) per second, and the
p50 and p99 of request latency seen by the client. With --crash N the server
is then killed with SIGKILL under load N times, and every event acknowledged
before the kill is looked for in the folder. Usage:

  python bench/serve.py [--seconds 10] [--connections 32] [--workers 1] [--no-redact] [--crash 50]
                        [--loads single,batch,otlp]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import uvloop

BATCH = 100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path, port: int, workers: int = 1, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "waza", "serve", "--dir", str(folder), "--port", str(port),
               "--workers", str(workers), *extra]  # fmt: skip
    # A session of its own, so that a kill reaches every worker of the server at once.
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("waza serve did not start")


SINGLE_BODY = b'{"event_type":"tool.called","data":{"tool":"az","id":"e%d"}}'
BATCH_LINE = (
    b'{"timestamp":"2026-11-20T10:00:00Z","event_type":"tool.called",'
    b'"session_id":"s%d","data":{"tool":"az","id":"e%d-%d"}}'
)


SPANS = 512
# A trace id whose last eight bytes each request replaces by its number: one trace per request.
TRACE_MARK = bytes.fromhex("5a5a5a5a5a5a5a5a") + b"\xa5" * 8


def _otlp_template() -> bytes:
    """An export of one agent run: the root, then model and tool calls in turn, under it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def attributes(**found: object) -> list[KeyValue]:
        return [
            KeyValue(
                key=k.replace("__", "."),
                value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=str(v)),
            )
            for k, v in found.items()
        ]

    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    start = 1_795_000_000_000_000_000
    for number in range(SPANS):
        span = scope.spans.add(trace_id=TRACE_MARK, span_id=(number + 1).to_bytes(8, "big"))
        span.start_time_unix_nano, span.end_time_unix_nano = (
            start + number * 1000,
            start + number * 1000 + 900,
        )
        if number == 0:
            span.name = "invoke_agent azure-deploy"
            span.end_time_unix_nano = start + SPANS * 1000
            span.attributes.extend(
                attributes(gen_ai__operation__name="invoke_agent", gen_ai__agent__name="azure-deploy")
            )
            continue
        span.parent_span_id = (1).to_bytes(8, "big")
        if number % 2:
            span.name = "chat gpt-4.1"
            span.attributes.extend(
                attributes(
                    gen_ai__operation__name="chat",
                    gen_ai__request__model="gpt-4.1",
                    gen_ai__usage__input_tokens=812,
                    gen_ai__usage__output_tokens=95,
                )
            )
        else:
            span.name = "execute_tool az"
            span.attributes.extend(
                attributes(
                    gen_ai__operation__name="execute_tool",
                    gen_ai__tool__name="az",
                    gen_ai__tool__call__arguments='["webapp", "create"]',
                )
            )
    return request.SerializeToString()


def request_bytes(mode: str, n: int, template: bytes = b"") -> bytes:
    """The n-th HTTP/1.1 request of a load; formatted from a template, so the load stays cheap."""
    if mode == "otlp":
        path, kind, body = (
            "/v1/traces",
            "application/x-protobuf",
            template.replace(TRACE_MARK[8:], n.to_bytes(8, "big")),
        )
    elif mode == "single":
        path, kind, body = f"/telemetry/session/s{n % 1000}/event", "application/json", SINGLE_BODY % n
    else:
        path, kind = "/telemetry/batch", "application/x-ndjson"
        body = b"\n".join([BATCH_LINE % (n % 1000, n, k) for k in range(BATCH)])
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def event_ids(mode: str, n: int) -> list[str]:
    """The ids of the events the n-th request carries (for otlp: its trace, the session id)."""
    if mode == "otlp":
        return [(TRACE_MARK[:8] + n.to_bytes(8, "big")).hex()]
    return [f"e{n}"] if mode == "single" else [f"e{n}-{k}" for k in range(BATCH)]


def per_request(mode: str) -> int:
    return {"single": 1, "batch": BATCH, "otlp": SPANS}[mode]


async def connection(port: int, mode: str, worker: int, until: float, found: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = worker * 10_000_000
    template = _otlp_template() if mode == "otlp" else b""
    try:
        while time.monotonic() < until:
            n += 1
            sent = time.perf_counter()
            writer.write(request_bytes(mode, n, template))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200 "):
                found["latencies"].append((time.perf_counter() - sent) * 1000)
                found["acknowledged"].append(n)
    except (OSError, asyncio.IncompleteReadError):
        pass  # the server went away (the crash runs)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the reset that ended the load


def drive(port: int, mode: str, connections: int, seconds: float, results: multiprocessing.Queue) -> None:
    """In the load process: run the connections, then report what was acknowledged."""
    found: dict = {"latencies": [], "acknowledged": []}

    async def main() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(connection(port, mode, w, until, found) for w in range(connections)))

    started = time.perf_counter()
    uvloop.run(main())
    wall = time.perf_counter() - started
    acknowledged = [event for n in found["acknowledged"] for event in event_ids(mode, n)]
    results.put((wall, found["latencies"], acknowledged))


def load(port: int, mode: str, connections: int, seconds: float) -> tuple[float, list[float], list[str]]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=drive, args=(port, mode, connections, seconds, results))
    process.start()
    outcome = results.get()
    process.join()
    return outcome


def stored_ids(folder: Path) -> set[str]:
    """The ids of the events in the folder's segments and in what compaction made of closed ones
    (once any compaction the server started has finished: it holds the store's lock)."""
    import duckdb

    from waza.engine.compaction import compact

    compact(folder)
    ids = set()
    compacted = sorted(str(p) for p in folder.rglob("events-*.parquet"))
    if compacted:
        rows = duckdb.sql(
            "SELECT coalesce(json_extract_string(data_json, '$.id'), session_id) FROM read_parquet($files)",
            params={"files": compacted},
        ).fetchall()
        ids.update(row[0] for row in rows)
    for path in folder.rglob("*.jsonl*"):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for line in data.splitlines():
            try:
                record = json.loads(line)
                ids.add(record["data"].get("id") or record["session_id"])
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # a torn last line after SIGKILL is the reader's to report
    return ids


def throughput(args: argparse.Namespace) -> None:
    redaction = "off" if args.no_redact else "on"
    print(f"waza serve on 127.0.0.1 ({args.workers} workers, redaction {redaction}), fsync per group commit, "
          f"{os.cpu_count()} cores, "
          f"{args.connections} connections, {args.seconds:g} s per load")  # fmt: skip
    header = f"{'load':<8} {'requests/s':>11} {'events/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for mode in args.loads.split(","):
        folder = Path(tempfile.mkdtemp(prefix="waza-serve-bench-"))
        port = free_port()
        server = start_server(folder, port, args.workers, *(["--no-redact"] if args.no_redact else []))
        try:
            load(port, mode, args.connections, 1.0)  # warm up
            wall, latencies, acknowledged = load(port, mode, args.connections, args.seconds)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
        stored = stored_ids(folder)
        missing = len(set(acknowledged) - stored)
        shutil.rmtree(folder)
        cuts = statistics.quantiles(latencies, n=100)
        rate = len(latencies) / wall
        print(f"{mode:<8} {rate:>11,.0f} {rate * per_request(mode):>11,.0f} "
              f"{statistics.median(latencies):>8.2f} {cuts[98]:>8.2f}"
              + (f"   {missing} acknowledged events missing!" if missing else ""), flush=True)  # fmt: skip


def crashes(runs: int, connections: int, workers: int) -> None:
    lost = 0
    for run in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="waza-serve-crash-"))
        port = free_port()
        server = start_server(folder, port, workers)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        loader = context.Process(
            target=drive, args=(port, "batch" if run % 2 else "single", connections, 30, results)
        )
        loader.start()
        time.sleep(0.5 + (run % 5) * 0.3)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        _, _, acknowledged = results.get()
        loader.join()
        missing = set(acknowledged) - stored_ids(folder)
        lost += len(missing)
        shutil.rmtree(folder)
        print(f"crash {run + 1:>3}: {len(acknowledged):>8,} acknowledged, {len(missing)} missing", flush=True)
    print(f"{runs} kills under load: {lost} acknowledged events missing in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="server processes (waza serve --workers)")
    parser.add_argument("--no-redact", action="store_true", help="run the server with --no-redact")
    parser.add_argument("--loads", default="single,batch,otlp", help="which loads, comma-separated")
    parser.add_argument(
        "--crash", type=int, default=0, help="then kill the server under load this many times"
    )
    args = parser.parse_args()
    throughput(args)
    if args.crash:
        crashes(args.crash, args.connections, args.workers)


if __name__ == "__main__":
    main()
