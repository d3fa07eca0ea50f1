"""Realistic sample telemetry for demos, tests and benchmarks, reproducible from a seed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from waza.model import format_time
from waza.schema import (
    LLM_REQUEST,
    LLM_RESPONSE,
    SESSION_ENDED,
    SESSION_STARTED,
    SKILL_INVOKED,
    TOOL_CALLED,
    TOOL_COMPLETED,
)
from waza.store.codec import encode_line
from waza.store.folder_sink import FolderSink

# (skill, share of sessions, chance of success, typical tool calls, tools it uses)
SKILLS = [
    ("azure-deploy", 0.42, 0.95, 4, ["az", "git", "docker", "bicep"]),
    ("azure-create-app", 0.26, 0.93, 3, ["az", "npm", "git"]),
    ("azure-diagnostics", 0.20, 0.90, 5, ["az", "kql", "curl"]),
    ("azure-cost", 0.10, 0.97, 2, ["az", "kql"]),
    ("azure-migrate", 0.02, 0.70, 6, ["az", "azcopy", "sql"]),
]
PROMPTS = [
    "Deploy my app to Azure",
    "Create a web app called {name} in westeurope",
    "Why is {name} returning 502 errors?",
    "How much did {name} cost last month?",
    "Move the {name} database to Azure SQL",
    "Set up a staging slot for {name}",
]
MODELS = [("gpt-4.1", 0.6), ("gpt-4.1-mini", 0.3), ("claude-sonnet-4", 0.1)]
ERRORS = [
    ("AuthorizationFailed", "The client does not have authorization to perform action"),
    ("ResourceNotFound", "The Resource was not found"),
    ("QuotaExceeded", "Operation could not be completed as it results in exceeding quota"),
    ("Timeout", "The operation timed out after 300 seconds"),
]
INCOMPLETE_SHARE = 0.01
# Without an end, sample data ends here, so that a seed always gives the same telemetry.
SAMPLE_END = datetime(2026, 11, 8, tzinfo=UTC)
# Sessions start at least this long before the end, so that none ends after it.
ROOM = timedelta(minutes=10)


@dataclass(frozen=True)
class SampleSummary:
    sessions: int
    events: int
    directory: str


def _pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    return rng.choices([item for item, _ in weighted], [w for _, w in weighted])[0]


class _SessionLog:
    """The events of one sample session, stamped by a clock that the session advances."""

    def __init__(self, session_id: str, clock: datetime):
        self.session_id = session_id
        self.clock = clock
        self.events: list[dict[str, Any]] = []

    def add(self, event_type: str, data: dict[str, Any], skill_name: str | None = None) -> None:
        self.events.append(
            {
                "timestamp": format_time(self.clock),
                "event_type": event_type,
                "skill_name": skill_name,
                "data": data,
                "session_id": self.session_id,
            }
        )

    def wait(self, milliseconds: int) -> None:
        self.clock += timedelta(milliseconds=milliseconds)


def sample_sessions(
    sessions: int, *, seed: int = 0, days: int = 7, end: datetime = SAMPLE_END
) -> Iterator[list[dict[str, Any]]]:
    """Yield each sample session as its list of event dicts, in event-log form.

    Sessions spread over the ``days`` before ``end`` and finish before it.
    """
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    span = (timedelta(days=days) - ROOM).total_seconds()
    skill_weights = [(skill, skill[1]) for skill in SKILLS]
    for _ in range(sessions):
        skill, _, success_chance, typical_tools, tools = _pick(rng, skill_weights)
        log = _SessionLog(f"{rng.getrandbits(128):032x}", start + timedelta(seconds=rng.random() * span))
        name = f"app-{rng.randrange(1000)}"
        metadata = {
            "user_id": f"user-{rng.randrange(5000)}",
            "environment": "production" if rng.random() < 0.85 else "staging",
        }
        log.add(SESSION_STARTED, {"prompt": rng.choice(PROMPTS).format(name=name), "metadata": metadata})
        log.add(SKILL_INVOKED, {"skill_name": skill}, skill)
        error: str | None = None
        for _ in range(max(0, round(rng.gauss(typical_tools, 1.5)))):
            tool = rng.choice(tools)
            log.add(TOOL_CALLED, {"tool": tool, "args": [rng.choice(["create", "show", "list"]), name]})
            took = int(rng.lognormvariate(5.5, 0.8))
            log.wait(took)
            completed: dict[str, Any] = {"tool": tool, "success": rng.random() < 0.96, "duration_ms": took}
            if not completed["success"]:
                completed["error"] = "{}: {}".format(*rng.choice(ERRORS))
                error = error or completed["error"]
            log.add(TOOL_COMPLETED, completed)
        for _ in range(rng.choice([1, 1, 2, 3])):
            model = _pick(rng, MODELS)
            tokens = {"input": rng.randrange(200, 6000), "output": rng.randrange(20, 1200)}
            log.add(LLM_REQUEST, {"model": model, "tokens": tokens})
            latency = int(rng.lognormvariate(6.8, 0.5))
            log.wait(latency)
            log.add(LLM_RESPONSE, {"model": model, "latency_ms": latency})
        failed = rng.random() > success_chance
        if failed:
            error = error or "{}: {}".format(*rng.choice(ERRORS))
            log.add("error", {"error_type": error.split(":")[0], "message": error})
        if rng.random() >= INCOMPLETE_SHARE:
            log.wait(rng.randrange(50, 400))
            output = f"Failed: {error}" if failed else f"Done: https://{name}.azurewebsites.net"
            ended = {"output": output, "success": not failed, "error": error if failed else None}
            log.add(SESSION_ENDED, ended)
        yield log.events


def write_sample(
    directory: str | os.PathLike[str],
    sessions: int,
    *,
    seed: int = 0,
    days: int = 7,
    end: datetime = SAMPLE_END,
    compress: bool = False,
) -> SampleSummary:
    """Write ``sessions`` sample sessions into a telemetry folder as an event log."""
    if sessions < 0:
        raise ValueError("sessions must not be negative")
    sink = FolderSink(directory, compress=compress, compact=False)
    written = 0
    batch: list[tuple[Any, bytes]] = []
    try:
        for events in sample_sessions(sessions, seed=seed, days=days, end=end):
            day = datetime.fromisoformat(events[0]["timestamp"]).date()
            batch.extend((day, encode_line(event)) for event in events)
            written += len(events)
            if len(batch) >= 50_000:
                sink.append(batch)
                batch = []
        sink.append(batch)
    finally:
        sink.shutdown()
    return SampleSummary(sessions, written, str(directory))
