"""`waza export`: sessions as GenAI traces to a running `waza serve`, and as Parquet tables."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import rounded
from tests.interchange.test_import import waza
from tests.serve.test_server import server
from waza.sample import write_sample
from waza.store.reader import load_sessions

SAME = ("total_sessions", "completed_sessions", "skills", "metrics", "skill_breakdown", "llm")


def figures(folder: Path) -> dict:
    done = waza("analyze", str(folder), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    tools = {row["tool"]: (row["calls"], row["completed"], row["failure_rate"]) for row in report["tools"]}
    return rounded({key: report[key] for key in SAME} | {"tools": tools})


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_sessions_exported_to_waza_serve_come_back_the_same(tmp_path: Path, protocol: str) -> None:
    source = tmp_path / "source"
    write_sample(source, 120, seed=4)
    with server(tmp_path / "served") as (url, _):
        sent = waza("export", str(source), "--otlp-endpoint", url, "--protocol", protocol)
        assert sent.returncode == 0, sent.stderr
        assert "Sent 120 session(s)" in sent.stdout
    assert figures(tmp_path / "served") == figures(source)
    # Session ids that are 32 hex digits are the traces' ids, so the sessions keep them.
    assert {s.session_id for s in load_sessions([tmp_path / "served"])[0]} == {
        s.session_id for s in load_sessions([source])[0]
    }


def test_a_backend_that_refuses_or_is_away_is_said_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "source"
    write_sample(source, 3, seed=1)
    token = tmp_path / "token"
    token.write_text("s3cret")
    token.chmod(0o600)
    with server(tmp_path / "served", "--token-file", str(token)) as (url, _):
        refused = waza("export", str(source), "--otlp-endpoint", url)
        assert refused.returncode == 1 and "refused the spans (HTTP 401" in refused.stderr
        assert "Traceback" not in refused.stderr
        allowed = waza(
            "export", str(source), "--otlp-endpoint", url, "--header", "Authorization=Bearer s3cret"
        )
        assert allowed.returncode == 0, allowed.stderr
    usage = waza("export", str(source))
    assert usage.returncode == 2 and "--otlp-endpoint" in usage.stderr


def test_parquet_tables_hold_every_session_and_event(tmp_path: Path) -> None:
    source = tmp_path / "source"
    summary = write_sample(source, 80, seed=9)
    done = waza("export", str(source), "--format", "parquet", "-o", str(tmp_path / "tables"))
    assert done.returncode == 0, done.stderr
    sessions = load_sessions([source])[0]
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE success), sum(tool_calls) FROM read_parquet(?)",
            [str(tmp_path / "tables" / "sessions.parquet")],
        ).fetchone()
        (events,) = con.execute(
            "SELECT count(*) FROM read_parquet(?)", [str(tmp_path / "tables" / "events.parquet")]
        ).fetchone()
    completed = [s for s in sessions if s.completed]
    assert rows == (80, sum(s.success for s in completed), sum(len(s.tool_calls) for s in sessions))
    assert events == summary.events


def test_a_busy_backend_gets_the_same_request_again_after_its_retry_after(tmp_path: Path) -> None:
    """503 with Retry-After, then a dropped connection, then success: every span arrives, and the
    request sent again is the same request."""
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from waza.interchange.otlp_sender import OtlpSender

    bodies: list[bytes] = []

    class Backend(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            bodies.append(gzip.decompress(self.rfile.read(int(self.headers["content-length"]))))
            if len(bodies) == 1:
                self.send_response(503)
                self.send_header("retry-after", "0")
                self.send_header("content-length", "0")
                self.end_headers()
            elif len(bodies) == 2:
                self.close_connection = True  # hang up without an answer
            else:
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    write_sample(tmp_path / "source", 5, seed=3)
    waits: list[float] = []
    try:
        sender = OtlpSender(f"http://127.0.0.1:{backend.server_port}/v1/traces", sleep=waits.append)
        result = sender.send(load_sessions([tmp_path / "source"])[0])
    finally:
        backend.shutdown()
    assert (result.requests, result.retries, result.sessions) == (3, 2, 5)
    assert bodies[0] == bodies[1] == bodies[2]
    spans = ExportTraceServiceRequest.FromString(bodies[2]).resource_spans[0].scope_spans[0].spans
    assert len({span.trace_id for span in spans}) == 5 and len(spans) == result.spans
    assert waits == [0.0, 1.0]  # Retry-After's 0 s, then the backoff doubled from 0.5 s
