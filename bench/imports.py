"""How fast `waza import` reads JSON-lines logs and OTLP files, next to its yardstick, in one process.

Inputs, generated once into bench/.cache from the sample sessions:

  log    a JSON-lines log in a made-up schema (dotted keys, epoch milliseconds),
         read through --map
  otlp   OTLP JSON trace exports, one request of about 512 spans per line, as the
         Collector's file exporter writes them

Side by side for each: `import_paths` with one process per core (what `waza
import` runs) and with one process, and the yardstick: reading the same lines
and parsing each with the standard library's json.loads, which any importer
written in Python pays at least. Each line gives the best wall time of the
rounds, lines (log) or spans (otlp) per second, the highest peak RSS of this
process and its children, and the ratio to the yardstick's time. Usage:

  python bench/imports.py [--lines 2000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.analyze import CACHE, SEED, measure  # noqa: E402
from waza.interchange.fields import FieldMap  # noqa: E402
from waza.interchange.importer import import_paths  # noqa: E402
from waza.model import TelemetryEvent, fold_session  # noqa: E402
from waza.otel.otlp import to_json  # noqa: E402
from waza.otel.traces import export_request  # noqa: E402
from waza.sample import sample_sessions  # noqa: E402

MAPPING = "event_type=evt.name,timestamp=when,session_id=ctx.sid,skill_name=skill,data=payload"
SPANS_PER_LINE = 512


def log_file(lines: int) -> Path:
    path = CACHE / f"import-log-{lines}.jsonl"
    if not path.exists():
        print(f"  writing a log of {lines:,} lines ...", file=sys.stderr, flush=True)
        written = 0
        with open(f"{path}.tmp", "w", encoding="utf-8") as out:
            for events in sample_sessions(lines, seed=SEED):
                for event in events:
                    at = datetime.fromisoformat(event["timestamp"])
                    record = {
                        "when": int(at.timestamp() * 1000),
                        "evt": {"name": event["event_type"]},
                        "ctx": {"sid": event["session_id"], "host": "worker-3"},
                        "skill": event["skill_name"],
                        "payload": event["data"],
                    }
                    out.write(json.dumps(record) + "\n")
                    written += 1
                if written >= lines:
                    break
        Path(f"{path}.tmp").rename(path)
    return path


def otlp_file(spans: int) -> Path:
    path = CACHE / f"import-otlp-{spans}.jsonl"
    if not path.exists():
        print(f"  writing OTLP exports of {spans:,} spans ...", file=sys.stderr, flush=True)
        written, batch = 0, []
        with open(f"{path}.tmp", "wb") as out:
            for events in sample_sessions(spans, seed=SEED):
                session = fold_session(events[0]["session_id"], [TelemetryEvent.from_dict(e) for e in events])
                request = export_request([session], {"service.name": "agents"})
                batch += request.resource_spans[0].scope_spans[0].spans
                if len(batch) >= SPANS_PER_LINE or written + len(batch) >= spans:
                    line = export_request([], {"service.name": "agents"})
                    line.resource_spans[0].scope_spans[0].spans.extend(batch)
                    out.write(to_json(line) + b"\n")
                    written += len(batch)
                    batch = []
                if written >= spans:
                    break
        Path(f"{path}.tmp").rename(path)
    return path


def spans_in(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(
            len(scope["spans"])
            for line in stream
            for resource in json.loads(line)["resourceSpans"]
            for scope in resource["scopeSpans"]
        )


def json_loads_only(path: Path) -> int:
    """The yardstick: every line read and parsed by the standard library, nothing else."""
    parsed = 0
    with open(path, "rb") as stream:
        for line in stream:
            json.loads(line)
            parsed += 1
    return parsed


def run_import(path: Path, fields: FieldMap | None, workers: int) -> int:
    target = Path(tempfile.mkdtemp(prefix="waza-import-bench-"))
    try:
        result = import_paths([path], target, fields=fields, workers=workers)
        assert result.events and not result.skipped, result.problems[:3]
        return result.events
    finally:
        shutil.rmtree(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000, help="log lines, and OTLP spans")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    inputs = {
        "log": (log_file(args.lines), FieldMap.parse(MAPPING), args.lines),
        "otlp": (otlp := otlp_file(args.lines), None, spans_in(otlp)),
    }
    header = f"{'input':<6} {'reader':<22} {'wall s':>8} {'per second':>12} {'peak RSS':>10} {'vs json':>8}"
    print(header)
    print("-" * len(header))
    for name, (path, fields, count) in inputs.items():
        runs = {
            "json.loads only": lambda p=path: json_loads_only(p),
            "waza import, 2 procs": lambda p=path, f=fields: run_import(p, f, 2),
            "waza import, 1 proc": lambda p=path, f=fields: run_import(p, f, 1),
        }
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.rounds):
            for label, action in runs.items():
                wall, peak, _ = measure(action, children=True)
                old = best.get(label)
                best[label] = (min(wall, old[0]), max(peak, old[1])) if old else (wall, peak)
        base = best["json.loads only"][0]
        for label, (wall, peak) in best.items():
            print(
                f"{name:<6} {label:<22} {wall:>8.2f} {count / wall:>12,.0f} "
                f"{peak / 2**20:>8,.0f}MB {wall / base:>7.2f}x",
                flush=True,
            )
    print("'per second' counts log lines, or OTLP spans; 'vs json' is the wall time over the yardstick's.")


if __name__ == "__main__":
    main()
