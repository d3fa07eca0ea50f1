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
