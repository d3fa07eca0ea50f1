"""Everything at once against one folder, and every acknowledged event counted exactly once.

For a given time, on one telemetry folder (on a small tmpfs, so that it can
fill up):

  - collectors in threads record sessions and close;
  - collectors in forked processes record sessions, flush, and say which
    sessions were flushed; one of them is killed with SIGKILL mid-way;
  - collectors ship with HttpSink to `waza serve` through a proxy on loopback
    that loses every third answer (504 after the server stored the batch);
    the server is killed with SIGKILL and started again;
  - `waza compact` and `waza prune` run in loops (prune deletes an old day);
  - `waza analyze --strict` runs in a loop: no run may fail, none may count
    more sessions than were written;
  - the disk is filled up now and then, and freed again.

Then the folder is analyzed: every session a writer closed, or flushed before
it was killed, is there exactly once with all its tool calls, and nothing
else is. Losses may only be sessions a killed writer had not flushed.

Usage (as root, which mounting a tmpfs needs):  python bench/chaos.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import errno
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from waza.capture.http_sink import HttpSink
from waza.engine.compaction import compact
from waza.store.reader import load_sessions
from waza.store.retention import prune
from waza.telemetry import FolderSink, RuntimeCollector, TelemetryAnalyzer

TOOLS_PER_SESSION = 3


def record(collector: RuntimeCollector, session_id: str) -> None:
    with collector.session(
        "Deploy app-7 to westeurope", session_id=session_id, skill_name="azure-deploy"
    ) as s:
        for tool in range(TOOLS_PER_SESSION):
            with s.tool(f"tool-{tool}", args=["up"]):
                pass


def thread_writer(folder: Path, name: str, stop: threading.Event, closed: list[str]) -> None:
    """Sessions recorded until told to stop; all of them count once the collector is closed."""
    sink = FolderSink(folder, segment_seconds=0.5)
    collector = RuntimeCollector(sink=sink, flush_interval=0.05, redact=False)
    ids = []
    while not stop.is_set():
        ids.append(f"{name}-{len(ids)}")
        record(collector, ids[-1])
        time.sleep(0.002)
    if collector.close():  # True: every session recorded is stored
        closed.extend(ids)
    else:
        closed.append(f"{name}: close() could not store everything")


def forked_writer(
    collector: RuntimeCollector, name: str, seconds: float, report: multiprocessing.Queue
) -> None:
    """In a forked child: sessions, a flush every few, and word of what each flush stored."""
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record(collector, f"{name}-{count}")
        count += 1
        if count % 20 == 0 and collector.flush(10):
            report.put((name, count))  # sessions name-0 .. name-(count - 1) are stored
        time.sleep(0.002)
    if collector.close(10):
        report.put((name, count))


class LosingProxy(BaseHTTPRequestHandler):
    """Forwards to the server; every ``lose_every``-th answer is replaced by a 504 after the server
    stored the request, as a proxy whose wait for the upstream timed out would answer."""

    upstream = ""
    lose_every = 3
    count = 0

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            reply = httpx.post(
                self.upstream + self.path,
                content=body,
                headers={"content-type": self.headers["content-type"]},
                timeout=10,
            )
            status, payload = reply.status_code, reply.content
        except httpx.HTTPError:
            status, payload = 502, b"upstream down"
        type(self).count += 1
        if self.count % self.lose_every == 0:
            status, payload = 504, b"upstream timed out"
        self.send_response(status)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "waza",
        "serve",
        "--dir",
        str(folder),
        "--port",
        str(port),
        "--no-redact",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("waza serve did not start")


def loop(stop: threading.Event, action: Callable[[], None], pause: float, errors: list[str]) -> None:
    while not stop.is_set():
        try:
            action()
        except OSError as error:
            if error.errno != errno.ENOSPC:  # a full disk may stop a compaction, never harm the store
                errors.append(f"{action.__name__}: {error}")
        except Exception as error:  # noqa: BLE001 - every failure is a finding, reported at the end
            errors.append(f"{action.__name__}: {type(error).__name__}: {error}")
        time.sleep(pause)


@contextmanager
def small_disk(size_mb: int):
    with tempfile.TemporaryDirectory() as scratch:
        mount = Path(scratch) / "disk"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)], check=True)
        try:
            yield mount
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def chaos(disk: Path, seconds: float, seed: int = 0) -> dict:
    """Run everything at once for ``seconds``; returns what was expected and what was found."""
    rng = random.Random(seed)
    folder = disk / "telemetry"
    old_day = folder / f"date={(datetime.now(UTC) - timedelta(days=40)).date()}"
    old_day.mkdir(parents=True)
    (old_day / "part-old-1-1-00001.jsonl").write_text(
        '{"timestamp": "2020-01-01T00:00:00+00:00", "event_type": "session.started", "session_id": "old"}\n'
    )
    stop = threading.Event()
    errors: list[str] = []
    closed: list[str] = []
    counts: list[int] = []

    def analyze() -> None:
        # Not --strict: a writer killed mid-line leaves a torn last line, reported, not fatal.
        report = TelemetryAnalyzer().analyze_paths([folder], details=True)
        counts.append(report["total_sessions"])

    def compact_folder() -> None:
        compact(folder)

    def prune_folder() -> None:
        prune(folder, timedelta(days=30))

    def fill_disk() -> None:
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
            except OSError:
                pass
        time.sleep(rng.uniform(0.1, 0.4))  # writers meet ENOSPC meanwhile
        filler.unlink()

    # Forked writers: the collector is made here and used in the children, as with --preload.
    sink = FolderSink(folder, segment_seconds=0.5)
    forked = RuntimeCollector(sink=sink, flush_interval=0.05, redact=False)
    context = multiprocessing.get_context("fork")
    report: multiprocessing.Queue = context.Queue()
    children = [
        context.Process(target=forked_writer, args=(forked, f"fork{n}", seconds, report)) for n in range(3)
    ]
    for child in children:
        child.start()

    port = free_port()
    server = start_server(folder, port)
    LosingProxy.upstream, LosingProxy.lose_every, LosingProxy.count = f"http://127.0.0.1:{port}", 3, 0
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), LosingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    shipped = RuntimeCollector(
        sink=HttpSink(f"http://127.0.0.1:{proxy.server_address[1]}", max_backoff=0.2),
        flush_interval=0.05,
        redact=False,
    )
    shipped_ids: list[str] = []

    def ship() -> None:
        shipped_ids.append(f"http-{len(shipped_ids)}")
        record(shipped, shipped_ids[-1])

    threads = [
        threading.Thread(target=thread_writer, args=(folder, f"thread{n}", stop, closed)) for n in range(2)
    ]
    threads += [
        threading.Thread(target=loop, args=(stop, action, pause, errors))
        for action, pause in (
            (ship, 0.005),
            (analyze, 0.2),
            (compact_folder, 0.3),
            (prune_folder, 0.5),
            (fill_disk, 1.0),
        )
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 3)
    os.kill(children[0].pid, signal.SIGKILL)  # a writer dies mid-way
    time.sleep(seconds / 3)
    server.kill()  # and so does the server, under load
    server.wait()
    server = start_server(folder, port)
    time.sleep(seconds / 3)
    stop.set()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 60
    while not shipped.flush(2):  # the shipped sessions are all stored before the end
        if time.monotonic() > deadline:
            errors.append("the HTTP sink could not deliver everything within 60 s")
            break
    shipped.close()
    flushed: dict[str, int] = {}
    for child in children:
        child.join(60)
    forked.close()
    while not report.empty():
        name, count = report.get()
        flushed[name] = max(count, flushed.get(name, 0))
    server.terminate()
    server.wait(60)
    proxy.shutdown()

    sessions, problems = load_sessions([folder])
    final = TelemetryAnalyzer(strict=False).analyze_paths([folder], details=True)
    found = [s.session_id for s in sessions if s.completed]
    must = (
        set(closed)
        | set(shipped_ids)
        | {f"{name}-{n}" for name, count in flushed.items() for n in range(count)}
    )
    return {
        "errors": errors,
        "problems": [str(p) for p in problems],
        "must": must,
        "found": found,
        "written_bound": len({s.session_id for s in sessions}),
        "possible": must | {sid for sid in found if sid.startswith("fork0-")},  # the killed one's, maybe
        "analysis_counts": counts,
        "final": final,
        "tool_calls": sum(len(s.tool_calls) for s in sessions),
        "proxy_answers": LosingProxy.count,
        "old_day_pruned": not old_day.exists(),
    }


def check(result: dict) -> list[str]:
    """What went wrong, one line each; empty when every acknowledged event counts exactly once."""
    found, must = result["found"], result["must"]
    failures = list(result["errors"])
    doubled = {sid for sid, times in Counter(found).items() if times > 1}
    if doubled:
        failures.append(f"{len(doubled)} sessions counted twice, e.g. {sorted(doubled)[:3]}")
    missing = must - set(found)
    if missing:
        failures.append(f"{len(missing)} acknowledged sessions missing, e.g. {sorted(missing)[:3]}")
    stray = set(found) - result["possible"]
    if stray:
        failures.append(f"{len(stray)} sessions nobody wrote, e.g. {sorted(stray)[:3]}")
    if result["tool_calls"] != TOOLS_PER_SESSION * len(found):
        failures.append(f"{result['tool_calls']} tool calls for {len(found)} sessions")
    final = result["final"]
    if (
        final["completed_sessions"] != len(set(found))
        or final["metrics"]["total_tool_calls"] != result["tool_calls"]
    ):
        failures.append(
            f"waza analyze: {final['completed_sessions']} sessions, "
            f"{final['metrics']['total_tool_calls']} tool calls"
        )
    over = [count for count in result["analysis_counts"] if count > result["written_bound"]]
    if over:
        failures.append(f"an analysis counted {max(over)} sessions, more than were written")
    if not result["old_day_pruned"]:
        failures.append("prune left the old day")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--disk-mb", type=int, default=256)
    args = parser.parse_args()
    started = time.monotonic()
    with small_disk(args.disk_mb) as disk:
        result = chaos(disk, args.seconds)
    failures = check(result)
    print(
        f"{len(result['found']):,} sessions found, {len(result['must']):,} acknowledged, "
        f"{len(result['analysis_counts'])} analyses during the run, {result['proxy_answers']} proxy answers, "
        f"{time.monotonic() - started:.0f} s"
    )
    for failure in failures:
        print("FAILED:", failure)
    print("every acknowledged event counted exactly once" if not failures else f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
