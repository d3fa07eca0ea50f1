"""TelemetryAnalyzer: metrics over stored telemetry or sessions in memory."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from waza.analysis.details import Prices, detail_sections
from waza.analysis.empty import unfiltered
from waza.analysis.report import build_report
from waza.engine import open_engine
from waza.engine.base import Engine
from waza.engine.slicing import Slice
from waza.errors import InputChangedError, UnreadableInputError
from waza.model import SessionTelemetry
from waza.store.sources import READ_ATTEMPTS, Problem, Source, discover, is_url
from waza.tasks.eval_input import to_eval_input

log = logging.getLogger("waza.telemetry")

PathLike = str | os.PathLike[str]
T = TypeVar("T")


class TelemetryAnalyzer:
    """Computes the runtime metrics; the same definitions serve files and in-memory sessions.

    ``engine`` is ``"duckdb"`` (in this process, the default) or ``"spark"``
    (local mode, or the cluster at ``master``); both give the same report.
    ``memory_limit`` bounds DuckDB's memory (default 640MB); beyond it, it spills to disk.
    """

    def __init__(
        self,
        *,
        strict: bool = False,
        engine: str = "duckdb",
        master: str | None = None,
        memory_limit: str | None = None,
    ):
        self.strict = strict
        self.engine = engine
        self.master = master
        self.memory_limit = memory_limit

    def _engine(self) -> Engine:
        return open_engine(self.engine, master=self.master, memory_limit=self.memory_limit)

    def analyze_file(
        self, path: PathLike, skill_filter: str | None = None, *, scope: Slice | None = None
    ) -> dict[str, Any]:
        """Analyze a file or folder of any supported format, read in place."""
        report = self.analyze_paths([path], skill_filter, scope=scope)
        for problem in report["input"]["problems"]:
            log.warning("skipped %s:%s: %s", problem["path"], problem["line"], problem["reason"])
        return report

    def analyze_paths(
        self,
        paths: Iterable[PathLike],
        skill_filter: str | None = None,
        progress: Callable[[float], None] | None = None,
        *,
        scope: Slice | None = None,
        details: bool = True,
        prices: Prices | None = None,
    ) -> dict[str, Any]:
        """Analyze files and folders; ``scope`` selects and breaks down sessions.

        A path may also be an object-store prefix (``s3a://bucket/telemetry``),
        which the Spark engine lists and reads.

        The report has figures per tool, per LLM model (costed with ``prices``) and
        per error type, read in the same pass as the sessions. ``details`` is kept
        for callers of earlier versions, which had to ask for them; it changes nothing.
        """
        scope = _scoped(scope, skill_filter)

        def report(engine: Engine, sources: list[Source], problems: list[Problem]) -> dict[str, Any]:
            return engine_report(engine, sources, problems, scope, prices=prices)

        return self.read_paths(paths, report, progress, scope.metadata_keys)

    def read_paths(
        self,
        paths: Iterable[PathLike],
        use: Callable[[Engine, list[Source], list[Problem]], T],
        progress: Callable[[float], None] | None = None,
        metadata_keys: Iterable[str] = (),
    ) -> T:
        """Load files, folders and object-store prefixes into an engine and hand it to ``use``
        with the sources read and the places that could not be; read again from the start when
        files move meanwhile (compacted, compressed, pruned)."""
        paths = list(paths)
        with self._engine() as engine:
            for attempt in range(1, READ_ATTEMPTS + 1):
                try:
                    sources, problems = self._load(engine, paths, progress, metadata_keys)
                    return use(engine, sources, problems)
                except InputChangedError:
                    if attempt == READ_ATTEMPTS:
                        raise
                    log.info("telemetry files moved while they were read; reading them again")
        raise AssertionError("unreachable")

    def _load(
        self,
        engine: Engine,
        paths: list[PathLike],
        progress: Callable[[float], None] | None,
        metadata_keys: Iterable[str],
    ) -> tuple[list[Source], list[Problem]]:
        """One reading of the files as they are listed now; ``InputChangedError`` when they moved."""
        sources, problems = discover([p for p in paths if not is_url(p)])
        # Local files listed (or failing to open) just now; a path given that never existed is no move.
        listed = {str(s.path) for s in sources} | {p.path for p in problems} - {str(Path(p)) for p in paths}
        for url in (p for p in paths if is_url(p)):
            found, missing = engine.list_prefix(str(url))
            sources += found
            problems += missing
        # A file can go between the listing and the first look at it (compacted, pruned): no damage.
        if any(problem.vanished for problem in problems if problem.path in listed):
            raise InputChangedError("files moved while they were listed")
        if self.strict and problems:
            raise UnreadableInputError(str(problems[0]))
        problems += engine.load_sources(sources, progress, metadata_keys)
        if any(problem.vanished for problem in problems if problem.path in listed):
            raise InputChangedError("files moved while they were read")
        if self.strict and problems:
            raise UnreadableInputError(str(problems[0]))
        return sources, problems

    def analyze_sessions(
        self,
        sessions: Iterable[SessionTelemetry],
        skill_filter: str | None = None,
        *,
        scope: Slice | None = None,
    ) -> dict[str, Any]:
        """Analyze sessions held in memory, with the same definitions as files."""
        scope = _scoped(scope, skill_filter)
        with self._engine() as engine:
            engine.load_sessions(sessions, scope.metadata_keys)
            report = build_report(engine.summary(scope), scope=scope)
            return report | detail_sections(engine.details(scope), None)

    def to_eval_input(self, session: SessionTelemetry) -> dict[str, Any]:
        return to_eval_input(session)


def engine_report(
    engine: Engine,
    sources: list[Source],
    problems: list[Problem],
    scope: Slice,
    *,
    prices: Prices | None = None,
) -> dict[str, Any]:
    """The report of the sessions in ``scope`` of a loaded engine (see docs/report.md)."""
    summary = engine.summary(scope)
    found = engine.details(scope)
    # An empty report says what the input holds, so that a filter's slip can be shown.
    held = engine.summary(Slice(top=0)) if not summary.totals.sessions else None
    report = build_report(summary, scope=scope, sources=sources, problems=problems)
    if held is not None:
        report["input"]["unfiltered"] = unfiltered(held, scope, sources)
    report.update(detail_sections(found, prices))
    return report


def _scoped(scope: Slice | None, skill_filter: str | None) -> Slice:
    scope = scope or Slice()
    return dataclasses.replace(scope, skill=skill_filter) if skill_filter is not None else scope
