"""Replaying tasks through the user's skill function, each in a process of its own.

The function is called as ``function(prompt, session)``: ``session`` is a
session handle (``collector.session(...)``) tagged with the task id, the
return value is the output, and an exception ends the session with that
error, which fails the task. A
process of its own per task lets a hanging function be stopped at the timeout
without stopping the others; everything is recorded into one folder, which
``waza check`` then grades. A task's ``command_mocks`` answer the command-line
tools it calls, in its process only (see ``mocks.py``).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waza.capture.collector import RuntimeCollector
from waza.errors import WazaError
from waza.store.folder_sink import FolderSink
from waza.tasks.grading import TASK_KEY, RunError
from waza.tasks.mocks import install_shims


def resolve(entrypoint: str) -> Callable[..., Any]:
    """``module:function`` as a function; the current folder is importable, as in other runners."""
    module_name, _, attribute = entrypoint.partition(":")
    if not module_name or not attribute:
        raise WazaError(f"entrypoint {entrypoint!r} is not module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise WazaError(f"cannot load {entrypoint}: {error}") from None
    if not callable(target):
        raise WazaError(f"{entrypoint} is not callable")
    return target


def replay(
    tasks: list[dict[str, Any]], entrypoint: str, directory: Path, *, workers: int = 1, timeout: float = 60.0
) -> dict[str, RunError]:
    """Run every enabled task; returns the tasks whose process timed out or died, and how."""
    resolve(entrypoint)  # fail here, once, rather than in every process
    context = multiprocessing.get_context("spawn")
    pending = [task for task in tasks if task.get("enabled") is not False]
    running: dict[str, tuple[Any, float]] = {}
    failures: dict[str, RunError] = {}
    while pending or running:
        while pending and len(running) < workers:
            task = pending.pop(0)
            process = context.Process(target=_run, args=(entrypoint, task, str(directory)), daemon=True)
            process.start()
            running[str(task["id"])] = (process, time.monotonic() + timeout)
        for task_id, (process, deadline) in list(running.items()):
            if not process.is_alive():
                process.join()
                if process.exitcode != 0:
                    failures[task_id] = RunError(
                        "Crash", f"the replay process stopped with exit code {process.exitcode}"
                    )
            elif time.monotonic() > deadline:
                process.kill()
                process.join()
                failures[task_id] = RunError("Timeout", f"timed out after {timeout:g} s")
            else:
                continue
            del running[task_id]
        time.sleep(0.02)
    return failures


def _run(entrypoint: str, task: dict[str, Any], directory: str) -> None:
    """In the task's own process: one session, recorded and flushed before the process ends."""
    function = resolve(entrypoint)
    if task.get("command_mocks"):  # the recorded answers, not the real tools
        install_shims(task["command_mocks"], Path(tempfile.mkdtemp(prefix="waza-mocks-")))
    skill = (task.get("provenance") or {}).get("skill")
    prompt = task["inputs"]["prompt"]
    # The recording is graded as soon as every task ran: no compaction in the background.
    sink = FolderSink(directory, compact=False)
    with RuntimeCollector(sink=sink, flush_interval=0.1) as collector:
        try:
            with collector.session(prompt, {TASK_KEY: str(task["id"])}, skill_name=skill) as session:
                result = function(prompt, session)
                session.output = "" if result is None else str(result)
        except Exception:  # the session recorded it as its error, which grading reports
            pass
