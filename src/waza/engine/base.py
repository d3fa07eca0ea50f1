"""What every engine shares: loading sources into a ``sessions`` table, and the metric queries.

An engine folds stored telemetry into a ``sessions`` table; from there on the
statements of ``sql.py`` compute every figure, the same on each engine. An
engine supplies how to load, how to run a statement and how to keep a result.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from waza.engine import rolled, rollup_sql, sql
from waza.engine.results import Progress, Rows, Summary, figures_by_group
from waza.engine.salvage import Salvage, first_line
from waza.engine.slicing import DEFAULT_USER_KEY, Condition, Slice
from waza.engine.snapshot import Snapshot
from waza.errors import UsageError
from waza.model import SessionTelemetry, session_events
from waza.store.codec import bounded_line
from waza.store.sources import TRANSLATED_FORMATS, Format, Problem, Source


class Engine(ABC):
    """Loads sources into a ``sessions`` table and answers the metric queries on it."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()  # files are read as they were listed (see snapshot.py)
        self._salvage = Salvage()
        self._metadata: dict[str, str] = {}  # metadata key -> its column in the sessions table
        self._event_sources: list[Source] = []  # the event files loaded: set by each engine's _load

    def close(self) -> None:
        self._snapshot.release()
        self._salvage.cleanup()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what each engine supplies ------------------------------------------

    @abstractmethod
    def _load(self, sources: list[Source], progress: Progress | None) -> list[Problem]:
        """Create the ``sessions`` table from the sources; return what could not be read."""

    @abstractmethod
    def _rows(self, statement: str, params: dict[str, object] | None = None) -> Rows:
        """Column names and rows of one statement of ``sql.py``."""

    @abstractmethod
    def _keep(self, name: str, statement: str, params: dict[str, object] | None = None) -> None:
        """Keep the result of a statement as a table later statements read."""

    @abstractmethod
    def _view(self, name: str, statement: str) -> None:
        """Name a statement that later statements read, computed each time they do."""

    def _keep_large(self, name: str, statement: str, params: dict[str, object] | None = None) -> None:
        """``_keep`` for a table that may hold about as many rows as the input has events."""
        self._keep(name, statement, params)

    # -- loading -----------------------------------------------------------

    def list_prefix(self, url: str) -> tuple[list[Source], list[Problem]]:
        """The telemetry files under an object-store prefix, for engines that read such stores."""
        raise UsageError(f"{url} is an object-store prefix: analyze it with --engine spark")

    def load_sources(
        self,
        sources: list[Source],
        progress: Progress | None = None,
        metadata_keys: Iterable[str] = (DEFAULT_USER_KEY,),
    ) -> list[Problem]:
        """Read every source into the sessions table; returns the places that could not be read.

        ``metadata_keys`` are the metadata values kept per session for slicing.
        """
        self._snapshot.release()
        sources = self._snapshot.pin(sources)
        self._keep_metadata(metadata_keys)
        translated: list[Problem] = []
        rewrite = self._salvage.rewrite
        sources = [rewrite(s, translated) if s.format in TRANSLATED_FORMATS else s for s in sources]
        problems = translated + self._load(sources, progress)
        return [self._snapshot.original(problem) for problem in problems]

    def _keep_metadata(self, keys: Iterable[str]) -> None:
        """Keep these metadata values, and the sampling ones, per session (columns m_0, m_1, ...)."""
        keys = [*sql.SAMPLING_KEYS, *(k for k in keys if k not in sql.SAMPLING_KEYS)]
        self._metadata = {key: f"m_{index}" for index, key in enumerate(keys)}

    def load_sessions(
        self, sessions: Iterable[SessionTelemetry], metadata_keys: Iterable[str] = (DEFAULT_USER_KEY,)
    ) -> None:
        """Fill the sessions table from objects in memory.

        The sessions are written out as an event log and read back by the same
        SQL as files, so that both paths share every definition.
        """
        scratch = self._salvage.scratch_file("in-memory.jsonl")
        with open(scratch, "wb") as out:
            for session in sessions:
                for event in session_events(session):
                    out.write(bounded_line(event.to_dict())[0] + b"\n")
        self.load_sources(
            [Source(scratch, Format.EVENTS, False, scratch.stat().st_size)], None, metadata_keys
        )

    def _fold(self, events: str | None, stored_parts: str | None) -> str:
        """Sessions from a query of events to fold and one of parts compaction folded (either may be None)."""
        # Tool-call ids are kept only where parts are combined, to count a call in two stores once.
        tool_ids = sql.NO_TOOL_IDS if stored_parts is None else sql.TOOL_IDS
        parts = [sql.fill(sql.SESSION_PARTS, scan=events, tool_ids=tool_ids)] if events is not None else []
        if stored_parts is None:  # one fold over the whole event log: each part is a session
            return sql.fill(sql.ONE_PART, parts=parts[0], meta=self._meta("metadata"))
        single = sql.fill(
            sql.ONE_PART,
            parts="SELECT * FROM parts ANTI JOIN split USING (session_id)",
            meta=self._meta("metadata"),
        )
        return sql.fill(
            sql.MERGE_PARTS,
            parts=" UNION ALL ".join([*parts, stored_parts]),
            single=single,
            first_meta=self._meta("arg_min(metadata, started_at)"),
        )

    @abstractmethod
    def _meta(self, document: str) -> str:
        """The kept metadata values of a JSON document, as a list in column order."""

    def _sessions_statement(self, event_sessions: str, records: str = "session_records") -> str:
        """The sessions table over a query of sessions folded from events and the session records."""
        return sql.fill(
            sql.SESSIONS_VIEW,
            event_sessions=event_sessions,
            records=records,
            metadata_columns=", ".join(
                f"meta[{index}] AS {name}" for index, name in enumerate(self._metadata.values(), start=1)
            ),
            sample_rate="meta[1]",  # the sampling keys come first
            keep_errors="meta[2]",
        )

    def _json_paths(self) -> list[str]:
        """The JSON path of each metadata key kept, in column order."""
        return ["$." + json.dumps(key) for key in self._metadata]

    # -- metrics -----------------------------------------------------------

    def summary(self, scope: Slice | None = None) -> Summary:
        """Every figure over the sessions in ``scope``."""
        scope = scope or Slice()
        if rolled.covers(scope) and self._rolled():
            return rolled.summary(self, scope)
        where = self._condition(scope)
        users = self._metadata.get(scope.user_key, "NULL")
        breakdown = {None: "NULL", "skill": "skill_name", "day": "day"}.get(
            scope.by, self._metadata.get(scope.by or "", "NULL")
        )
        figures_sql = sql.fill(
            sql.FIGURES,
            where=where.sql,
            users=users,
            breakdown=f"({breakdown})::VARCHAR",
            breakdown_set=", (breakdown)" if scope.by else "",
            by_key="grouping(breakdown)" if scope.by else "1",
            breakdown_value="breakdown" if scope.by else "NULL",
        )
        totals, per_skill, breakdown = figures_by_group(self._records(figures_sql, where.params), scope.by)
        per_day = self._records(sql.fill(sql.PER_DAY, where=where.sql, users=users), where.params)
        top = {"where": where.sql, "limit": int(scope.top)}
        return Summary(
            totals=totals,
            per_skill=per_skill,
            breakdown=breakdown,
            per_day=per_day,
            slowest=self._rows(sql.fill(sql.SLOWEST, **top), where.params)[1],
            most_tools=self._rows(sql.fill(sql.MOST_TOOLS, **top), where.params)[1],
        )

    def details(self, scope: Slice | None = None) -> dict[str, list[dict[str, Any]]]:
        """Per tool, per model and per error type, over the sessions in ``scope``.

        Reads compacted Parquet, and event logs a second time, for their tool, LLM and error events.
        """
        scope = scope or Slice()
        if rolled.covers(scope) and self._rolled():
            return rolled.details(self, scope)
        self._keep_details(scope)
        top_errors = dict(self._rows(sql.TOOL_ERRORS)[1])
        tools = [row | {"top_error": top_errors.get(row["tool"])} for row in self._records(sql.TOOLS)]
        # Kept apart from SKILLS_LOADED: with its window and aggregates in one statement, DuckDB ran
        # out of memory on 10^7 sessions.
        self._keep_large("loaded_rows", sql.fill(sql.LOADED_ROWS, details="details", carry=""))
        self._keep("skill_sessions", sql.SKILL_SESSIONS)
        return {
            "tools": tools,
            "skills_loaded": self._records(sql.SKILLS_LOADED),
            "llm": self._records(sql.LLM),
            "errors": self._records(sql.ERRORS),
        }

    def _rolled(self) -> bool:
        """Whether a ``rolled`` table holds the report of every session loaded (see rolled.py)."""
        return False

    def _rolled_lists(self) -> int:
        """How many of the sessions that stand out the ``rolled`` table lists exactly, per group."""
        return 0

    def _rollup(self, sessions: str, details: str) -> str:
        """ROLLUP of these sessions (SESSIONS_VIEW rows) and their details (as the ``details`` view
        gives them: with their session's day and skill, see rollup_sql.WITH_GROUPS)."""
        users = self._metadata[DEFAULT_USER_KEY]
        self._keep("rollup_sessions", f"SELECT *, {users} AS users FROM ({sessions}) WHERE counted")
        self._view("rollup_details", details)
        for name, statement in rollup_sql.PREPARED.items():
            self._keep(name, statement)
        return sql.fill(rollup_sql.ROLLUP, listed=rollup_sql.LISTED_PER_GROUP)

    def _alone_sessions(self, parts: str) -> str:
        """Sessions of parts compaction found whole (PART_COLUMNS rows), each one session."""
        one = sql.fill(sql.ONE_PART, parts=parts, meta=self._meta("metadata"))
        return self._sessions_statement(one, records="(SELECT * FROM session_records LIMIT 0)")

    def latest_failed(self, scope: Slice, limit: int) -> list[tuple[str, str | None, int | None]]:
        """(session_id, skill_name, duration_ms) of the ``limit`` latest failed sessions of ``scope``."""
        where = self._condition(scope)
        return self._rows(sql.fill(sql.LATEST_FAILED, where=where.sql, limit=int(limit)), where.params)[1]

    def duration_bins(self, scope: Slice, per_decade: int) -> list[tuple[int, int]]:
        """(bin, sessions) of completed sessions by duration on a log scale (see ``sql.DURATION_BINS``)."""
        where = self._condition(scope)
        statement = sql.fill(sql.DURATION_BINS, where=where.sql, per_decade=int(per_decade))
        return self._rows(statement, where.params)[1]

    def outcomes(self, scope: Slice | None = None) -> Iterator[Rows]:
        """Per completed session of ``scope``, in batches: (session_id, start_time, skill_name, success,
        duration_ms, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens), a
        row per model it called (model and tokens null when it called none).
        """
        where = self._keep_details(scope or Slice())
        return self._batches(sql.fill(sql.OUTCOMES, where=where.sql), where.params)

    def _keep_details(self, scope: Slice) -> Condition:
        """Keep the ``details`` table of the sessions in ``scope``: their tool, LLM and error events,
        each once."""
        where = self._condition(scope)
        self._keep_large(
            "detail_rows",
            sql.fill(
                sql.DETAILS if where.params else sql.ALL_DETAILS,
                rows=self._detail_rows(),
                sessions="sessions",
                where=where.sql,
                groups="",
            ),
            where.params,
        )
        self._view("details", sql.ONCE_DETAILS)
        return where

    @abstractmethod
    def _detail_rows(self) -> str:
        """A query of the tool, LLM and error events of the sources loaded, in the columns of
        ``sql.DETAIL_ROWS``."""

    # -- sessions for eval tasks ------------------------------------------------

    def catalog(
        self, scope: Slice, outcome: bool | None, seed: int, weights: dict[str, Any]
    ) -> Iterator[Rows]:
        """The completed sessions of ``scope`` (and ``outcome``), ranked to pick tasks from, in batches.

        Rows are (session_id, start_time, skill_name, duration_ms, success, prompt, error, tools,
        same_tools, same_skill, slow_limit, total, rank); ``weights`` gives the selection's
        thresholds and order.
        """
        where = self._condition(scope)
        condition = where.sql + ("" if outcome is None else f" AND success = {str(outcome).lower()}")
        statement = sql.fill(sql.CATALOG, where=condition, scan=self._catalog_scan(), **weights)
        seeded = {"seed": str(seed)} if "$seed" in statement else {}
        return self._batches(statement, where.params | seeded)

    def answers(self, task_key: str) -> Iterator[list[tuple]]:
        """(session_id, start_time, the ``task_key`` metadata value, prompt) of every session, in batches;
        ``task_key`` must have been among the metadata keys the sources were loaded with."""
        statement = sql.fill(sql.ANSWERS, scan=self._catalog_scan(), task_column=self._metadata[task_key])
        return (batch for _, batch in self._batches(statement))

    def picked_events(self, session_ids: list[str]) -> list[tuple]:
        """Every event of these sessions: (timestamp, event_type, skill_name, data as JSON text,
        session_id, event_id)."""
        return self._picked_events(session_ids) if session_ids else []

    @abstractmethod
    def _catalog_scan(self) -> str:
        """A query of the session.started, session.ended and tool.called events of the sources loaded,
        with ``data`` holding prompt, error and tool."""

    @abstractmethod
    def _batches(self, statement: str, params: dict[str, object] | None = None) -> Iterator[Rows]:
        """The rows of a statement a batch at a time, so that a large result is never held whole."""

    @abstractmethod
    def _picked_events(self, session_ids: list[str]) -> list[tuple]:
        """See ``picked_events``."""

    def _records(self, statement: str, params: dict[str, object] | None = None) -> list[dict[str, Any]]:
        columns, rows = self._rows(statement, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _condition(self, scope: Slice) -> Condition:
        parts, params = ["counted"], {}
        if scope.skill is not None:
            parts.append("skill_name = $skill")
            params["skill"] = scope.skill
        if scope.since is not None:
            parts.append("start_time >= $since")
            params["since"] = scope.since
        if scope.until is not None:
            parts.append("start_time < $until")
            params["until"] = scope.until
        for index, (key, value) in enumerate(scope.where):
            column, name = self._metadata[key], f"where_{index}"
            parts.append(_equals(column, f"${name}", value))
            params[name] = _comparable(value)
        return Condition(" AND ".join(parts), params)

    # -- damaged input -------------------------------------------------------

    def _isolate(self, sources: list[Source], problems: list[Problem]) -> list[Source]:
        """Read each file alone; one the engine fails on is replaced by what Python can salvage of it."""
        readable = []
        for source in sources:
            try:
                self._read_alone(source)
                readable.append(source)
            except self._read_errors() as error:
                if source.url:  # out of the Python reader's reach
                    problems.append(Problem(source.url, None, f"cannot read: {first_line(error)}"))
                else:
                    readable.append(self._salvage.rewrite(source, problems, error))
        return readable

    @abstractmethod
    def _read_alone(self, source: Source) -> None:
        """Read one source as loading would; raise one of ``_read_errors`` when the engine cannot."""

    @abstractmethod
    def _read_errors(self) -> tuple[type[Exception], ...]:
        """The errors with which the engine says a file cannot be read."""


def _equals(column: str, param: str, value: str) -> str:
    """A metadata value compared as people mean it: true/True alike, 1 and 1.0 alike, text exactly."""
    if value.strip().lower() in ("true", "false"):
        return f"lower({column}) = {param}"
    if _number(value) is not None:
        return f"TRY_CAST({column} AS DOUBLE) = {param}"
    return f"{column} = {param}"


def _comparable(value: str) -> str | float:
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower()
    number = _number(value)
    return value if number is None else number


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None  # not NaN or infinite
