"""One run of `waza alert`: read the window and its baseline, check each skill, tell whom it concerns.

What fired is remembered in a state file, so that an alert still firing is not
sent again and one that cleared is announced once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from waza.analysis.analyzer import PathLike
from waza.compare.alert import Finding, Rule, evaluate
from waza.compare.notify import DeliveryError, load_state, message, post, save_state
from waza.compare.outcomes import load_outcomes
from waza.engine.slicing import Slice
from waza.store.sources import Problem


@dataclass
class AlertRun:
    findings: list[Finding]
    problems: list[Problem]  # places of the telemetry that could not be read
    undelivered: str | None = None  # why the webhook did not take this run's news
    spans: list[tuple[datetime, datetime]] = field(default_factory=list)  # the baseline's, the window's

    @property
    def firing(self) -> bool:
        return any(finding.firing for finding in self.findings)


def check(
    paths: Iterable[PathLike],
    rule: Rule,
    *,
    skill: str | None = None,
    now: datetime | None = None,
    webhook: str | None = None,
    state: Path | None = None,
    engine: str = "duckdb",
    master: str | None = None,
) -> AlertRun:
    """Check the window ending ``now`` against its baseline, post news to ``webhook``, keep in ``state``."""
    spans = list(rule.spans(now or datetime.now(UTC)))
    scopes = [Slice(skill=skill, since=start, until=end) for start, end in spans]
    (before, after), problems = load_outcomes(paths, scopes, engine=engine, master=master)
    run = AlertRun(evaluate(before, after, rule), problems, spans=spans)
    firing = {f.key: f for f in run.findings if f.firing}
    checked = {f.key for f in run.findings if f.check != "sessions"}
    previous = load_state(state) if state else {}
    fired = [f for key, f in firing.items() if key not in previous]
    resolved = [key for key in previous if key in checked and key not in firing]
    if webhook and (fired or resolved):
        try:
            post(webhook, message(fired, resolved))
        except DeliveryError as error:
            run.undelivered = str(error)
            fired, resolved = [], []  # told no one: tell them next run
    if state:
        kept = {key: entry for key, entry in previous.items() if key not in resolved}
        stamp = datetime.now(UTC).isoformat()
        kept |= {f.key: {"since": stamp, "message": f.message} for f in fired}
        save_state(state, kept)
    return run
