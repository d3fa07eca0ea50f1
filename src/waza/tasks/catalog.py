"""Finding sessions through the engine, so that a store of millions need not fit in memory: those to
convert into tasks, and those that answer tasks to check.

The engine (DuckDB, or Spark) folds the sessions, filters them by skill, time
and outcome, and ranks them as ``selection.py`` does (failures, slow outliers, rare tool sequences,
rare skills; ties in an order the seed fixes). Python reads the ranked rows in
batches only as far as it needs: near-duplicate prompts are set aside as they
come, and reading stops at the limit. Only the sessions picked are then read
whole, to build their tasks from.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from waza.capture.redact import has_placeholder
from waza.engine import open_engine
from waza.engine.base import Engine
from waza.engine.slicing import Slice
from waza.model import SessionTelemetry, TelemetryEvent, fold_session
from waza.store.reader import load_sessions
from waza.store.sources import Format, Problem, discover
from waza.tasks.grading import TASK_KEY, prompt_digest, task_digest
from waza.tasks.selection import (
    MIN_FOR_SLOW,
    RARE_SHARE,
    SLOW_PERCENTILE,
    NearDuplicates,
    Pick,
    Selection,
    reasons_for,
    select,
)

ENGINE_FORMATS = (Format.EVENTS, Format.PARQUET)
# What DuckDB may hold while ranking: the picked sessions and the tasks are built beside it.
MEMORY_LIMIT = "512MB"
ORDERS = {
    # md5 is the same function in every engine: the same seed picks the same sessions in each.
    "interesting": "rank DESC, md5(session_id || $seed)",
    "random": "md5(session_id || $seed)",
    "all": "start_time, session_id",
}


def pick_sessions(
    paths: Iterable[str | Path],
    *,
    skill: str | None,
    outcome: bool | None,
    since: datetime | None,
    mode: str,
    limit: int | None,
    seed: int,
    engine: str = "duckdb",
    master: str | None = None,
) -> tuple[Selection, list[Problem]]:
    """The completed sessions picked (by ``mode``, ``limit`` and ``seed``) of those matching the filters.

    Through the ``engine`` (``"duckdb"``, or ``"spark"`` at ``master``); inputs of a kind only
    Python reads (exports, session lists, OTLP files) are loaded and ranked in memory, to the same
    rules.
    """
    paths = list(paths)
    sources, problems = discover(paths)
    if not sources or any(s.format not in ENGINE_FORMATS or s.url for s in sources):
        sessions, problems = load_sessions(paths)
        candidates = [
            s
            for s in sessions
            if s.completed
            and (skill is None or s.skill_name == skill)
            and (outcome is None or s.success == outcome)
            and (since is None or s.start_time >= since)
        ]
        return select(candidates, mode, limit, seed), problems
    with open_engine(engine, master=master, memory_limit=MEMORY_LIMIT) as opened:
        problems += opened.load_sources(sources, None, ())
        weights = {
            "slow": SLOW_PERCENTILE,
            "min_for_slow": MIN_FOR_SLOW,
            "rare": RARE_SHARE,
            "order": ORDERS[mode],
        }
        prompts = NearDuplicates() if mode == "interesting" else None
        chosen: list[tuple[str, list[str]]] = []
        ranked = opened.catalog(Slice(skill=skill, since=since), outcome, seed, weights)
        rows = (dict(zip(columns, values, strict=True)) for columns, batch in ranked for values in batch)
        for row in rows:
            prompt = row["prompt"] or ""
            if prompts is not None and prompts.repeats(row["session_id"], prompt):
                continue
            if limit is not None and len(chosen) >= limit:
                break
            if prompts is not None:
                prompts.keep(row["session_id"], prompt)
            chosen.append((row["session_id"], _reasons(row, mode, seed)))
        sessions = _whole(opened, [sid for sid, _ in chosen])
    picked = [Pick(sessions[sid], reasons) for sid, reasons in chosen if sid in sessions]
    return Selection(picked, prompts.duplicates if prompts else {}), problems


def engine_answers(
    paths: Iterable[str | Path],
    tasks: list[dict[str, Any]],
    engine: str = "duckdb",
    master: str | None = None,
) -> tuple[list[SessionTelemetry], int, list[Problem]] | None:
    """The sessions that answer the tasks (see grading.py), how many sessions there are in all, and
    the problems met, through the ``engine``; None when some input is of a kind only Python reads."""
    sources, problems = discover(list(paths))
    if not sources or any(s.format not in ENGINE_FORMATS or s.url for s in sources):
        return None
    task_ids = {str(task["id"]) for task in tasks}
    digests = {digest for task in tasks if (digest := task_digest(task))}
    latest: dict[tuple[str, str], tuple[datetime, str]] = {}  # (key kind, key) -> the latest session
    total = 0
    with open_engine(engine, master=master, memory_limit=MEMORY_LIMIT) as opened:
        problems += opened.load_sources(sources, None, (TASK_KEY,))
        for batch in opened.answers(TASK_KEY):
            total += len(batch)
            for session_id, start, task_id, prompt in batch:
                keys = [("task", task_id)] if task_id in task_ids else []
                if prompt and not has_placeholder(prompt) and (digest := prompt_digest(prompt)) in digests:
                    keys.append(("digest", digest))
                for key in keys:
                    if key not in latest or latest[key] < (start, session_id):
                        latest[key] = (start, session_id)
        sessions = _whole(opened, sorted({sid for _, sid in latest.values()}))
    return list(sessions.values()), total, problems


def _whole(engine: Engine, session_ids: list[str]) -> dict[str, SessionTelemetry]:
    """These sessions, read whole and folded."""
    events: dict[str, list[TelemetryEvent]] = defaultdict(list)
    for at, kind, skill_name, data, sid, event_id in engine.picked_events(session_ids):
        events[sid].append(TelemetryEvent(at, kind, skill_name, json.loads(data or "{}"), sid, event_id))
    return {sid: fold_session(sid, found) for sid, found in events.items()}


def _reasons(row: dict, mode: str, seed: int) -> list[str]:
    if mode == "all":
        return ["all sessions"]
    if mode == "random":
        return [f"picked at random (seed {seed})"]
    sequence = tuple(row["tools"].split(" > ")) if row["tools"] else ()
    found = reasons_for(
        failed=not row["success"],
        error=row["error"],
        skill=row["skill_name"],
        duration_ms=row["duration_ms"],
        slow_limit=row["slow_limit"],
        sequence=sequence,
        same_sequence=row["same_tools"],
        same_skill=row["same_skill"],
        total=row["total"],
    )
    return [text for _, text in found] or ["an ordinary session"]
