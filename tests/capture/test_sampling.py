"""Sampling: deterministic per session id, whole sessions, failures always kept."""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import read_log
from waza.capture.sampling import SessionSampler
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer


def test_kept_fraction_and_agreement() -> None:
    """Over 100,000 ids the kept share is 0.1 +/- 0.005, and two samplers agree on every id."""
    ids = [f"{random.Random(n).getrandbits(128):032x}" for n in range(100_000)]
    first, second = SessionSampler(0.1), SessionSampler(0.1)
    decisions = [first(i) for i in ids]
    assert abs(sum(decisions) / len(ids) - 0.1) <= 0.005
    assert decisions == [second(i) for i in ids]


def test_sampled_folder_keeps_whole_sessions_and_every_failure(tmp_path: Path) -> None:
    """Kept sessions have all their events, every failure is kept, and analysis estimates the total."""
    rng = random.Random(3)
    total, failed_ids, events_per_session = 100_000, set(), {}
    with RuntimeCollector(tmp_path, sample_rate=0.1, redact=False) as collector:
        for n in range(total):
            sid = collector.start_session("p", {"n": n})
            tools = rng.randrange(4)
            for _ in range(tools):
                collector.record_event(sid, "tool.called", {"tool": "az"})
            ok = rng.random() > 0.05
            if not ok:
                failed_ids.add(sid)
            events_per_session[sid] = tools + 2
            collector.end_session(sid, "out", ok, None if ok else "boom")
    lines = read_log(tmp_path)
    kept: dict[str, int] = {}
    for event in lines:
        kept[event["session_id"]] = kept.get(event["session_id"], 0) + 1
    assert failed_ids <= kept.keys()
    assert all(count == events_per_session[sid] for sid, count in kept.items())
    sampled_in = [sid for sid in kept if SessionSampler(0.1)(sid)]
    assert abs(len(sampled_in) / total - 0.1) <= 0.005
    assert kept.keys() == set(sampled_in) | failed_ids

    report = TelemetryAnalyzer().analyze_file(tmp_path)
    assert report["total_sessions"] == len(kept)
    assert abs(report["estimated_sessions"] - total) / total <= 0.03


def test_in_memory_sampling_keeps_failures(tmp_path: Path) -> None:
    """Without a folder, unsampled sessions are not kept unless they fail."""
    collector = RuntimeCollector(sample_rate=0.0)
    ok = collector.start_session("fine")
    collector.end_session(ok, "done", True)
    bad = collector.start_session("broken")
    collector.record_event(bad, "tool.called", {"tool": "az"})
    collector.end_session(bad, "", False, "boom")
    (session,) = collector.sessions
    assert (session.prompt, session.tool_calls, session.metadata["sample_rate"]) == (
        "broken",
        [{"tool": "az"}],
        0.0,
    )
    assert collector.dropped == {"sampled_out": 1}
