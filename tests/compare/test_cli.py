"""`waza compare` and `waza alert` on telemetry files, as users run them."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import read_log, write_jsonl
from tests.tasks.test_convert import session_events
from waza.cli import main

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def traffic(
    folder: Path, start: datetime, span: timedelta, n: int, *, success: float, slow: float = 1.0, seed: int
) -> None:
    """``n`` sessions of two skills started evenly over ``span`` from ``start``."""
    rng = random.Random(seed)
    lines = []
    for index in range(n):
        skill = "azure-deploy" if index % 4 else "azure-cost"
        duration = int(rng.lognormvariate(7.6, 0.4) * slow)
        lines += session_events(
            f"{seed}-{index}",
            f"prompt {index}",
            at=start + span * index / n,
            duration_ms=duration,
            ok=rng.random() < success,
            skill=skill,
            tokens={"input": rng.randint(900, 1100), "output": 200},
        )
    write_jsonl(folder / f"events-{seed}.jsonl", lines)


def test_compare_two_folders_in_every_format(tmp_path: Path) -> None:
    traffic(tmp_path / "before", NOW - timedelta(days=2), timedelta(days=1), 1200, success=0.95, seed=1)
    traffic(
        tmp_path / "after", NOW - timedelta(days=1), timedelta(days=1), 1200, success=0.80, slow=1.5, seed=2
    )
    paths = [str(tmp_path / "before"), str(tmp_path / "after")]
    result = CliRunner().invoke(main, ["compare", *paths, "--format", "json"])
    assert result.exit_code == 0, result.output  # no --fail-on: reporting only
    changes = {(c["group"], c["figure"]): c for c in json.loads(result.stdout)["changes"]}
    success = changes["(all)", "success_rate"]
    assert success["baseline_sessions"] == success["current_sessions"] == 1200
    assert success["worse"] and success["current"] < 0.85 < 0.9 < success["baseline"]
    assert changes["azure-deploy", "p95_duration_ms"]["worse"]
    assert changes["(all)", "avg_duration_ms"]["relative_change"] == pytest.approx(0.5, abs=0.08)
    assert not changes["(all)", "tokens_per_session"]["significant"]
    failing = CliRunner().invoke(main, ["compare", *paths, "--fail-on", "success_rate"])
    assert failing.exit_code == 1
    # Cost per session from a price table, against the tokens in the files, summed here.
    (tmp_path / "prices.yaml").write_text("gpt-4.1: {input: 0.002, output: 0.008}\n")
    priced = CliRunner().invoke(
        main, ["compare", *paths, "--format", "json", "--prices", str(tmp_path / "prices.yaml")]
    )
    (cost,) = [
        c
        for c in json.loads(priced.stdout)["changes"]
        if c["group"] == "(all)" and c["figure"] == "cost_per_session"
    ]
    for side, folder in (("baseline", "before"), ("current", "after")):
        requests = [
            e["data"]["tokens"] for e in read_log(tmp_path / folder) if e["event_type"] == "llm.request"
        ]
        spent = sum(t["input"] * 0.002 + t["output"] * 0.008 for t in requests) / 1000
        assert cost[side] == pytest.approx(spent / 1200)
    markdown = CliRunner().invoke(
        main, ["compare", *paths, "--format", "markdown", "--fail-on", "tokens_per_session"]
    )
    assert markdown.exit_code == 0
    assert "| (all) | success | 95" in markdown.stdout and "| worse |" in markdown.stdout


def test_compare_one_store_before_and_after(tmp_path: Path) -> None:
    traffic(tmp_path / "store", NOW - timedelta(days=2), timedelta(days=1), 600, success=0.95, seed=3)
    traffic(tmp_path / "store", NOW - timedelta(days=1), timedelta(days=1), 600, success=0.95, seed=4)
    common = ["compare", str(tmp_path / "store"), "--format", "json", "--fail-on", "any"]
    result = CliRunner().invoke(main, [*common, "--baseline-until", (NOW - timedelta(days=1)).isoformat()])
    assert result.exit_code == 0, result.output
    (success,) = [
        c
        for c in json.loads(result.stdout)["changes"]
        if c["group"] == "(all)" and c["figure"] == "success_rate"
    ]
    assert success["baseline_sessions"] == success["current_sessions"] == 600
    missing = CliRunner().invoke(main, ["compare", str(tmp_path / "store")])
    assert missing.exit_code == 2 and "--baseline-until" in missing.output


class Hook:
    """A webhook receiver on loopback that answers 500 to the first POST."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append(body)
                self.send_response(500 if len(hook.received) == 1 else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()


def test_alert_fires_once_retries_the_webhook_and_resolves(tmp_path: Path, hook: Hook) -> None:
    store = tmp_path / "store"
    traffic(store, NOW - timedelta(days=1, hours=1), timedelta(days=1), 8000, success=0.95, seed=5)
    traffic(store, NOW - timedelta(hours=1), timedelta(hours=1), 2400, success=0.70, seed=6)
    (tmp_path / "url").write_text(hook.url + "\n")
    state = tmp_path / "alert-state.json"
    args = ["alert", str(store), "--window", "1h", "--baseline", "1d", "--at", NOW.isoformat(),
            "--webhook", f"@{tmp_path / 'url'}", "--state", str(state)]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 3, first.output
    assert "ALERT azure-deploy: success rate down" in first.stdout
    assert "ALERT azure-cost: success rate down" in first.stdout
    assert len(hook.received) == 2 and hook.received[0] == hook.received[1]  # 500, then sent again
    text = hook.received[1]["text"]
    assert text.count("ALERT") == 2 and "azure-deploy" in text
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 3 and len(hook.received) == 2  # still firing: not repeated
    # An hour later the window is healthy again.
    traffic(store, NOW, timedelta(hours=1), 2400, success=0.95, seed=7)
    later = [*args[:-6], "--at", (NOW + timedelta(hours=1)).isoformat(), *args[-4:]]
    cleared = CliRunner().invoke(main, later)
    assert cleared.exit_code == 0, cleared.output
    assert len(hook.received) == 3 and hook.received[2]["text"].count("RESOLVED") == 2
    assert json.loads(state.read_text())["firing"] == {}


def test_alert_on_quiet_traffic_exits_0_and_says_why_skills_were_not_checked(tmp_path: Path) -> None:
    store = tmp_path / "store"
    traffic(store, NOW - timedelta(days=1, hours=1), timedelta(days=1), 3000, success=0.9, seed=8)
    traffic(store, NOW - timedelta(hours=1), timedelta(hours=1), 400, success=0.9, seed=9)
    result = CliRunner().invoke(main, ["alert", str(store), "--baseline", "1d", "--at", NOW.isoformat(),
                                       "--min-sessions", "150"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ok    azure-deploy: success rate healthy" in result.stdout
    assert "azure-cost: not checked: 100 sessions in the window" in result.stdout
    bad = CliRunner().invoke(main, ["alert", str(store), "--max-drop", "three points"])
    assert bad.exit_code == 2 and "3pp" in bad.output
