"""`waza serve` as a real server on loopback: routes, auth, limits, bad input, and crashes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import fill, read_log
from waza.telemetry import TelemetryAnalyzer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(
    folder: Path, *args: str, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`waza serve` in a process of its own, ready to answer."""
    port = port or free_port()
    command = [sys.executable, "-m", "waza", "serve", "--dir", str(folder), "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
        time.sleep(0.05)
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_session_over_http_is_analysed(tmp_path: Path) -> None:
    with server(tmp_path / "t") as (url, _):
        started = httpx.post(f"{url}/telemetry/session/start", json={
            "prompt": "Deploy app-1 for jane@example.com", "metadata": {"user_id": "u1"},
            "skill_name": "azure-deploy"}).json()  # fmt: skip
        sid = started["session_id"]
        for tool in ("az", "git"):
            reply = httpx.post(f"{url}/telemetry/session/{sid}/event", json={"event_type": "tool.called",
                               "data": {"tool": tool}, "skill_name": "azure-deploy"})  # fmt: skip
            assert reply.json() == {"ok": True}
        httpx.post(f"{url}/telemetry/session/{sid}/end", json={"output": "done", "success": True})
    report = TelemetryAnalyzer().analyze_file(tmp_path / "t")
    assert report["total_sessions"] == 1 and report["metrics"]["total_tool_calls"] == 2
    assert report["skills"] == ["azure-deploy"] and report["metrics"]["success_rate"] == 1.0
    text = "".join(p.read_text() for p in (tmp_path / "t").rglob("*.jsonl*") if p.suffix == ".jsonl")
    assert "jane@example.com" not in text and "<EMAIL>" in text


def test_a_token_is_required_when_configured(tmp_path: Path) -> None:
    """Writes need the token; a token file others may read is warned about; no worker's
    environment holds the token."""
    (tmp_path / "token").write_text("s3cret-token\n")
    (tmp_path / "token").chmod(0o644)
    with server(tmp_path / "t", "--token-file", str(tmp_path / "token"), "--workers", "2") as (url, process):
        pids = [process.pid, *(int(p) for p in Path(f"/proc/{process.pid}/task").glob("*/children")
                               for p in p.read_text().split())]  # fmt: skip
        assert len(pids) >= 3  # the server and its two workers (and multiprocessing's helper)
        for pid in pids:
            assert b"s3cret-token" not in Path(f"/proc/{pid}/environ").read_bytes()
        body = {"prompt": "x"}
        assert httpx.post(f"{url}/telemetry/session/start", json=body).status_code == 401
        wrong = {"Authorization": "Bearer s3cret-tokeN"}
        assert httpx.post(f"{url}/telemetry/session/start", json=body, headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret-token"}
        assert httpx.post(f"{url}/telemetry/session/start", json=body, headers=right).status_code == 200
        process.terminate()  # the workers stop with the server, and its stderr ends
        assert "others may read" in process.communicate(timeout=60)[1].decode()
    assert len(read_log(tmp_path / "t")) == 1


def test_the_html_report_of_the_folder_is_behind_the_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret-token\n")
    (tmp_path / "token").chmod(0o600)
    right = {"Authorization": "Bearer s3cret-token"}
    with server(tmp_path / "t", "--token-file", str(tmp_path / "token")) as (url, _):
        assert httpx.get(f"{url}/report", headers=right).status_code == 404  # nothing stored yet
        for n in range(3):
            started = httpx.post(f"{url}/telemetry/session/start", headers=right, json={
                "prompt": f"<b>deploy</b> app-{n}", "skill_name": "azure-deploy"}).json()  # fmt: skip
            end = {"output": "done", "success": n != 1}
            httpx.post(f"{url}/telemetry/session/{started['session_id']}/end", headers=right, json=end)
        assert httpx.get(f"{url}/report").status_code == 401
        page = httpx.get(f"{url}/report?days=7&skill=azure-deploy", headers=right, timeout=60)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "&lt;b&gt;deploy&lt;/b&gt; app-1" in page.text and "<b>deploy</b>" not in page.text
        for bad in ("days=forever", "days=0", "path=/etc/passwd"):
            refused = httpx.get(f"{url}/report?{bad}", headers=right)
            assert refused.status_code == 400 and "error" in refused.json(), bad


@pytest.mark.parametrize("keep_errors", [True, False])
def test_server_side_sampling_keeps_failed_sessions_whole(tmp_path: Path, keep_errors: bool) -> None:
    """--sample-rate 0.3 keeps the sessions whose id the sample picks; with keep-errors (the default)
    every failed session too, whole, from events held until it ended; estimates weigh them right."""
    rate = 0.3

    def picked(sid: str) -> bool:  # the sampling rule, written out here: SHA-256 of the id under the rate
        return int.from_bytes(hashlib.sha256(sid.encode()).digest()[:8], "big") < round(rate * 2**64)

    flag = "--keep-errors" if keep_errors else "--no-keep-errors"
    sessions = {f"s{n}": n % 10 != 0 for n in range(100)}  # id -> succeeded
    with server(tmp_path / "t", "--sample-rate", str(rate), flag, "--no-redact") as (url, _):
        for sid, ok in sessions.items():
            httpx.post(f"{url}/telemetry/session/start", json={"prompt": "p", "session_id": sid})
            for k in range(2):
                httpx.post(
                    f"{url}/telemetry/session/{sid}/event",
                    json={"event_type": "tool.called", "data": {"k": k}},
                )
            httpx.post(f"{url}/telemetry/session/{sid}/end", json={"output": "o", "success": ok})
    expected = {sid for sid, ok in sessions.items() if picked(sid) or (keep_errors and not ok)}
    stored: dict[str, list[str]] = {}
    for event in read_log(tmp_path / "t"):
        stored.setdefault(event["session_id"], []).append(event["event_type"])
    assert set(stored) == expected
    assert all(sorted(kinds) == ["session.ended", "session.started", "tool.called", "tool.called"]
               for kinds in stored.values())  # fmt: skip
    report = TelemetryAnalyzer().analyze_paths([tmp_path / "t"])
    picked_ok = sum(1 for sid, ok in sessions.items() if ok and picked(sid))
    failed = sum(1 for sid, ok in sessions.items() if not ok and (keep_errors or picked(sid)))
    weight = 1 if keep_errors else 1 / rate  # every failure kept: each stands for itself
    assert report["estimated_sessions"] == pytest.approx(picked_ok / rate + failed * weight)


def test_listening_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "waza", "serve", "--dir", str(tmp_path), "--host", "0.0.0.0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (
        result.returncode == 1 and "needs --token-file" in result.stderr and "Traceback" not in result.stderr
    )


def malformed_requests(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """Requests a careless or hostile client sends: every one must get a 4xx."""
    routes = ["/telemetry/session/start", "/telemetry/session/s1/event", "/telemetry/session/s1/end"]
    shapes = [
        lambda: b"{" * rng.randrange(1, 50_000),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))),
        lambda: json.dumps(
            {"event_type": rng.choice([1, None, [], "bad type!", "x" * 500, "tool.called\n"])}
        ).encode(),
        lambda: json.dumps({"prompt": "x", "unknown": 1}).encode(),
        lambda: json.dumps({"success": rng.choice(["yes", 1, None])}).encode(),
        lambda: json.dumps(
            {
                "event_type": "e",
                "timestamp": rng.choice(["1969-07-20T00:00:00Z", "9999-01-01", "not a time", 12]),
            }
        ).encode(),  # fmt: skip
        lambda: json.dumps({"prompt": "x" * 300_000}).encode(),
        lambda: json.dumps({"event_type": "e", "data": rng.choice([[1], "text", 3])}).encode(),
        lambda: json.dumps(rng.choice([[], "x", 1, None])).encode(),
    ]
    for _ in range(count):
        route = rng.choice(routes)
        if rng.random() < 0.1:
            route = "/telemetry/session/" + "x" * 300 + "/event"
        yield route, rng.choice(shapes)()


def test_a_thousand_malformed_requests_get_4xx_and_leave_the_folder_readable(tmp_path: Path) -> None:
    rng = random.Random(3)
    statuses: dict[int, int] = {}
    with server(tmp_path / "t", "--max-body", str(2**20)) as (url, _), httpx.Client() as client:
        client.post(f"{url}/telemetry/session/start", json={"prompt": "ok", "session_id": "s1"})
        for route, body in malformed_requests(rng, 1000):
            reply = client.post(url + route, content=body, headers={"content-type": "application/json"})
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            assert 400 <= reply.status_code < 500, (route, body[:100], reply.text)
            assert "error" in reply.json()
        big = client.post(f"{url}/telemetry/batch", content=b"x" * (2**20 + 1))
        assert big.status_code == 413
    assert set(statuses) == {400, 422}
    report = TelemetryAnalyzer(strict=True).analyze_file(tmp_path / "t")
    assert report["total_sessions"] == 1


def test_a_batch_keeps_its_good_lines(tmp_path: Path) -> None:
    good = {"timestamp": "2026-11-20T10:00:00Z", "event_type": "session.started", "session_id": "b1",
            "data": {"prompt": "p"}}  # fmt: skip
    body = (
        json.dumps(good).encode() + b"\nnot json\n" + json.dumps({**good, "session_id": ""}).encode() + b"\n"
        + json.dumps({**good, "event_type": "tool.called\n"}).encode()  # Python's "$" would take it
    )  # fmt: skip
    with server(tmp_path / "t") as (url, _):
        reply = httpx.post(
            f"{url}/telemetry/batch", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert reply.status_code == 200
        assert reply.json()["accepted"] == 1 and [r["line"] for r in reply.json()["rejected"]] == [2, 3, 4]
        bad = httpx.post(f"{url}/telemetry/batch", content=b"nope\n")
        assert bad.status_code == 400
    assert [e["session_id"] for e in read_log(tmp_path / "t")] == ["b1"]


def load(url: str, acknowledged: list[str], stop: threading.Event, worker: int) -> None:
    """Send single events and batches of 100 until told to stop; note every acknowledged id."""
    with httpx.Client(timeout=5) as client:
        n = 0
        while not stop.is_set():
            n += 1
            ids = [f"w{worker}-{n}-{k}" for k in range(1 if n % 2 else 100)]
            lines = [json.dumps({"timestamp": "2026-11-20T10:00:00Z", "event_type": "tool.called",
                                 "session_id": "load", "data": {"id": i}}) for i in ids]  # fmt: skip
            try:
                reply = client.post(f"{url}/telemetry/batch", content="\n".join(lines))
            except httpx.TransportError:
                return  # the server is gone
            if reply.status_code == 200:
                acknowledged.extend(ids)


@pytest.mark.parametrize("run", range(5))
def test_every_acknowledged_event_survives_sigkill(tmp_path: Path, run: int) -> None:
    acknowledged: list[str] = []
    stop = threading.Event()
    with server(tmp_path / "t") as (url, process):
        workers = [threading.Thread(target=load, args=(url, acknowledged, stop, w)) for w in range(4)]
        for thread in workers:
            thread.start()
        time.sleep(0.5 + 0.2 * run)
        os.kill(process.pid, signal.SIGKILL)
        stop.set()
        for thread in workers:
            thread.join()
    stored = {e["data"]["id"] for e in read_log(tmp_path / "t", torn_tails=True)}
    assert acknowledged and not set(acknowledged) - stored


def test_sigterm_commits_what_was_accepted_and_exits(tmp_path: Path) -> None:
    with server(tmp_path / "t") as (url, process):
        for n in range(20):
            httpx.post(f"{url}/telemetry/session/start", json={"prompt": f"p{n}"})
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)  # uvicorn shuts down, then ends by the signal it was sent
    assert len(read_log(tmp_path / "t")) == 20
    # The segments were closed (and compressed) on the way out, not left open.
    assert {p.name.split(".", 1)[1] for p in (tmp_path / "t").rglob("part-*")} == {"jsonl.gz"}


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.serve.schemathesis_hooks", "PYTHONPATH": str(root)}
    with server(tmp_path / "t") as (url, _):
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", checks,
             "--max-examples", "60", "--generation-deterministic", "--no-color"],
            capture_output=True, text=True, cwd=root, env=env, timeout=600,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "8/8" in result.stdout  # every operation was tested
    TelemetryAnalyzer(strict=True).analyze_paths([tmp_path / "t"])  # what it stored reads back cleanly


def test_workers_share_the_connections_and_stop_together(tmp_path: Path) -> None:
    """With --workers 2, sixteen clients connecting at once are spread over both processes
    (each writes segments named by its pid); SIGTERM stops both with everything committed."""
    with server(tmp_path / "t", "--workers", "2") as (url, process):
        port = int(url.rsplit(":", 1)[1])
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        for n, connection in enumerate(connections):  # each connection is kept alive for all its requests
            for k in range(5):
                body = json.dumps({"event_type": "e", "data": {"k": k}}).encode()
                connection.sendall(
                    f"POST /telemetry/session/c{n}/event HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                answer = b""
                while not answer.endswith(b'{"ok":true}'):
                    answer += connection.recv(4096)
                assert answer.startswith(b"HTTP/1.1 200 ")
        for connection in connections:
            connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert len(read_log(tmp_path / "t")) == 80
    writers = {p.name.split(".")[0].rsplit("-", 3)[1] for p in (tmp_path / "t").rglob("part-*")}
    assert len(writers) == 2  # all 16 hashed to one worker's socket: 1 time in 32,768


def test_workers_of_a_killed_server_commit_and_let_the_port_go(tmp_path: Path) -> None:
    """The supervisor killed outright (SIGKILL, no chance to stop its workers): each worker notices,
    commits what it accepted, and exits, so no orphan keeps the port or loses acknowledged events."""
    with server(tmp_path / "t", "--workers", "2") as (url, process):
        for n in range(20):
            assert httpx.post(f"{url}/telemetry/session/start", json={"prompt": f"p{n}"}).status_code == 200
        port = int(url.rsplit(":", 1)[1])
        process.kill()
        process.wait()
        deadline = time.monotonic() + 15
        while True:  # the port is free once both workers are gone
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener
                try:
                    probe.bind(("127.0.0.1", port))
                    break
                except OSError:
                    assert time.monotonic() < deadline, "a worker outlived its server"
                    time.sleep(0.2)
    # A worker lets the port go before it closes its segment (compressing it renames the file):
    # the events are all there once it has, read again while a file moves under the reading.
    stored: list = []
    while len(stored) < 20 and time.monotonic() < deadline:
        try:
            stored = read_log(tmp_path / "t")
        except FileNotFoundError:
            time.sleep(0.1)
    assert len(stored) == 20


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_refused_in_one_line(tmp_path: Path, workers: str) -> None:
    """Sockets that share a port (--workers) must not join one that something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = [
            sys.executable,
            "-m",
            "waza",
            "serve",
            "--dir",
            str(tmp_path),
            "--port",
            port,
            "--workers",
            workers,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr and "appending to" not in result.stderr


def test_invalid_utf8_is_a_400_and_costs_a_batch_nothing_else(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused with 400, in a batch for their line only."""
    good = b'{"timestamp":"2026-11-26T10:00:00+00:00","event_type":"tool.called","session_id":"s1","data":{}}'
    bad = good.replace(b'"s1"', b'"s2"').replace(b"{}", b'{"tool":"\xff\xfe"}')
    ndjson = {"content-type": "application/x-ndjson"}
    with server(tmp_path / "t") as (url, _):
        reply = httpx.post(f"{url}/telemetry/batch", content=good + b"\n" + bad + b"\n", headers=ndjson)
        assert reply.status_code == 200 and reply.json()["accepted"] == 1
        assert reply.json()["rejected"] == [{"line": 2, "error": "not valid UTF-8 (invalid start byte)"}]
        assert httpx.post(f"{url}/telemetry/batch", content=bad, headers=ndjson).status_code == 400
        body = b'{"prompt": "\xff"}'
        start = httpx.post(
            f"{url}/telemetry/session/start", content=body, headers={"content-type": "application/json"}
        )
        assert start.status_code == 400 and "UTF-8" in start.json()["error"]
    assert [e["session_id"] for e in read_log(tmp_path / "t")] == ["s1"]


def test_a_disk_that_fills_mid_batch_answers_what_was_stored(small_disk: Path) -> None:
    """A batch over two days on a disk with room for the first: 503 says how many events were stored,
    and exactly those are on disk; sent again once there is room, every event counts once."""
    disk = small_disk
    day = [f'{{"timestamp":"2026-11-25T10:00:{n:02d}+00:00","event_type":"tool.called","session_id":"a",'
           f'"event_id":"a{n}","data":{{"tool":"az"}}}}' for n in range(3)]  # fmt: skip
    big = "x" * 20_000
    later = [f'{{"timestamp":"2026-11-26T10:00:{n:02d}+00:00","event_type":"tool.called","session_id":"b",'
             f'"event_id":"b{n}","data":{{"tool":"az","pad":"{big}"}}}}' for n in range(10)]  # fmt: skip
    body = ("\n".join(day + later) + "\n").encode()
    ndjson = {"content-type": "application/x-ndjson"}
    with server(disk / "t") as (url, _):
        httpx.post(f"{url}/telemetry/batch", content=day[0].encode(), headers=ndjson)  # segments open
        filler = fill(disk)
        os.truncate(filler, filler.stat().st_size - 40 * 1024)  # room for the first day, not the second
        reply = httpx.post(f"{url}/telemetry/batch", content=body, headers=ndjson)
        assert reply.status_code == 503, reply.text
        stored = [e["event_id"] for e in read_log(disk / "t")]
        assert f"{len(stored) - 1} of the request's 13 events were stored" in reply.json()["error"]
        filler.unlink()
        assert httpx.post(f"{url}/telemetry/batch", content=body, headers=ndjson).status_code == 200
    report = TelemetryAnalyzer().analyze_paths([disk / "t"])
    assert report["metrics"]["total_tool_calls"] == 13


def test_slow_clients_are_cut_off_and_connections_capped(tmp_path: Path) -> None:
    """Headers sent a byte at a time and bodies that stall are closed after their deadlines; past the
    connection cap new requests get 503 at once; then the server serves again."""
    args = ("--client-timeout", "1", "--max-connections", "4")
    with server(tmp_path / "t", *args) as (url, _):
        port = int(url.rsplit(":", 1)[1])

        def stalled(request: bytes) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request)
            return sock

        headers = stalled(b"POST /telemetry/batch HTTP/1.1\r\nHost: x\r\n")  # headers never end
        body = b"POST /telemetry/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
        bodies = [stalled(body + b"Content-Length: 1000\r\n\r\n{") for _ in range(2)]  # bodies never end
        time.sleep(0.3)
        assert httpx.get(f"{url}/healthz").status_code == 503  # this would be the 4th connection of 4
        started = time.monotonic()
        headers.settimeout(10)
        assert headers.recv(100) == b""  # closed, unanswered
        for sock in bodies:
            sock.settimeout(10)
            assert b" 408 " in sock.recv(1000).split(b"\r\n")[0]
        assert time.monotonic() - started < 8
        assert httpx.get(f"{url}/healthz").status_code == 200
