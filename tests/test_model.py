"""Events and sessions: round trips and folding, for any content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from waza.model import SessionTelemetry, TelemetryEvent, fold_session, group_events, session_events

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
json_dicts = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
names = st.none() | st.text(min_size=1, max_size=12)


@st.composite
def sessions(draw) -> SessionTelemetry:
    start = draw(moments)
    offsets = sorted(draw(st.lists(st.integers(0, 10**9), max_size=6)))
    events = [
        TelemetryEvent(
            start + timedelta(microseconds=offset),
            draw(st.sampled_from(["tool.called", "tool.completed", "llm.request", "error", "x.custom"])),
            None,
            draw(json_dicts),
        )
        for offset in offsets
    ]
    ended = draw(st.booleans())
    end = start + timedelta(microseconds=(offsets[-1] if offsets else 0) + draw(st.integers(0, 10**6)))
    return SessionTelemetry(
        session_id=draw(st.text(min_size=1, max_size=16)),
        start_time=start,
        end_time=end if ended else None,
        skill_name=draw(names),
        prompt=draw(st.text(max_size=30)),
        output=draw(st.text(max_size=30)) if ended else "",
        events=events,
        tool_calls=[e.data for e in events if e.event_type == "tool.called"],
        success=draw(st.booleans()) if ended else False,
        error=draw(st.none() | st.text(max_size=10)) if ended else None,
        metadata=draw(json_dicts),
    )


@given(moments, st.text(min_size=1), names, json_dicts, st.none() | st.text(min_size=1))
def test_event_round_trip(moment, event_type, skill, data, session_id) -> None:
    """from_dict(to_dict(e)) gives back the same event."""
    event = TelemetryEvent(moment, event_type, skill, data, session_id)
    assert TelemetryEvent.from_dict(event.to_dict()) == event


@given(sessions())
def test_session_round_trip(session: SessionTelemetry) -> None:
    """from_dict(to_dict(s)) gives back the same session."""
    assert SessionTelemetry.from_dict(session.to_dict()) == session


@given(sessions())
def test_fold_rebuilds_a_session_from_its_events(session: SessionTelemetry) -> None:
    """Folding a session's event-log form rebuilds it, event for event."""
    folded = fold_session(session.session_id, session_events(session))
    sid = session.session_id
    expected_events = [
        TelemetryEvent(e.timestamp, e.event_type, e.skill_name, e.data, sid) for e in session.events
    ]
    assert folded.events == expected_events
    assert folded.to_dict() | {"events": []} == session.to_dict() | {"events": []}


def test_naive_timestamps_mean_utc() -> None:
    """A timestamp without an offset is read as UTC."""
    event = TelemetryEvent.from_dict({"timestamp": "2024-01-01T10:00:00", "event_type": "x"})
    assert event.timestamp == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_duration_is_whole_milliseconds_truncated() -> None:
    """duration_ms truncates to whole milliseconds without float error."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for micros in (0, 999, 1000, 2_345_000, 4_103_999, 1_000_001):
        session = SessionTelemetry("s", start, start + timedelta(microseconds=micros))
        assert session.duration_ms == micros // 1000


def test_loose_events_split_at_session_boundaries() -> None:
    """Events without a session id split at session.started and at a second skill.invoked."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    kinds = ["skill.invoked", "tool.called", "skill.invoked", "tool.called", "session.started", "x"]
    events = [TelemetryEvent(t0 + timedelta(seconds=n), kind) for n, kind in enumerate(kinds)]
    grouped = group_events(events)
    assert [len(s.events) for s in grouped] == [2, 2, 1]
    assert [s.start_time for s in grouped] == [t0, t0 + timedelta(seconds=2), t0 + timedelta(seconds=4)]


def test_a_session_keeps_every_skill_it_invoked_in_order() -> None:
    """Skill-invocation graders need the whole sequence; the report's skill stays the first."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    names = ["azure-deploy", "azure-diagnostics", "azure-deploy"]
    events = [TelemetryEvent(start, "session.started", None, {"prompt": "p"}, "s1")]
    for n, name in enumerate(names, start=1):
        events.append(TelemetryEvent(start + timedelta(seconds=n), "skill.invoked", name, {}, "s1"))
    events.append(
        TelemetryEvent(start + timedelta(seconds=9), "session.ended", None, {"success": True}, "s1")
    )
    session = fold_session("s1", events)
    assert session.skills == names and session.skill_name == "azure-deploy"
    assert session.to_dict()["skills"] == names
    assert SessionTelemetry.from_dict(session.to_dict()).skills == names
    plain = SessionTelemetry("s2", start, start, skill_name="azure-cost")  # recorded no invocation
    assert plain.skills == ["azure-cost"] and SessionTelemetry("s3", start).skills == []
