"""Production sessions into a waza suite: pick them, build their tasks, redact, write."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from waza.capture.redact import Redactor
from waza.store.sources import Problem
from waza.tasks.catalog import pick_sessions
from waza.tasks.files import write_suite
from waza.tasks.from_session import session_task
from waza.tasks.selection import Selection


@dataclass
class Conversion:
    selection: Selection  # the sessions picked, each with why
    tasks: list[tuple[dict[str, Any], dict[str, Any]]]  # (task, provenance), in the order picked
    written: list[Path]
    problems: list[Problem]  # places of the telemetry that could not be read


def convert(
    paths: Iterable[str | Path],
    output: Path,
    *,
    skill: str | None = None,
    outcome: bool | None = None,
    since: datetime | None = None,
    mode: str = "interesting",
    limit: int | None = None,
    seed: int = 0,
    name: str | None = None,
    force: bool = False,
    mocks: bool = False,
    engine: str = "duckdb",
    master: str | None = None,
) -> Conversion:
    """Write the completed sessions picked from ``paths`` as a suite (a suite per skill) into ``output``.

    Everything written passes through the collector's default redactor; nothing is overwritten
    without ``force``; with no session to convert, nothing is written.
    """
    paths = list(paths)
    selection, problems = pick_sessions(
        paths,
        skill=skill,
        outcome=outcome,
        since=since,
        mode=mode,
        limit=limit,
        seed=seed,
        engine=engine,
        master=master,
    )
    if not selection.picked:
        return Conversion(selection, [], [], problems)
    redactor = Redactor()
    tasks = [session_task(pick.session, redactor, mocks=mocks) for pick in selection.picked]
    written = write_suite(tasks, output, name=name or skill or "runtime-regressions", force=force)
    return Conversion(selection, tasks, written, problems)
