"""`waza import`: logs of a made-up schema, the OpenTelemetry SDK's OTLP JSON, earlier waza exports."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.json.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tests.conftest import expected_metrics, rounded
from waza.store.reader import load_sessions

MAPPING = "event_type=evt.name,timestamp=when,session_id=ctx.conversation,skill_name=skill,data=payload"


def waza(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "waza", *args], capture_output=True, text=True, timeout=300)


def report_of(folder: Path) -> dict[str, Any]:
    done = waza("analyze", str(folder), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    report.pop("input")  # names the files read, which differ between imports
    report.pop("storage")  # the bytes stored: a file imported twice is stored twice, and counted once
    report.pop("generated_at", None)
    return report


def in_made_up_schema(sessions: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each event as a log of another shape writes it: dotted keys, epoch milliseconds."""
    lines = []
    for events in sessions:
        for event in events:
            at = datetime.fromisoformat(event["timestamp"])
            lines.append({
                "when": int(at.timestamp() * 1000) if at.microsecond % 1000 == 0 else at.timestamp() * 1000,
                "evt": {"name": event["event_type"]},
                "ctx": {"conversation": event["session_id"], "host": "worker-3"},
                "skill": event["skill_name"],
                "payload": event["data"],
            })  # fmt: skip
    return lines


def to_millisecond(sessions: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The sample with its times cut to whole milliseconds, as epoch-millisecond logs keep them."""

    def cut(event: dict[str, Any]) -> dict[str, Any]:
        at = datetime.fromisoformat(event["timestamp"])
        return event | {"timestamp": at.replace(microsecond=at.microsecond // 1000 * 1000).isoformat()}

    return [[cut(event) for event in events] for events in sessions]


def test_a_log_of_a_made_up_schema_imports_with_map(tmp_path: Path, sample_raw) -> None:
    """Dotted keys, epoch milliseconds, lines out of order and a few bad ones; imported twice."""
    sessions = to_millisecond(sample_raw[:150])
    lines = [json.dumps(line) for line in in_made_up_schema(sessions)]
    random.Random(5).shuffle(lines)
    bad = {
        3: "{not json",
        40: json.dumps({"when": "soon", "evt": {"name": "x"}, "ctx": {"conversation": "a"}}),
        77: json.dumps({"when": 1795000000000, "evt": {"name": "x"}, "ctx": {}}),
    }
    for number in sorted(bad):
        lines.insert(number - 1, bad[number])
    log = tmp_path / "app.log"
    log.write_text("\n".join(lines) + "\n")

    first = waza("import", str(log), "-o", str(tmp_path / "once"), "--map", MAPPING)
    assert first.returncode == 0, first.stderr
    for number in bad:
        assert f"app.log:{number}: " in first.stderr
    assert "Skipped 3 place(s)" in first.stderr
    imported = sum(len(events) for events in sessions)
    assert f"Imported {imported:,} event(s)" in first.stdout

    report = report_of(tmp_path / "once")
    expected = expected_metrics(sessions)
    assert report["total_sessions"] == expected["total_sessions"] == 150
    assert report["metrics"]["success_rate"] == expected["success_rate"]
    assert report["metrics"]["avg_duration_ms"] == expected["avg_duration_ms"]
    assert report["metrics"]["total_tool_calls"] == expected["total_tool_calls"]
    assert report["skills"] == expected["skills"]

    # The same file twice into one folder, and again with the lines in another order.
    twice = tmp_path / "twice"
    assert waza("import", str(log), "-o", str(twice), "--map", MAPPING).returncode == 0
    assert waza("import", str(log), "-o", str(twice), "--map", MAPPING).returncode == 0
    assert rounded(report_of(twice)) == rounded(report)


def test_lines_without_a_session_id_are_grouped_by_the_session_key_or_reported(tmp_path: Path) -> None:
    r1, r2 = {"request": {"id": "r1"}}, {"request": {"id": "r2"}}
    records = [
        {"time": "2026-11-20T10:00:00", "type": "session.started", **r1},
        {"time": "2026-11-20T10:00:01.500", "type": "tool.called", "tool": "az", **r1},
        {"time": "2026-11-20T12:00:02+02:00", "type": "session.ended", "success": True, **r1},
        {"time": "2026-11-20T10:00:05Z", "type": "session.started", **r2},
    ]
    log = tmp_path / "requests.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    grouped = waza(
        "import", str(log), "-o", str(tmp_path / "a"), "--map", "event_type=type,timestamp=time",
        "--session-key", "request.id",
    )  # fmt: skip
    assert grouped.returncode == 0, grouped.stderr
    report = report_of(tmp_path / "a")
    assert (report["total_sessions"], report["completed_sessions"]) == (2, 1)
    # No zone is UTC; 12:00:02+02:00 is 10:00:02 UTC: the session lasted 2 s.
    assert report["metrics"]["avg_duration_ms"] == 2000 and report["metrics"]["total_tool_calls"] == 1

    alone = waza("import", str(log), "-o", str(tmp_path / "b"), "--map", "event_type=type,timestamp=time")
    assert alone.returncode == 1 and "nothing imported" in alone.stderr
    assert "requests.jsonl:1: no session id" in alone.stderr and "--session-key" in alone.stderr

    usage = waza("import", str(log), "-o", str(tmp_path / "c"), "--map", "when=time")
    assert usage.returncode == 2 and "'when' is not one of" in usage.stderr


PLAN = [  # per session: agent, prompt, tools called (name, failed), input and output tokens, whether it fails
    ("azure-deploy", "Deploy my app", [("az", False), ("git", True)], (1200, 80), False),
    ("azure-deploy", "Deploy it again", [("az", False)], (900, 40), True),
    ("azure-cost", "What did it cost?", [("kql", False), ("kql", False), ("az", False)], (300, 25), False),
]


def sdk_export_lines() -> list[str]:
    """The plan's sessions traced by the OpenTelemetry SDK, each prompt logged as a GenAI content
    event, encoded by the SDK's OTLP JSON encoders one export per line, as the Collector's file
    exporter writes them (traces in two requests, as a batching exporter sends them; then logs)."""
    spans, records = InMemorySpanExporter(), InMemoryLogRecordExporter()
    resource = Resource.create({"service.name": "agents"})
    tracer_provider, logger_provider = TracerProvider(resource=resource), LoggerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(records))
    tracer, logger = tracer_provider.get_tracer("agent-runtime"), logger_provider.get_logger("agent-runtime")
    for agent, asked, tools, (tokens_in, tokens_out), fails in PLAN:
        root_attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
        with tracer.start_as_current_span(f"invoke_agent {agent}", attributes=root_attributes) as root:
            logger.emit(LogRecord(body={"content": asked}, event_name="gen_ai.user.message"))
            chat = {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4.1",
                "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out,
            }
            with tracer.start_as_current_span("chat gpt-4.1", attributes=chat):
                pass
            for tool, failed in tools:
                called = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
                with tracer.start_as_current_span(f"execute_tool {tool}", attributes=called) as span:
                    if failed:
                        span.set_status(Status(StatusCode.ERROR, "exit 1"))
            if fails:
                root.record_exception(RuntimeError("quota exceeded"))
                root.set_status(Status(StatusCode.ERROR, "quota exceeded"))
    finished = spans.get_finished_spans()
    half = len(finished) // 2
    lines = [encode_spans(batch).to_json() for batch in (finished[:half], finished[half:])]
    lines.append(encode_logs(records.get_finished_logs()).to_json())
    return [line.replace("\n", "") for line in lines]


def test_the_sdk_otlp_json_file_imports_to_the_sessions_it_traces(tmp_path: Path) -> None:
    traces = sdk_export_lines()
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(traces) + "\n").encode()))
    done = waza("import", str(path), "-o", str(tmp_path / "t"))
    assert done.returncode == 0, done.stderr

    report = report_of(tmp_path / "t")
    assert report["total_sessions"] == len(PLAN) and report["completed_sessions"] == len(PLAN)
    failures = sum(fails for *_, fails in PLAN)
    assert report["metrics"]["success_rate"] == (len(PLAN) - failures) / len(PLAN)
    calls = [tool for _, _, tools, _, _ in PLAN for tool in tools]
    assert report["metrics"]["total_tool_calls"] == len(calls)
    per_tool = {
        row["tool"]: (row["calls"], round(row["failure_rate"] * row["completed"])) for row in report["tools"]
    }
    assert per_tool == {
        name: (sum(t == name for t, _ in calls), sum(t == name and f for t, f in calls)) for name, _ in calls
    }
    (model,) = report["llm"]
    assert model["model"] == "gpt-4.1" and model["requests"] == len(PLAN)
    assert model["input_tokens"] == sum(tokens[0] for *_, tokens, _ in PLAN)
    assert model["output_tokens"] == sum(tokens[1] for *_, tokens, _ in PLAN)
    assert report["skills"] == sorted({agent for agent, *_ in PLAN})
    # The exception the failing session recorded, and the failed tool's status (no type given).
    errors = {(row["error_type"], row["example"]): row["count"] for row in report["errors"]}
    assert errors == {("RuntimeError", "quota exceeded"): failures, ("error", "exit 1"): 1}

    prompts = sorted(session.prompt for session in load_sessions([tmp_path / "t"])[0])
    assert prompts == sorted(asked for _, asked, *_ in PLAN)

    again = waza("import", str(path), "-o", str(tmp_path / "t"))
    assert again.returncode == 0 and report_of(tmp_path / "t") == report


def test_a_large_log_is_imported_in_pieces_by_several_processes_with_its_line_numbers(
    tmp_path: Path, sample_raw, monkeypatch
) -> None:
    """Pieces cut at line ends, read by two processes: every line once, bad lines where they are."""
    from waza.interchange import importer
    from waza.interchange.fields import FieldMap

    sessions = to_millisecond(sample_raw[:80])
    lines = [json.dumps(line) for line in in_made_up_schema(sessions)]
    bad = [5, 333, len(lines) // 2, len(lines)]
    for number in bad:
        lines.insert(number - 1, "{cut short")
    log = tmp_path / "big.log"
    log.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(importer, "PIECE_BYTES", 8192)
    fields = FieldMap.parse(MAPPING)
    result = importer.import_paths([log], tmp_path / "pieces", fields=fields, workers=2)

    assert len(importer._pieces(importer._resolve(log, importer.SourceFormat.AUTO, fields))) > 20
    assert result.events == sum(len(events) for events in sessions)
    assert sorted(p.line for p in result.problems) == bad
    segments = {p.name.split("-")[2] for p in (tmp_path / "pieces").rglob("part-*")}
    assert len(segments) == 2  # written by two processes, each to segments of its own
    report = report_of(tmp_path / "pieces")
    assert report["total_sessions"] == 80
    assert report["metrics"]["total_tool_calls"] == expected_metrics(sessions)["total_tool_calls"]


def test_an_otlp_file_whose_lines_are_longer_than_the_peek_is_told_by_its_first_key(tmp_path: Path) -> None:
    """The Collector writes one request per line; with 512 spans a line is far past 64 KiB."""
    line = sdk_export_lines()[0]
    (tmp_path / "short.jsonl").write_text(line + "\n")
    padded = json.loads(line)
    padding = {"key": "padding", "value": {"stringValue": "x" * 70_000}}
    padded["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(padding)
    (tmp_path / "long.jsonl").write_text(json.dumps(padded) + "\n")
    short = waza("import", str(tmp_path / "short.jsonl"), "-o", str(tmp_path / "a"))
    long = waza("import", str(tmp_path / "long.jsonl"), "-o", str(tmp_path / "b"))
    assert short.returncode == long.returncode == 0, long.stderr
    assert short.stdout.split(" event(s)")[0] == long.stdout.split(" event(s)")[0] != "Imported 0"


def test_an_earlier_versions_export_imports_to_its_own_numbers(tmp_path: Path) -> None:
    """Imported twice, an export of version 0.1 gives the report of the export read in place."""
    from tests.analysis.test_exports import earlier_export

    earlier_export(tmp_path / "sessions-2026-10.json", 200, seed=8)
    for _ in range(2):
        done = waza("import", str(tmp_path / "sessions-2026-10.json"), "-o", str(tmp_path / "t"))
        assert done.returncode == 0, done.stderr
    assert rounded(report_of(tmp_path / "t")) == rounded(report_of(tmp_path / "sessions-2026-10.json"))


def test_a_line_with_a_value_past_the_line_limit_is_cut_to_size_not_lost(tmp_path: Path) -> None:
    from tests.conftest import read_log
    from waza.store.codec import MAX_LINE_BYTES

    record = {"ts": 1795000000, "type": "tool.completed", "sid": "s1", "output": "y" * (2 * MAX_LINE_BYTES)}
    (tmp_path / "big.jsonl").write_text(json.dumps(record) + "\n")
    # Redaction cuts long strings itself; without it, the line limit does.
    done = waza("import", str(tmp_path / "big.jsonl"), "-o", str(tmp_path / "t"), "--no-redact",
                "--map", "event_type=type,timestamp=ts,session_id=sid")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (stored,) = read_log(tmp_path / "t")
    assert stored["data"]["_truncated_bytes"] > 2 * MAX_LINE_BYTES and stored["session_id"] == "s1"
    assert len(json.dumps(stored)) <= MAX_LINE_BYTES


@given(
    micros=st.integers(min_value=946_684_800 * 10**6, max_value=1_893_456_000 * 10**6),
    unit=st.sampled_from([1, 10**3, 10**6, 10**9]),
    offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_times_in_every_unit_and_zone_read_as_the_standard_library_reads_them(
    micros: int, unit: int, offset: int
) -> None:
    """An epoch number in seconds to nanoseconds, and ISO text with or without a zone, give the
    UTC time and day ``datetime`` gives; times outside 2000..now are refused."""
    from waza.interchange.fields import FieldError, Stamps

    stamps = Stamps(datetime(2030, 1, 1, tzinfo=UTC))
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    number = micros * unit // 10**6  # seconds and milliseconds cut what they cannot hold
    kept = {1: at.replace(microsecond=0), 10**3: at.replace(microsecond=at.microsecond // 1000 * 1000)}
    expected = kept.get(unit, at)
    assert stamps(number) == (expected.date(), expected.isoformat())
    zoned = at.astimezone(timezone(timedelta(minutes=offset)))
    assert stamps(zoned.isoformat()) == (at.date(), at.isoformat())
    assert stamps(at.replace(tzinfo=None).isoformat()) == (at.date(), at.isoformat())
    for refused in (at - timedelta(days=366 * 31), datetime(2030, 1, 2, tzinfo=UTC)):
        with pytest.raises(FieldError, match="before 2000 or in the future"):
            stamps(refused.isoformat())
