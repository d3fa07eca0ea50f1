"""Regression checks as library calls: grade recorded sessions, or replay tasks and grade the replay.

Both refuse to report a green run that checked nothing: a suite without
tasks, input without sessions, or sessions of which none answers a task is a
``UsageError`` that says what was found, and names the likely slip (the
tasks and the telemetry given the wrong way round).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from waza.errors import UsageError, WazaError
from waza.store.reader import load_sessions
from waza.store.sources import Problem, discover
from waza.tasks.catalog import engine_answers
from waza.tasks.files import load_tasks
from waza.tasks.grading import TASK_KEY, Grade, grade_all
from waza.tasks.replay import replay

SWAPPED = "the tasks come first: waza check TASKS PATH..."


@dataclass
class CheckResult:
    grades: list[Grade]
    problems: list[Problem]  # places of the telemetry that could not be read

    @property
    def failed(self) -> bool:
        return any(grade.status == "failed" for grade in self.grades)


def check_recorded(
    tasks_path: Path,
    paths: Iterable[str | os.PathLike[str]],
    *,
    engine: str = "duckdb",
    master: str | None = None,
) -> CheckResult:
    """Grade the sessions recorded under ``paths`` against the tasks at ``tasks_path``.

    Event logs and compacted stores are searched by the ``engine`` ("duckdb", or "spark" at
    ``master``), and only the sessions that answer a task are read whole.
    """
    paths = list(paths)
    tasks = load_suite(tasks_path)
    found = engine_answers(paths, tasks, engine, master)
    if found is None:
        sessions, problems = load_sessions(paths)
        total = len(sessions)
    else:
        sessions, total, problems = found
    where = ", ".join(map(str, paths))
    if not total:
        hint = f"; {where} holds task files, and {SWAPPED}" if _holds_tasks(paths) else ""
        raise UsageError(f"no sessions found in {where}{hint}")
    grades = grade_all(tasks, sessions)
    if not any(grade.session_id for grade in grades) and any(g.status != "skipped" for g in grades):
        raise UsageError(
            f"none of the {total:,} sessions in {where} answers any of the {len(tasks):,} tasks"
            f" of {tasks_path} (a session answers a task through its {TASK_KEY} metadata or the"
            " prompt the task was made from)"
        )
    return CheckResult(grades, problems)


def replay_recorded(
    tasks_path: Path, entrypoint: str, output: Path, *, workers: int = 1, timeout: float = 60.0
) -> CheckResult:
    """Run every task through the skill at ``entrypoint``, record into ``output``, and grade that."""
    tasks = load_suite(tasks_path)
    failures = replay(tasks, entrypoint, output, workers=workers, timeout=timeout)
    sessions, problems = load_sessions([output])
    return CheckResult(grade_all(tasks, sessions, failures), problems)


def load_suite(path: Path) -> list[dict]:
    """The tasks at ``path``; none at all is an error that says what the path holds instead."""
    if _holds_telemetry(path):
        raise UsageError(f"{path} holds telemetry, not tasks; {SWAPPED}")
    tasks = load_tasks(path)
    if not tasks:
        raise UsageError(f"no tasks in {path}: it holds neither eval.yaml nor task files (*.yaml)")
    return tasks


def _holds_telemetry(path: Path) -> bool:
    sources, _ = discover([path])
    return bool(sources)


def _holds_tasks(paths: list[str | os.PathLike[str]]) -> bool:
    for path in map(Path, paths):
        try:
            if load_tasks(path):
                return True
        except (WazaError, OSError):  # only a hint: what cannot be read is not tasks
            continue
    return False
