"""The embedded engine: DuckDB reads the telemetry files in place and computes the metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from waza.engine import sql
from waza.engine.base import Engine
from waza.engine.results import Progress, Rows
from waza.engine.salvage import first_line
from waza.errors import InputChangedError, UsageError
from waza.store.compacted import details_path, parts_path
from waza.store.sources import EVENT_FORMATS, Format, Problem, Source

RECORD_FORMATS = (Format.SESSION_LINES, Format.EXPORT, Format.SESSION_LIST)

# What DuckDB may hold in memory before it spills to scratch space: with the
# interpreter and the report around it, an analysis stays under 1 GB.
DEFAULT_MEMORY_LIMIT = "768MB"
_BATCH_ROWS = 10_000


class DuckDBEngine(Engine):
    """Reads the telemetry files in place; the default engine."""

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None):
        super().__init__()
        self._record_sources: list[Source] = []
        self._con = duckdb.connect()
        # Timestamps without an offset mean UTC, whatever the machine's zone.
        self._con.execute("SET TimeZone = 'UTC'")
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        try:
            self._con.execute("SET memory_limit = ?", [memory_limit or DEFAULT_MEMORY_LIMIT])
        except duckdb.Error:
            raise UsageError(f"not a memory size: {memory_limit!r} (try 2GB or 512MB)") from None
        self._con.execute("SET preserve_insertion_order = false")
        self._con.execute("SET temp_directory = ?", [str(self._salvage.scratch_file("spill"))])

    def close(self) -> None:
        self._con.close()
        super().close()

    def _load(self, sources: list[Source], progress: Progress | None) -> list[Problem]:
        problems: list[Problem] = []
        try:
            self._create_tables(sources, progress)
        except duckdb.Error:
            # Some file breaks the scan as a whole: find it, salvage it, scan again.
            sources = self._isolate(sources, problems)
            with _moved_files_reported():
                self._create_tables(sources, progress)
        with _moved_files_reported():
            problems.extend(self._explain_bad_rows(sources))
        return problems

    def _rows(self, statement: str, params: dict[str, object] | None = None) -> Rows:
        with _moved_files_reported():
            cursor = self._con.execute(statement, params or {})
            return [d[0] for d in cursor.description], cursor.fetchall()

    def _keep(self, name: str, statement: str, params: dict[str, object] | None = None) -> None:
        with _moved_files_reported():
            self._con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {statement}", params or {})

    def _view(self, name: str, statement: str) -> None:
        self._con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {statement}")

    def _detail_rows(self) -> str:
        # Compaction keeps the details of what it compacts; the rest is read from the events.
        stores = [s for s in self._event_sources if s.format is Format.PARQUET]
        kept = [s for s in stores if details_path(s.path).exists()]
        read = [s for s in self._event_sources if s not in kept]
        scans = self._event_scans(read, sql.DETAIL_SCAN, sql.PARQUET_DETAIL_SCAN)
        # Sessions read whole from exports and session lists carry their events: the same details.
        types = sql.DETAIL_EVENT_TYPES
        scans += [
            sql.fill(sql.RECORD_DETAIL_SCAN, scan=s, types=types)
            for s in self._record_scans(self._record_sources)
        ]
        rows = [sql.fill(sql.DETAIL_ROWS, scan=scan) for scan in scans or [sql.EMPTY_DETAILS]]
        if kept:
            files = "[" + ", ".join(sql.literal(str(details_path(s.path))) for s in kept) + "]"
            rows.append(sql.fill(sql.DETAILS_FILES, files=files))
        return " UNION ALL ".join(rows)

    def _create_tables(self, sources: list[Source], progress: Progress | None) -> None:
        events = self._event_sources = [s for s in sources if s.format in EVENT_FORMATS]
        records = [s for s in sources if s.format not in EVENT_FORMATS]
        self._keep("session_records", self._session_records_sql(records))
        self._run(
            "CREATE OR REPLACE TEMP TABLE sessions AS "
            + self._sessions_statement(self._event_sessions_sql(events)),
            progress,
            sum(source.size for source in events),
        )

    def _paths(self) -> str:
        """A SQL list of the JSON paths of the metadata keys kept."""
        return "[" + ", ".join(sql.literal(path) for path in self._json_paths()) + "]"

    def _meta(self, document: str) -> str:
        return f"json_extract_string({document}, {self._paths()})"  # one parse gives every value

    def _event_sessions_sql(self, sources: list[Source]) -> str:
        # A compacted store keeps its sessions folded; the rest is folded here.
        folded = [s for s in sources if s.format is Format.PARQUET and parts_path(s.path).exists()]
        unfolded = [s for s in sources if s not in folded]
        events = stored = None
        if unfolded or not folded:
            scans = self._event_scans(unfolded, sql.EVENT_SCAN, sql.PARQUET_SCAN) or [sql.EMPTY_EVENTS]
            events = " UNION ALL BY NAME ".join(scans)
        if folded:
            files = "[" + ", ".join(sql.literal(str(parts_path(s.path))) for s in folded) + "]"
            columns = sql.part_columns(self._columns(files))
            stored = sql.fill(sql.PARTS_FILES, files=files, columns=columns)
        return self._fold(events, stored)

    def _event_scans(self, sources: list[Source], log_scan: str, parquet_scan: str) -> list[str]:
        """One scan per compression of event-log files, and one for compacted Parquet."""
        logs = [s for s in sources if s.format is Format.EVENTS]
        types = sql.DETAIL_EVENT_TYPES
        scans = [sql.fill(log_scan, files=files, compression=c, types=types) for files, c in _groups(logs)]
        parquet = [sql.literal(str(s.path)) for s in sources if s.format is Format.PARQUET]
        if parquet:
            files = "[" + ", ".join(parquet) + "]"
            event_id = sql.event_id_column("event_id" in self._columns(files))
            scans.append(sql.fill(parquet_scan, files=files, types=types, event_id=event_id))
        return scans

    def _batches(self, statement: str, params: dict[str, object] | None = None) -> Iterator[Rows]:
        with _moved_files_reported():
            cursor = self._con.execute(statement, params or {})
            columns = [d[0] for d in cursor.description]
            while batch := cursor.fetchmany(_BATCH_ROWS):
                yield columns, batch

    def _picked_events(self, session_ids: list[str]) -> list[tuple]:
        self._con.execute(sql.PICKED_TABLE)
        self._con.executemany(sql.PICK, [[sid] for sid in session_ids])
        scans = self._event_scans(self._event_sources, sql.PICKED_EVENTS, sql.PARQUET_PICKED_EVENTS)
        return self._rows(" UNION ALL ".join(scans))[1] if scans else []

    def _catalog_scan(self) -> str:
        scans = self._event_scans(self._event_sources, sql.CATALOG_SCAN, sql.PARQUET_CATALOG_SCAN)
        return " UNION ALL ".join(scans) if scans else sql.EMPTY_CATALOG

    def _columns(self, files: str) -> set[str]:
        """The columns any of these Parquet files has (read from their footers)."""
        with _moved_files_reported():
            return {
                name for (name,) in self._con.execute(sql.fill(sql.PARQUET_COLUMNS, files=files)).fetchall()
            }

    def _session_records_sql(self, sources: list[Source]) -> str:
        self._record_sources = [s for s in sources if s.format in RECORD_FORMATS]
        scans = self._record_scans(self._record_sources)
        columns = sql.fill(sql.RECORD_METADATA, paths=self._paths())
        if not scans:
            return (
                sql.fill(sql.SESSION_RECORDS, scan=sql.EMPTY_RECORDS, metadata_columns=columns) + " LIMIT 0"
            )
        return sql.fill(sql.SESSION_RECORDS, scan=" UNION ALL ".join(scans), metadata_columns=columns)

    def _record_scans(self, sources: list[Source]) -> list[str]:
        """One scan per kind and compression of session-shaped files: (filename, s) per session."""
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
        return scans

    def _read_alone(self, source: Source) -> None:
        self._create_tables([source], None)

    def _read_errors(self) -> tuple[type[Exception], ...]:
        return (duckdb.Error,)

    def _explain_bad_rows(self, sources: list[Source]) -> list[Problem]:
        """Name the line of every unreadable record; only files that have one are re-read."""
        counts = dict(self._con.execute(sql.BAD_RECORD_FILES).fetchall())
        (bad_rows,) = self._con.execute(sql.UNREADABLE_ROWS).fetchone()
        if bad_rows:  # clean data pays for no second look
            events = [s for s in sources if s.format is Format.EVENTS]
            for files, compression in _groups(events):
                statement = sql.fill(sql.BAD_EVENT_FILES, files=files, compression=compression)
                counts.update(self._con.execute(statement).fetchall())
        return self._salvage.name_bad_lines(sources, counts)

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


def _groups(sources: list[Source]) -> Iterator[tuple[str, str]]:
    """SQL lists of file names by compression, as DuckDB wants one compression per scan."""
    for compressed in (False, True):
        files = [sql.literal(str(s.path)) for s in sources if s.compressed is compressed]
        if files:
            yield "[" + ", ".join(files) + "]", ("gzip" if compressed else "none")


@contextmanager
def _moved_files_reported() -> Iterator[None]:
    """A file that vanished between listing and a later read (an event log is read twice) is not
    damage: the analysis is started over on the files as they are now."""
    try:
        yield
    except duckdb.IOException as error:
        raise InputChangedError(first_line(error)) from None


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
