"""What the HTML report shows, gathered from one reading of the telemetry."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from waza.analysis.analyzer import PathLike, TelemetryAnalyzer, engine_report
from waza.analysis.details import Prices
from waza.dashboard import charts
from waza.dashboard.page import page
from waza.dashboard.timeline import timeline
from waza.engine.base import Engine
from waza.engine.slicing import Slice
from waza.model import TelemetryEvent
from waza.store.sources import Problem, Source

SESSIONS_LISTED = 20  # slowest, and latest failed
PER_DECADE = 10  # duration bins per factor of ten
PROMPT_SHOWN = 120


def html_report(
    paths: Iterable[PathLike],
    scope: Slice | None = None,
    *,
    prices: Prices | None = None,
    engine: str = "duckdb",
    master: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The HTML page, and the JSON report it shows (with ``input.problems`` for the caller to report)."""
    scope = dataclasses.replace(scope or Slice(), top=SESSIONS_LISTED)

    def build(opened: Engine, sources: list[Source], problems: list[Problem]) -> tuple[str, dict[str, Any]]:
        report = engine_report(opened, sources, problems, scope, prices=prices)
        failed = opened.latest_failed(scope, SESSIONS_LISTED)
        slowest = [
            (row["session_id"], row["skill"], row["duration_ms"]) for row in report["slowest_sessions"]
        ]
        listed = list(dict.fromkeys(sid for sid, _, _ in slowest + failed))
        events: dict[str, list[TelemetryEvent]] = defaultdict(list)
        for at, kind, skill, data, sid, event_id in opened.picked_events(listed):
            events[sid].append(TelemetryEvent(at, kind, skill, json.loads(data or "{}"), sid, event_id))
        timelines = [timeline(sid, events[sid]) for sid in listed if events[sid]]
        index = {t["session_id"]: n for n, t in enumerate(timelines)}
        lists = {
            name: [
                [index[sid], sid, skill or "", _duration(ms), _short(timelines[index[sid]]["prompt"])]
                for sid, skill, ms in rows
                if sid in index
            ]
            for name, rows in (("slowest", slowest), ("failed", failed))
        }
        drawn = {
            "chart-daily": charts.daily(report["per_day"]),
            "chart-durations": charts.durations(
                opened.duration_bins(scope, PER_DECADE),
                PER_DECADE,
                {name: report["metrics"].get(f"duration_ms_{name}") for name in ("p50", "p90", "p95", "p99")},
            ),
            "chart-skills": charts.skills(report["skill_breakdown"]),
        }
        return page(report, drawn, timelines, lists), report

    analyzer = TelemetryAnalyzer(engine=engine, master=master)
    return analyzer.read_paths(paths, build, progress, scope.metadata_keys)


def _duration(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:,.2f} s"


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= PROMPT_SHOWN else text[: PROMPT_SHOWN - 1] + "…"
