"""The embedded engine: DuckDB reads the telemetry files in place and computes the metrics."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from waza.engine import sql
from waza.engine.slicing import DEFAULT_USER_KEY, Condition, Slice
from waza.model import SessionTelemetry, session_events
from waza.store.codec import encode_line
from waza.store.compaction import parts_path
from waza.store.reader import event_lines, session_records
from waza.store.sources import EVENT_FORMATS, Format, Problem, Source

Progress = Callable[[float], None]


@dataclass
class Figures:
    """Every figure of one group of sessions, as the engine computed it."""

    sessions: int = 0
    completed: int = 0
    succeeded: int = 0
    duration_ms: int = 0  # sum over completed sessions
    tool_calls: int = 0
    estimated: float = 0.0  # sessions weighted by 1/sample rate
    abandoned: int = 0
    events_dropped: int = 0
    values_truncated: int = 0
    users: int = 0
    duration_percentiles: list[float] | None = None  # p50, p90, p95, p99 of completed sessions
    first_start: datetime | None = None
    last_end: datetime | None = None

    @property
    def avg_duration_ms(self) -> float | None:
        return self.duration_ms / self.completed if self.completed else None


@dataclass
class Summary:
    """What the metric queries return; the report layer turns it into figures."""

    totals: Figures
    per_skill: dict[str, Figures]
    breakdown: dict[str | None, Figures] | None
    per_day: list[dict[str, Any]]
    slowest: list[tuple[str, str | None, int]]
    most_tools: list[tuple[str, str | None, int]]


class DuckDBEngine:
    """Folds stored telemetry into a ``sessions`` table and runs the metric queries on it."""

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None):
        self._con = duckdb.connect()
        # Timestamps without an offset mean UTC, whatever the machine's zone.
        self._con.execute("SET TimeZone = 'UTC'")
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self._con.execute("SET memory_limit = ?", [memory_limit])
        self._con.execute("SET preserve_insertion_order = false")
        self._scratch = tempfile.TemporaryDirectory(prefix="waza-")
        self._salvaged: dict[str, str] = {}  # scratch copy -> the damaged file it came from
        self._metadata: dict[str, str] = {}  # metadata key -> its column in the sessions view
        self._event_sources: list[Source] = []
        self._con.execute("SET temp_directory = ?", [str(Path(self._scratch.name) / "spill")])

    def close(self) -> None:
        self._con.close()
        self._scratch.cleanup()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- loading -----------------------------------------------------------

    def load_sources(
        self,
        sources: list[Source],
        progress: Progress | None = None,
        metadata_keys: Iterable[str] = (DEFAULT_USER_KEY,),
    ) -> list[Problem]:
        """Read every source into the sessions view; returns the places that could not be read.

        ``metadata_keys`` are the metadata values kept per session for slicing.
        """
        keys = [*sql.SAMPLING_KEYS, *(k for k in metadata_keys if k not in sql.SAMPLING_KEYS)]
        self._metadata = {key: f"m_{index}" for index, key in enumerate(keys)}
        problems: list[Problem] = []
        try:
            self._create_tables(sources, progress)
        except duckdb.Error:
            # Some file breaks the scan as a whole: find it, salvage it, scan again.
            sources = self._isolate(sources, problems)
            self._create_tables(sources, progress)
        problems.extend(self._explain_bad_rows(sources))
        self._event_sources = [s for s in sources if s.format in EVENT_FORMATS]
        return problems

    def _create_tables(self, sources: list[Source], progress: Progress | None) -> None:
        events = [s for s in sources if s.format in EVENT_FORMATS]
        records = [s for s in sources if s.format not in EVENT_FORMATS]
        self._run(
            "CREATE OR REPLACE TEMP TABLE event_sessions AS " + self._event_sessions_sql(events),
            progress,
            sum(source.size for source in events),
        )
        self._con.execute(
            "CREATE OR REPLACE TEMP TABLE session_records AS " + self._session_records_sql(records)
        )
        view = sql.fill(
            sql.SESSIONS_VIEW,
            metadata_columns=", ".join(
                f"meta[{index}] AS {name}" for index, name in enumerate(self._metadata.values(), start=1)
            ),
            sample_rate="meta[1]",  # the sampling keys come first
            keep_errors="meta[2]",
        )
        self._con.execute("CREATE OR REPLACE TEMP TABLE sessions AS " + view)

    def _paths(self) -> str:
        """A SQL list of the JSON paths of the metadata keys kept."""
        return "[" + ", ".join(sql.literal("$." + json.dumps(key)) for key in self._metadata) + "]"

    def load_sessions(
        self, sessions: Iterable[SessionTelemetry], metadata_keys: Iterable[str] = (DEFAULT_USER_KEY,)
    ) -> None:
        """Fill the sessions view from objects in memory.

        The sessions are written out as an event log and read back by the same
        SQL as files, so that both paths share every definition.
        """
        scratch = Path(self._scratch.name) / "in-memory.jsonl"
        with open(scratch, "wb") as out:
            for session in sessions:
                for event in session_events(session):
                    out.write(encode_line(event.to_dict()) + b"\n")
        self.load_sources(
            [Source(scratch, Format.EVENTS, False, scratch.stat().st_size)], None, metadata_keys
        )

    # -- metrics -----------------------------------------------------------

    def summary(self, scope: Slice | None = None) -> Summary:
        """Every figure over the sessions in ``scope``."""
        scope = scope or Slice()
        where = self._condition(scope)
        users = self._metadata.get(scope.user_key, "NULL")
        breakdown = {None: "NULL", "skill": "skill_name", "day": "(start_time AT TIME ZONE 'UTC')::DATE"}.get(
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
        cursor = self._con.execute(figures_sql, where.params)
        columns = [d[0] for d in cursor.description]
        totals, per_skill, per_key = Figures(), {}, {}
        for row in cursor.fetchall():
            record = dict(zip(columns, row, strict=True))
            by_skill, by_key, skill, key = (
                record.pop(c) for c in ("by_skill", "by_key", "skill_name", "breakdown")
            )
            figures = _figures(record)
            if not by_skill:
                if skill is not None:
                    per_skill[skill] = figures
            elif not by_key:
                per_key[key] = figures
            else:
                totals = figures
        day_sql = sql.fill(sql.PER_DAY, where=where.sql, users=users)
        cursor = self._con.execute(day_sql, where.params)
        day_columns = [d[0] for d in cursor.description]
        per_day = [dict(zip(day_columns, row, strict=True)) for row in cursor.fetchall()]
        top = {"where": where.sql, "limit": int(scope.top)}
        return Summary(
            totals=totals,
            per_skill=dict(sorted(per_skill.items())),
            breakdown=dict(sorted(per_key.items(), key=lambda item: (item[0] is None, item[0] or "")))
            if scope.by
            else None,
            per_day=per_day,
            slowest=self._con.execute(sql.fill(sql.SLOWEST, **top), where.params).fetchall(),
            most_tools=self._con.execute(sql.fill(sql.MOST_TOOLS, **top), where.params).fetchall(),
        )

    def details(self, scope: Slice | None = None) -> dict[str, list[dict[str, Any]]]:
        """Per tool, per model and per error type, over the sessions in ``scope``.

        Reads the event log a second time, for its tool, LLM and error events only.
        """
        where = self._condition(scope or Slice())
        scans = _event_scans(self._event_sources, sql.DETAIL_SCAN, sql.PARQUET_DETAIL_SCAN)
        scan = " UNION ALL ".join(scans) if scans else _EMPTY_DETAILS
        self._con.execute(sql.fill(sql.DETAILS, scan=scan, where=where.sql), where.params)
        top_errors = dict(self._con.execute(sql.TOOL_ERRORS).fetchall())
        tools = [row | {"top_error": top_errors.get(row["tool"])} for row in self._records(sql.TOOLS)]
        return {"tools": tools, "llm": self._records(sql.LLM), "errors": self._records(sql.ERRORS)}

    def _records(self, statement: str) -> list[dict[str, Any]]:
        cursor = self._con.execute(statement)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def _condition(self, scope: Slice) -> Condition:
        parts, params = ["true"], {}
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
            parts.append(f"{self._metadata[key]} = $where_{index}")
            params[f"where_{index}"] = value
        return Condition(" AND ".join(parts), params)

    # -- internals ---------------------------------------------------------

    def _event_sessions_sql(self, sources: list[Source]) -> str:
        stores = [s for s in sources if s.format is Format.PARQUET]
        # A compacted store keeps its sessions folded; the rest is folded here.
        folded = [s for s in stores if parts_path(s.path).exists()]
        unfolded = [s for s in sources if s not in folded]
        parts = []
        if unfolded or not folded:
            scans = _event_scans(unfolded, sql.EVENT_SCAN, sql.PARQUET_SCAN) or [_EMPTY_EVENTS]
            parts.append(sql.fill(sql.SESSION_PARTS, scan=" UNION ALL BY NAME ".join(scans)))
        if folded:
            files = ", ".join(sql.literal(str(parts_path(s.path))) for s in folded)
            parts.append(sql.fill(sql.PARTS_FILES, files=f"[{files}]"))
        if len(parts) == 1 and not folded:  # one fold over the whole event log: each part is a session
            return sql.fill(sql.ONE_PART, parts=parts[0], paths=self._paths())
        single = sql.fill(
            sql.ONE_PART, parts="SELECT * FROM parts ANTI JOIN split USING (session_id)", paths=self._paths()
        )
        return sql.fill(
            sql.MERGE_PARTS, parts=" UNION ALL BY NAME ".join(parts), single=single, paths=self._paths()
        )

    def _session_records_sql(self, sources: list[Source]) -> str:
        scans = []
        for files, compression in _groups([s for s in sources if s.format is Format.SESSION_LINES]):
            scans.append(sql.fill(sql.SESSION_LINES_SCAN, files=files, compression=compression))
        documents = [s for s in sources if s.format in (Format.EXPORT, Format.SESSION_LIST)]
        for files, compression in _groups(documents):
            # A document is one JSON value; let it be as large as the largest file.
            largest = max(s.size for s in documents) * (20 if compression == "gzip" else 1)
            scans.append(
                sql.fill(
                    sql.SESSION_DOCUMENT_SCAN, files=files, compression=compression, max_size=largest + 1024
                )
            )
        columns = sql.fill(sql.RECORD_METADATA, paths=self._paths())
        if not scans:
            return sql.fill(sql.SESSION_RECORDS, scan=_EMPTY_RECORDS, metadata_columns=columns) + " LIMIT 0"
        return sql.fill(sql.SESSION_RECORDS, scan=" UNION ALL ".join(scans), metadata_columns=columns)

    def _isolate(self, sources: list[Source], problems: list[Problem]) -> list[Source]:
        """Scan each file alone; one that fails is replaced by what Python can salvage of it."""
        readable = []
        for source in sources:
            try:
                self._create_tables([source], None)
                readable.append(source)
            except duckdb.Error as exc:
                readable.append(self._salvage(source, problems, exc))
        return readable

    def _salvage(self, source: Source, problems: list[Problem], exc: duckdb.Error) -> Source:
        """Rewrite what Python can still read of a damaged file as a clean event log."""
        found: list[Problem] = []
        if source.format in EVENT_FORMATS:
            events: Iterator = event_lines(source, found)
        else:
            events = (e for s in session_records(source, found) for e in session_events(s))
        target = Path(self._scratch.name) / f"salvaged-{len(self._salvaged)}.jsonl"
        with open(target, "wb") as out:
            for event in events:
                out.write(encode_line(event.to_dict()) + b"\n")
        if not found:
            found.append(Problem(str(source.path), None, _first_line(exc)))
        problems.extend(found)
        self._salvaged[str(target)] = str(source.path)
        return Source(target, Format.EVENTS, False, target.stat().st_size)

    def _explain_bad_rows(self, sources: list[Source]) -> list[Problem]:
        """Name the line of every unreadable record; only files that have one are re-read."""
        counts = dict(self._con.execute(sql.BAD_RECORD_FILES).fetchall())
        (bad_rows,) = self._con.execute("SELECT coalesce(sum(bad_rows), 0) FROM event_sessions").fetchone()
        if bad_rows:  # clean data pays for no second look
            events = [s for s in sources if s.format is Format.EVENTS]
            for files, compression in _groups(events):
                statement = sql.fill(sql.BAD_EVENT_FILES, files=files, compression=compression)
                counts.update(self._con.execute(statement).fetchall())
        problems: list[Problem] = []
        for source in sources:
            bad = counts.get(str(source.path))
            if not bad or str(source.path) in self._salvaged:
                continue
            found: list[Problem] = []
            if source.format in EVENT_FORMATS:
                for _ in event_lines(source, found):
                    pass
            else:
                for _ in session_records(source, found):
                    pass
            problems.extend(found or [Problem(str(source.path), None, f"{bad} unreadable records")])
        return problems

    def _run(self, statement: str, progress: Progress | None, total_bytes: int) -> None:
        """Execute; while it runs, report the share of the input read so far.

        DuckDB gives no progress estimate for JSON scans, so the share is the
        bytes this process has read (Linux ``/proc/self/io``) over the input's size.
        """
        if progress is None:
            self._con.execute(statement)
            return
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self._con.execute(statement)
            except BaseException as exc:  # re-raised on the calling thread
                failure.append(exc)

        worker = threading.Thread(target=work, daemon=True)
        start = _bytes_read()
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            now = _bytes_read()
            if start is not None and now is not None and total_bytes:
                progress(min(99.0, 100.0 * (now - start) / total_bytes))
        progress(100.0)
        if failure:
            raise failure[0]


_EMPTY_DETAILS = (
    "SELECT NULL::VARCHAR AS session_id, NULL::VARCHAR AS event_type, "
    f"NULL::{sql.DETAIL_FIELDS} AS data LIMIT 0"
)
_EMPTY_RECORDS = "SELECT NULL::VARCHAR AS filename, NULL::JSON AS s"
_EMPTY_EVENTS = (
    "SELECT NULL::TIMESTAMPTZ AS timestamp, NULL::VARCHAR AS event_type, "
    f"NULL::VARCHAR AS skill_name, NULL::{sql.DATA_FIELDS} AS data, NULL::VARCHAR AS session_id LIMIT 0"
)


def _event_scans(sources: list[Source], log_scan: str, parquet_scan: str) -> list[str]:
    """One scan per compression of event-log files, and one for compacted Parquet."""
    logs = [s for s in sources if s.format is Format.EVENTS]
    scans = [sql.fill(log_scan, files=files, compression=c) for files, c in _groups(logs)]
    parquet = [sql.literal(str(s.path)) for s in sources if s.format is Format.PARQUET]
    if parquet:
        scans.append(sql.fill(parquet_scan, files="[" + ", ".join(parquet) + "]"))
    return scans


def _groups(sources: list[Source]) -> Iterator[tuple[str, str]]:
    """SQL lists of file names by compression, as DuckDB wants one compression per scan."""
    for compressed in (False, True):
        files = [sql.literal(str(s.path)) for s in sources if s.compressed is compressed]
        if files:
            yield "[" + ", ".join(files) + "]", ("gzip" if compressed else "none")


def _figures(record: dict[str, Any]) -> Figures:
    numbers = {
        k: (float(v) if k == "estimated" else int(v))
        for k, v in record.items()
        if k not in ("duration_percentiles", "first_start", "last_end") and v is not None
    }
    return Figures(
        **numbers,
        duration_percentiles=record["duration_percentiles"],
        first_start=record["first_start"],
        last_end=record["last_end"],
    )


def _bytes_read() -> int | None:
    """Bytes this process has read from files so far, where the OS tells."""
    try:
        with open("/proc/self/io", encoding="ascii") as counters:
            for line in counters:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _first_line(exc: Exception) -> str:
    return f"cannot read: {str(exc).strip().splitlines()[0]}"
