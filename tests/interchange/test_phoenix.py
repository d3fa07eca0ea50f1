"""`waza export` to Arize Phoenix, a real third-party OTLP backend, started on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.interchange.test_import import waza
from tests.serve.test_server import free_port
from waza.sample import sample_sessions, write_sample

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "python"
APP = Path(__file__).with_name("phoenix_app.py")
SEED, SESSIONS = 21, 4


@contextmanager
def phoenix(working_dir: Path) -> Iterator[str]:
    """Phoenix with its default local storage (SQLite) in ``working_dir``, HTTP on 127.0.0.1 only."""
    assert PHOENIX.exists(), "scripts/ensure-phoenix installs Phoenix (make test runs it)"
    working_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(working_dir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_WORKING_DIR": str(working_dir),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(working_dir / "phoenix.log", "wb")  # closed below
    process = subprocess.Popen([PHOENIX, APP, "serve"], env=environment, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                working_dir / "phoenix.log"
            ).read_text()
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def stored_spans(url: str, expected: int) -> list[dict]:
    """Phoenix's client's answer once it holds ``expected`` spans (it stores them in the background)."""
    deadline = time.monotonic() + 300
    while True:
        read = subprocess.run([PHOENIX, APP, "spans", url], capture_output=True, text=True, timeout=120)
        assert read.returncode == 0, read.stderr
        spans = json.loads(read.stdout)
        if len(spans) >= expected or time.monotonic() > deadline:
            return spans
        time.sleep(1)


def test_phoenix_reads_back_one_trace_per_session_with_tools_llm_calls_and_tokens(tmp_path: Path) -> None:
    write_sample(tmp_path / "source", SESSIONS, seed=SEED)
    sessions = list(sample_sessions(SESSIONS, seed=SEED))  # the same sessions, as the generator made them
    tools = {s[0]["session_id"]: sum(e["event_type"] == "tool.called" for e in s) for s in sessions}
    calls = {
        s[0]["session_id"]: [e["data"]["tokens"] for e in s if e["event_type"] == "llm.request"]
        for s in sessions
    }
    loads = sum(e["event_type"] == "skill.invoked" for s in sessions for e in s)
    expected = len(sessions) + sum(tools.values()) + sum(len(c) for c in calls.values()) + loads

    with phoenix(tmp_path / "phoenix") as url:
        sent = waza("export", str(tmp_path / "source"), "--otlp-endpoint", url)
        assert sent.returncode == 0, sent.stderr
        spans = stored_spans(url, expected)

    assert len(spans) == expected
    by_trace: dict[str, list[dict]] = {}
    for span in spans:
        by_trace.setdefault(span["context"]["trace_id"], []).append(span)
    assert set(by_trace) == set(tools)  # one trace per session, its id the session's
    for trace_id, trace in by_trace.items():
        kinds = Counter(span["span_kind"] for span in trace)
        (root,) = [span for span in trace if span["parent_id"] is None]
        assert root["name"].startswith("invoke_agent ")
        assert kinds["TOOL"] == tools[trace_id] and kinds["LLM"] == len(calls[trace_id])
        llm = [span["attributes"] for span in trace if span["span_kind"] == "LLM"]
        assert sorted(a["gen_ai.usage.input_tokens"] for a in llm) == sorted(
            t["input"] for t in calls[trace_id]
        )
        assert sum(a["llm.token_count.completion"] for a in llm) == sum(t["output"] for t in calls[trace_id])
    ended = {s[0]["session_id"]: s[-1]["data"] for s in sessions if s[-1]["event_type"] == "session.ended"}
    failed = {t for t, data in ended.items() if data["success"] is False}
    roots = {span["context"]["trace_id"]: span for span in spans if span["parent_id"] is None}
    assert {t for t, root in roots.items() if root["status_code"] == "ERROR"} == failed
