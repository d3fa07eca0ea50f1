"""Formats are told by content, and every way a file can be bad is named, not fatal."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.conftest import write_jsonl
from waza.model import SessionTelemetry, session_events
from waza.sample import sample_sessions
from waza.store.reader import load_sessions
from waza.store.sources import Format, discover


def sessions_of(raw) -> list[SessionTelemetry]:
    from waza.model import TelemetryEvent, fold_session

    return [fold_session(e[0]["session_id"], [TelemetryEvent.from_dict(x) for x in e]) for e in raw]


def test_each_format_is_recognised_by_content(tmp_path: Path) -> None:
    """Event log, session lines, session list, export and gzip of one are told apart without names."""
    sessions = sessions_of(list(sample_sessions(5, seed=1)))
    dicts = [s.to_dict() for s in sessions]
    write_jsonl(tmp_path / "a", [e.to_dict() for s in sessions for e in session_events(s)])
    write_jsonl(tmp_path / "b", dicts)
    (tmp_path / "c").write_text(json.dumps(dicts, indent=2))
    (tmp_path / "d").write_text(
        json.dumps({"exported_at": "2024-01-01T00:00:00", "sessions": dicts}, indent=2)
    )
    (tmp_path / "e").write_bytes(gzip.compress(json.dumps({"sessions": dicts, "exported_at": "x"}).encode()))
    sources, problems = discover([tmp_path])
    found = {s.path.name: (s.format, s.compressed) for s in sources}
    assert problems == []
    assert found == {
        "a": (Format.EVENTS, False),
        "b": (Format.SESSION_LINES, False),
        "c": (Format.SESSION_LIST, False),
        "d": (Format.EXPORT, False),
        "e": (Format.EXPORT, True),
    }
    loaded, _ = load_sessions([tmp_path / name for name in "abcde"])
    assert len(loaded) == 25
    assert {s.session_id for s in loaded} == {s.session_id for s in sessions}


def test_bad_places_are_named(tmp_path: Path) -> None:
    """Empty, binary and non-telemetry files and bad lines are each reported with path and line."""
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "notes.txt").write_text("hello\n")
    good = {"timestamp": "2024-01-01T00:00:00", "event_type": "x", "data": {}, "session_id": "s"}
    (tmp_path / "log.jsonl").write_text(json.dumps(good) + "\n{oops\n" + json.dumps(good) + "\n")
    sessions, problems = load_sessions([tmp_path, tmp_path / "missing"])
    places = {(Path(p.path).name, p.line) for p in problems}
    assert places == {
        ("empty.jsonl", None),
        ("blob.bin", None),
        ("notes.txt", None),
        ("log.jsonl", 2),
        ("missing", None),
    }
    assert len(sessions) == 1 and len(sessions[0].events) == 2


def test_a_folder_that_cannot_be_listed_is_reported_and_fails_strict(tmp_path: Path, monkeypatch) -> None:
    """A day partition the reader may not list is named as a problem, and --strict fails on it."""
    import os

    from click.testing import CliRunner

    from waza.cli import main
    from waza.sample import write_sample

    write_sample(tmp_path / "t", 40, seed=3, days=3)
    locked = sorted((tmp_path / "t").glob("date=*"))[0]
    real_scandir = os.scandir

    def scandir(path="."):
        if not isinstance(path, int) and Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    sources, problems = discover([tmp_path / "t"])
    assert [(p.path, p.reason) for p in problems] == [(str(locked), "cannot list: Permission denied")]
    assert sources and all(locked not in s.path.parents for s in sources)
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "t"), "--strict"])
    assert result.exit_code == 1 and str(locked) in result.output
