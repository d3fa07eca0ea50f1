"""What recording an event costs the skill, next to an OpenTelemetry span, in one process.

For each way of capturing, N events are recorded in sessions of 20 from one
thread, and the run ends when everything is written (close). The ways run in
three interleaved rounds; each line is the way's best round. Columns:

  caller us       wall time per event on the recording thread
  caller cpu us   CPU time of the recording thread per event
  total cpu us    CPU time of the whole process per event, background writer included
  vs memory       caller us over the in-memory collector's
  otel/this       OpenTelemetry span's caller us over this one's (how many times cheaper)

Before the runs, the import time of waza.telemetry and of the OpenTelemetry
SDK's tracer, each the best of five fresh interpreters.

A second mode, --sustained SECONDS, records back to back from one thread
into a folder with default settings and prints, each second, what was
recorded, what was dropped, the bytes on disk and the RSS.

Usage:  python bench/capture.py [--events 200000]
        python bench/capture.py --sustained 60
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from waza.telemetry import RuntimeCollector

PER_SESSION = 20


def payload(n: int) -> dict:
    return {"tool": "az", "args": ["webapp", "create", "--name", f"app-{n % 1000}"], "n": n}


def run_collector(*, folder: bool = False, **options) -> Callable[[int], None]:
    def run(events: int) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            collector = RuntimeCollector(scratch if folder else None, **options)
            for start in range(0, events, PER_SESSION):
                sid = collector.start_session("Deploy app to Azure", {"user_id": "u1"})
                for n in range(start, start + PER_SESSION - 2):
                    collector.record_event(sid, "tool.called", payload(n))
                collector.end_session(sid, "done", True)
            run.caller_done = (time.perf_counter(), time.thread_time())
            collector.close()

    return run


class _NoopExporter(SpanExporter):
    def export(self, spans) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def run_otel() -> Callable[[int], None]:
    def run(events: int) -> None:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_NoopExporter()))
        tracer = provider.get_tracer("bench")
        for start in range(0, events, PER_SESSION):
            with tracer.start_as_current_span("invoke_agent", attributes={"user_id": "u1"}):
                for n in range(start, start + PER_SESSION - 2):
                    with tracer.start_as_current_span("tool.called") as span:
                        for key, value in payload(n).items():
                            span.set_attribute(key, value)
        run.caller_done = (time.perf_counter(), time.thread_time())
        provider.shutdown()

    return run


def measure(run: Callable[[int], None], events: int) -> tuple[float, float, float]:
    wall0, thread0, process0 = time.perf_counter(), time.thread_time(), time.process_time()
    run(events)
    wall1, thread1 = run.caller_done
    process1 = time.process_time()
    per = 1e6 / events
    return (wall1 - wall0) * per, (thread1 - thread0) * per, (process1 - process0) * per


def sustained(seconds: float) -> None:
    """One thread recording back to back into a folder with default settings, for ``seconds``: what
    reaches the disk each second, what is counted as dropped, and how large the process grows."""
    print(f"sustained load: one thread recording back to back for {seconds:.0f} s, default settings")
    print(f"{'second':>6} {'recorded':>11} {'dropped':>10} {'on disk MB':>11} {'RSS MB':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        collector = RuntimeCollector(scratch)
        started = time.monotonic()
        next_report, recorded = 1.0, 0
        peak = 0
        while (elapsed := time.monotonic() - started) < seconds:
            sid = collector.start_session("Deploy app to Azure", {"user_id": "u1"})
            for n in range(PER_SESSION - 2):
                collector.record_event(sid, "tool.called", payload(n))
            collector.end_session(sid, "done", True)
            recorded += PER_SESSION
            if elapsed >= next_report:
                rss = _rss_mb()
                peak = max(peak, rss)
                size = sum(p.stat().st_size for p in Path(scratch).rglob("*") if p.is_file()) / 2**20
                dropped = sum(collector.dropped.values())
                print(f"{next_report:>6.0f} {recorded:>11,} {dropped:>10,} {size:>11.1f} {rss:>8.0f}")
                next_report += 1.0
        collector.close()
    print(f"peak RSS {peak:.0f} MB")


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def import_ms(module: str, tries: int = 5) -> float:
    """Milliseconds to import ``module`` in a fresh interpreter, the best of ``tries``."""
    script = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    command = [sys.executable, "-c", script]
    runs = (subprocess.run(command, capture_output=True, text=True, check=True).stdout for _ in range(tries))
    return 1000 * min(float(seconds) for seconds in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--sustained", type=float, metavar="SECONDS", help="the sustained-load run alone")
    args = parser.parse_args()
    if args.sustained:
        sustained(args.sustained)
        return
    waza_ms, otel_ms = import_ms("waza.telemetry"), import_ms("opentelemetry.sdk.trace")
    print(f"import: waza.telemetry {waza_ms:.0f} ms, opentelemetry.sdk.trace {otel_ms:.0f} ms")
    events = args.events
    runs = {
        "memory": run_collector(),
        # A burst far faster than any skill records: a long flush interval lets the
        # writer queue all of it, so that every event is written and its cost counted.
        "folder": run_collector(folder=True, redact=False, flush_interval=60),
        "folder+redact": run_collector(folder=True, flush_interval=60),
        "sampled-out": run_collector(folder=True, sample_rate=0.0, keep_errors=False),
        "otel-span": run_otel(),
    }
    for run in runs.values():  # warm up imports, regex caches and allocators
        measure(run, min(events, 20_000))
    # Rounds interleave the ways, so a noisy moment hits them alike; each keeps its best round.
    rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for _ in range(3):
        for name, run in runs.items():
            rounds[name].append(measure(run, events))
    results = {name: min(measured) for name, measured in rounds.items()}
    memory, otel = results["memory"][0], results["otel-span"][0]
    print(f"python {sys.version.split()[0]}, {events:,} events per run (sessions of {PER_SESSION})")
    columns = [("capture", 14), ("caller us", 10), ("caller cpu us", 14), ("total cpu us", 13)]
    columns += [("vs memory", 10), ("otel/this", 10)]
    header = " ".join(
        f"{name:<{width}}" if i == 0 else f"{name:>{width}}" for i, (name, width) in enumerate(columns)
    )
    print(header)
    print("-" * len(header))
    for name, (wall, thread, process) in results.items():
        print(
            f"{name:<14} {wall:>10.2f} {thread:>14.2f} {process:>13.2f} "
            f"{wall / memory:>9.2f}x {otel / wall:>9.1f}x"
        )
    redaction = results["folder+redact"][2] - results["folder"][2]
    print(f"\nredaction adds {redaction:.2f} us of CPU per event (on the writer thread).")


if __name__ == "__main__":
    main()
