"""Reports of whole days read from compaction's rollups equal those read from the events themselves."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import read_log, rounded
from waza.engine import rolled
from waza.engine.compaction import compact
from waza.engine.duckdb_engine import DuckDBEngine
from waza.engine.slicing import Slice
from waza.sample import write_sample
from waza.store.compacted import summed_rollups
from waza.store.sources import discover
from waza.telemetry import TelemetryAnalyzer

END = datetime(2026, 11, 1, tzinfo=UTC)
SCOPES = [
    Slice(),
    Slice(by="skill", top=20),
    Slice(by="day"),
    Slice(skill="azure-deploy"),
    Slice(top=150),  # longer than the rollups' lists: those lists come from the sessions
    Slice(since=datetime(2026, 10, 27, tzinfo=UTC), until=datetime(2026, 10, 30, tzinfo=UTC)),
]


def report(folder: Path, scope: Slice) -> dict:
    found = TelemetryAnalyzer().analyze_paths([folder], scope=scope)
    found.pop("input"), found.pop("storage")
    return rounded(found)


def whole_sessions(events: list[dict]) -> list[list[dict]]:
    """The sessions of a log that started and ended, each as its events."""
    by_id: dict[str, list[dict]] = {}
    for event in events:
        by_id.setdefault(event["session_id"], []).append(event)
    whole = {"session.started", "session.ended"}
    return [found for found in by_id.values() if whole <= {e["event_type"] for e in found}]


def late(session: list[dict], event_type: str, data: dict) -> dict:
    """An event of ``session`` stored after it ended, at the time of its last event."""
    return {"timestamp": session[-1]["timestamp"], "event_type": event_type, "skill_name": None,
            "data": data, "session_id": session[0]["session_id"]}  # fmt: skip


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store compacted in two runs with a raw tail, and the same events never compacted.

    The second run compacts a copy of a session the first held whole; the tail holds another
    copy, a tool call and an error stored after their sessions ended, the end of a session
    compaction took as abandoned, a skill loaded (before the rest) by the session of its skill
    that ended last, and a session of its own.
    """
    root = tmp_path_factory.mktemp("rollups")
    compacted, raw = root / "compacted", root / "raw"
    write_sample(compacted, 1200, seed=5, end=END, compress=True)
    for segment in compacted.rglob("*.jsonl.gz"):  # ids, as a collector gives every event
        lines = gzip.decompress(segment.read_bytes()).decode().splitlines()
        ids = [{**json.loads(line), "event_id": f"{segment.name}-{n}"} for n, line in enumerate(lines)]
        segment.write_bytes(gzip.compress("".join(json.dumps(e) + "\n" for e in ids).encode()))
    shutil.copytree(compacted, raw)
    compact(compacted)
    events = read_log(raw)
    sessions = whole_sessions(events)
    ended = {e["session_id"] for e in events if e["event_type"] == "session.ended"}
    unended = next(e for e in events if e["event_type"] == "session.started" and e["session_id"] not in ended)
    again = sessions[0]
    error = {"error_type": "LateError", "message": "LateError: came late"}
    tail = [
        *sessions[1],
        late(sessions[2], "tool.called", {"tool": "late-tool"}),
        late(sessions[3], "error", error),
    ]
    tail.append(late([unended], "session.ended", {"success": True}))  # taken as abandoned, it ends
    # The azure-deploy session that ended last learns late that it ran another skill first: it
    # leaves its group, whose last end is then read from the sessions again.
    deploys = [found for found in sessions[4:] if found[1]["skill_name"] == "azure-deploy"]
    last = max(deploys, key=lambda found: found[-1]["timestamp"])
    before = datetime.fromisoformat(last[0]["timestamp"]) - timedelta(microseconds=1)
    tail.append(
        {**late(last, "skill.invoked", {}), "timestamp": before.isoformat(), "skill_name": "late-skill"}
    )
    own = {"skill_name": "tail-skill", "session_id": "tail-1"}
    tail += [
        {**own, "timestamp": "2026-10-31T10:00:00+00:00", "event_type": "session.started",
         "data": {"metadata": {"user_id": "tail-user"}}},
        {**own, "timestamp": "2026-10-31T10:00:02+00:00", "event_type": "session.ended",
         "data": {"success": True}},
    ]  # fmt: skip
    for folder in (compacted, raw):
        day = folder / "date=2026-10-31"
        with gzip.open(day / "part-again-1-1-00001.jsonl.gz", "wt") as closed:
            closed.writelines(json.dumps(event) + "\n" for event in again)
    compact(compacted)
    for folder in (compacted, raw):
        (folder / "date=2026-10-31" / "part-tail-1-1-00001.jsonl").write_text(
            "".join(json.dumps(event) + "\n" for event in tail)
        )
    return compacted, raw


@pytest.fixture(scope="module")
def finished(stores: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compacted store once its tail is closed and compacted too: every late event then meets
    its session in a file compacted earlier."""
    compacted, _ = stores
    finished = tmp_path_factory.mktemp("finished") / "store"
    shutil.copytree(compacted, finished)
    tail = finished / "date=2026-10-31" / "part-tail-1-1-00001.jsonl"
    tail.with_name(tail.name + ".gz").write_bytes(gzip.compress(tail.read_bytes()))
    tail.unlink()
    compact(finished)
    return finished


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: f"by={s.by},skill={s.skill},since={s.since}")
@pytest.mark.parametrize("tail", ["raw", "compacted"])
def test_rollups_give_the_report_the_events_give(
    stores: tuple[Path, Path], finished: Path, tail: str, scope: Slice, monkeypatch: pytest.MonkeyPatch
) -> None:
    compacted, raw = stores
    compacted = compacted if tail == "raw" else finished
    answered = []
    monkeypatch.setattr(
        rolled, "summary", lambda engine, s, read=rolled.summary: answered.append(s) or read(engine, s)
    )
    from_rollups = report(compacted, scope)
    assert answered, "the report was not read from the rollups"
    assert from_rollups == report(raw, scope)


def test_a_day_compacted_twice_is_read_from_one_sum(stores: tuple[Path, Path]) -> None:
    compacted, _ = stores
    day = compacted / "compacted" / "date=2026-10-31"
    ((_, covered),) = summed_rollups(day)
    assert covered == {p.name for p in day.glob("events-*.parquet")} and len(covered) == 2


@pytest.mark.parametrize("tail", ["raw", "compacted"])
def test_rollups_count_each_session_and_tool_call_once(
    stores: tuple[Path, Path], finished: Path, tail: str
) -> None:
    """Against counts made here from the events: copies and late events counted once."""
    compacted, raw = stores
    events = read_log(raw)
    calls = {e.get("event_id") or id(e) for e in events if e["event_type"] == "tool.called"}
    found = report(compacted if tail == "raw" else finished, Slice())
    assert found["total_sessions"] == len({e["session_id"] for e in events})
    assert found["metrics"]["total_tool_calls"] == len(calls)
    assert {row["tool"]: row["calls"] for row in found["tools"]}["late-tool"] == 1
    assert {row["error_type"]: row["count"] for row in found["errors"]}["LateError"] == 1


def test_compaction_folds_a_session_met_again_into_one_file(finished: Path) -> None:
    """Late events, copies and ends of sessions compacted earlier are folded with them when
    compacted: each session then lives in one file, and a report folds no part of any."""
    engine = DuckDBEngine()
    engine.load_sources(discover([finished])[0])
    engine.summary(Slice())
    (pending,) = engine._rows("SELECT count(*) FROM pending_parts")[1][0]
    (touched,) = engine._rows("SELECT count(*) FROM touched")[1][0]
    live = engine._rows("SELECT session_id, count(*) FROM sessions GROUP BY session_id HAVING count(*) > 1")[
        1
    ]
    engine.close()
    assert (pending, touched, live) == (0, 0, [])


@pytest.mark.parametrize("tail", ["raw", "compacted"])
def test_other_slices_read_the_sessions(
    stores: tuple[Path, Path], finished: Path, tail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice inside a day or on metadata is read from the sessions, and still agrees."""
    compacted, raw = stores
    compacted = compacted if tail == "raw" else finished
    monkeypatch.setattr(rolled, "summary", lambda *_: pytest.fail("read from rollups"))
    for scope in (
        Slice(since=datetime(2026, 10, 28, 12, tzinfo=UTC)),
        Slice(where=(("environment", "production"),)),
        Slice(by="environment"),
    ):
        assert report(compacted, scope) == report(raw, scope)


def test_a_list_a_session_left_is_read_from_the_sessions(tmp_path: Path) -> None:
    """A skill's 150 sessions compacted, then the one with the most tool calls learns it ran another
    skill first: the skill's stored lists now hold 99 sure entries, so its top 100 is read again."""

    def event(n: int, second: int, event_type: str, skill: str = "big", data: dict | None = None) -> dict:
        moment = datetime(2026, 10, 30, 10, tzinfo=UTC) + timedelta(minutes=n, seconds=second)
        return {"timestamp": moment.isoformat(), "event_type": event_type, "skill_name": skill,
                "data": data or {}, "session_id": f"s{n}",
                "event_id": f"s{n}-{event_type}-{second}"}  # fmt: skip

    sessions = []
    for n in range(150):
        calls = [event(n, 1 + call, "tool.called", data={"tool": "az"}) for call in range(n % 40)]
        ended = event(n, 50, "session.ended", data={"success": True})
        sessions += [event(n, 0, "session.started"), *calls, ended]
    most = max(range(150), key=lambda n: (n % 40, -n))
    learnt = event(most, -1, "skill.invoked", skill="late-skill")
    stores = {name: tmp_path / name for name in ("compacted", "raw")}
    for folder in stores.values():
        day = folder / "date=2026-10-30"
        day.mkdir(parents=True)
        (day / "part-a-1-1-00001.jsonl.gz").write_bytes(
            gzip.compress("".join(json.dumps(e) + "\n" for e in sessions).encode())
        )
    compact(stores["compacted"])
    for folder in stores.values():
        late_segment = folder / "date=2026-10-30" / "part-b-1-1-00001.jsonl.gz"
        late_segment.write_bytes(gzip.compress((json.dumps(learnt) + "\n").encode()))
    compact(stores["compacted"])
    for scope in (Slice(skill="big", top=100), Slice(top=100), Slice(by="skill", top=100)):
        assert report(stores["compacted"], scope) == report(stores["raw"], scope)
