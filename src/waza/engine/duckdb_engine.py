"""The embedded engine: DuckDB reads the telemetry files in place and computes the metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from waza.engine import rollup_sql, sql
from waza.engine.base import Engine
from waza.engine.results import Progress, Rows
from waza.engine.salvage import first_line
from waza.engine.slicing import DEFAULT_USER_KEY
from waza.errors import InputChangedError, OutOfMemoryError, SpillSpaceError, UsageError
from waza.store.compacted import (
    COMPACTED,
    details_path,
    digest_of,
    events_path,
    parts_path,
    replaced_path,
    rollup_path,
    summed_rollups,
)
from waza.store.sources import EVENT_FORMATS, Format, Problem, Source

RECORD_FORMATS = (Format.SESSION_LINES, Format.EXPORT, Format.SESSION_LIST)

# What DuckDB may hold in memory before it spills to scratch space: with the
# interpreter and what DuckDB allocates outside its limit (about 200 MB more while
# it reads JSON), an analysis stays under 1 GB; at 768MB, a raw log of 10^7
# sessions peaked at 980 MiB.
DEFAULT_MEMORY_LIMIT = "640MB"
_BATCH_ROWS = 10_000


class DuckDBEngine(Engine):
    """Reads the telemetry files in place; the default engine."""

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None):
        super().__init__()
        self._record_sources: list[Source] = []
        self._lists = 0  # see _rolled_lists
        self._staged = 0  # rows kept as Parquet (see _staged_rows)
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
        self._con.execute("SET enable_progress_bar = false")  # progress is ours to show (see _run)
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

    def _keep_large(self, name: str, statement: str, params: dict[str, object] | None = None) -> None:
        """Kept as compressed Parquet in scratch space, read back as a view: the tool, LLM and error
        events of a raw log of 10^7 sessions took more than 30 GB as a table spilled to disk."""
        self._view(name, self._staged_rows(name, statement, params))

    def _staged_rows(self, name: str, statement: str, params: dict[str, object] | None = None) -> str:
        """A query of the statement's rows, written once to zstd Parquet in scratch space."""
        self._staged += 1
        target = sql.literal(str(self._salvage.scratch_file(f"{name}-{self._staged}.parquet")))
        with _moved_files_reported():
            copy = f"COPY ({statement}) TO {target} (FORMAT parquet, COMPRESSION zstd)"
            self._con.execute(copy, params or {})
        return f"SELECT * FROM read_parquet({target})"

    def _detail_rows(self) -> str:
        return self._details_of(self._event_sources, self._record_sources)

    def _details_of(self, sources: list[Source], records: list[Source]) -> str:
        # Compaction keeps the details of what it compacts; the rest is read from the events.
        stores = [s for s in sources if s.format is Format.PARQUET]
        kept = [s for s in stores if details_path(s.path).exists()]
        read = [s for s in sources if s not in kept]
        scans = self._event_scans(read, sql.DETAIL_SCAN, sql.PARQUET_DETAIL_SCAN)
        # Sessions read whole from exports and session lists carry their events: the same details.
        types = sql.DETAIL_EVENT_TYPES
        scans += [sql.fill(sql.RECORD_DETAIL_SCAN, scan=s, types=types) for s in self._record_scans(records)]
        rows = [sql.fill(sql.DETAIL_ROWS, scan=scan) for scan in scans or [sql.EMPTY_DETAILS]]
        if scans:
            # Read once into Parquet first: DuckDB guesses a JSON scan at a few hundred rows, and
            # would hash every detail event to join the few sessions a later statement looks up.
            rows = [self._staged_rows("detail_scan", " UNION ALL ".join(rows))]
        if kept:
            files = self._parquet_list(details_path(s.path) for s in kept)
            rows.append(sql.fill(sql.DETAILS_FILES, rows=self._live(files, "true", "details")))
        return " UNION ALL ".join(rows)

    def _create_tables(self, sources: list[Source], progress: Progress | None) -> None:
        events = self._event_sources = [s for s in sources if s.format in EVENT_FORMATS]
        records = [s for s in sources if s.format not in EVENT_FORMATS]
        self._keep("session_records", self._session_records_sql(records))
        self._rolled_files = [
            s.path for s in events if s.format is Format.PARQUET and rollup_path(s.path).exists()
        ]
        self._rolled_ready = None
        self._keep_replaced()
        if not self._rolled_files:
            self._run(
                "CREATE OR REPLACE TEMP TABLE sessions_rows AS "
                + self._sessions_statement(self._event_sessions_sql(events)),
                progress,
                sum(source.size for source in events),
            )
            self._view("sessions", "SELECT * FROM sessions_rows")
            return
        # Sessions compacted whole stay in their files: only the others are folded here, with
        # the parts of those files that share an id with them (``touched``).
        rolled = set(self._rolled_files)
        rest = [s for s in events if s.path not in rolled]
        self._run(
            "CREATE OR REPLACE TEMP TABLE pending_parts AS " + self._pending_parts_sql(rest),
            progress,
            sum(source.size for source in rest),
        )
        parts = self._parquet_list(parts_path(p) for p in self._rolled_files)
        pending = "alone AND session_id IN (SELECT session_id FROM pending_parts)"
        if not rest and len({_store_of(p) for p in self._rolled_files}) == 1:
            # One store's compaction keeps each session in one file (see sql.FOLDED_PARTS): only
            # the sessions of other sources can share an id with a part kept whole.
            pending = "false"
        self._keep("touched", sql.fill(sql.TOUCHED, alone=self._live(parts, pending)))
        self._touched_files = [Path(name) for (name,) in self._rows(sql.TOUCHED_FILES)[1]]
        touched = self._touched_parts()
        self._keep(
            "sessions_rows",
            self._sessions_statement(self._fold(None, f"SELECT * FROM pending_parts UNION ALL {touched}")),
        )
        alone = self._live(parts, "alone AND session_id NOT IN (SELECT session_id FROM touched)")
        self._view("sessions", f"SELECT * FROM sessions_rows UNION ALL {self._alone_sessions(alone)}")

    def _keep_replaced(self) -> None:
        """Keep ``replaced``: the parts of rolled files a later one of them replaced (see
        sql.FOLDED_PARTS), each with the paths of its parts and details files."""
        lists = [replaced_path(p) for p in self._rolled_files if replaced_path(p).exists()]
        self._replacing = bool(lists)
        if not lists:
            self._keep("replaced", sql.fill(sql.REPLACED, replaced=sql.NO_REPLACED, files=sql.NO_FILES))
            return
        files = ", ".join(
            "("
            + ", ".join(sql.literal(str(name)) for name in (digest_of(p), parts_path(p), details_path(p)))
            + ")"
            for p in self._rolled_files
        )
        files = f"SELECT * FROM (VALUES {files}) AS f(part_file, parts, details)"
        replaced = sql.fill(sql.REPLACED_FILES, files=self._parquet_list(lists))
        self._keep("replaced", sql.fill(sql.REPLACED, replaced=replaced, files=files))

    def _live(self, files: str, where: str, kind: str = "parts") -> str:
        """The rows of compaction's ``kind`` files (parts or details) that meet ``where``, less those
        of parts replaced later."""
        if not self._replacing:
            return f"SELECT * FROM read_parquet({files}, filename = true) WHERE {where}"
        return sql.fill(sql.LIVE_ROWS, files=files, where=where, kind=kind)

    # -- compacted sessions kept whole (see rolled.py) ---------------------------

    def _pending_parts_sql(self, sources: list[Source]) -> str:
        """Parts of every session not kept whole: those of these sources and the rest of the
        rolled files'."""
        rolled = self._parquet_list(parts_path(p) for p in self._rolled_files)
        parts = [f"SELECT {sql.PART_COLUMNS} FROM ({self._live(rolled, 'NOT alone')})"]
        if sources:
            events, stored = self._scans_and_parts(sources)
            if events is not None:
                parts.append(sql.fill(sql.SESSION_PARTS, scan=events, tool_ids=sql.TOOL_IDS))
            if stored is not None:
                parts.append(stored)
        return " UNION ALL ".join(parts)

    @staticmethod
    def _rolled_parts(files: str) -> str:
        return f"SELECT {sql.PART_COLUMNS} FROM read_parquet({files})"

    def _touched_parts(self) -> str:
        """The parts kept whole in rolled files that share an id with a pending part."""
        if not self._touched_files:
            return f"SELECT {sql.PART_COLUMNS} FROM pending_parts WHERE false"
        files = self._parquet_list(self._touched_files)
        return sql.fill(sql.NAMED_PARTS, columns=sql.PART_COLUMNS, files=files, pairs=sql.TOUCHED_PAIRS)

    def _rolled_lists(self) -> int:
        return self._lists

    def _rolled(self) -> bool:
        if not self._rolled_files or DEFAULT_USER_KEY not in self._metadata:
            return False
        if self._rolled_ready is None:
            self._rolled_ready = self._add_up_rollups()
        return self._rolled_ready

    def _add_up_rollups(self) -> bool:
        """Keep ``rolled``: the stored rollups, less those of touched sessions, plus the rollup of
        the sessions folded here; a group whose first or last time was a touched session's has
        them read from its sessions."""
        touched = [details_path(events_path(p)) for p in self._touched_files]
        files = self._parquet_list(touched or [details_path(self._rolled_files[0])])
        touched_details = sql.fill(sql.NAMED_DETAILS, files=files, pairs=sql.TOUCHED_PAIRS)
        touched_details += "" if touched else " LIMIT 0"
        touched_rows = sql.fill(rollup_sql.WITH_GROUPS, details=touched_details)
        self._keep("retracted", self._rollup(self._alone_sessions(self._touched_parts()), touched_rows))
        (taken_out,) = self._rows(rollup_sql.TAKEN_OUT)[1][0]
        stored = self._parquet_list(self._stored_rollups())
        # Groups whose first start or last end was a session taken out: read again from the sessions.
        self._keep("stale_groups", sql.fill(rollup_sql.STALE_GROUPS, files=stored))
        rolled = set(self._rolled_files)
        rest = [s for s in self._event_sources if s.path not in rolled]
        rows = [self._details_of(rest, self._record_sources)]
        rolled = self._parquet_list(details_path(p) for p in self._rolled_files)
        rows.append(sql.fill(sql.DETAILS_FILES, rows=self._live(rolled, "NOT alone", "details")))
        if self._touched_files:
            rows.append(f"SELECT {sql.DETAIL_COLUMNS} FROM ({touched_details})")
        statement = sql.fill(
            sql.DETAILS,
            rows=" UNION ALL ".join(rows),
            sessions="sessions_rows",
            where="counted",
            groups=rollup_sql.SESSION_GROUPS,
        )
        self._keep_large("detail_rows", statement)
        self._view("details", sql.ONCE_DETAILS)
        self._keep("added", self._rollup("SELECT * FROM sessions_rows", "SELECT * FROM details"))
        rollups = [
            sql.fill(rollup_sql.STORED, files=stored),
            sql.fill(rollup_sql.SIGNED, sign=-1, rollup="SELECT * FROM retracted"),
            sql.fill(rollup_sql.SIGNED, sign=1, rollup="SELECT * FROM added"),
        ]
        signed = " UNION ALL BY NAME ".join(rollups)
        self._keep("rolled_sums", sql.fill(rollup_sql.ROLLED_SUMS, rollups=signed))
        self._keep("rolled_values", sql.fill(rollup_sql.ROLLED_VALUES, rollups=signed))
        self._view("rolled", rollup_sql.ROLLED)
        (unlisted,) = self._rows(rollup_sql.UNLISTED)[1][0]
        self._lists = rollup_sql.LISTED_PER_GROUP - taken_out - unlisted
        if self._rows("SELECT count(*) FROM stale_groups")[1][0][0]:
            with _moved_files_reported():
                self._con.execute(rollup_sql.FRESH_EXTREMES)
        return True

    def _stored_rollups(self) -> list[Path]:
        """The rollups of the rolled files: per day, a sum of them that covers only files listed
        (the widest), and the rollups of the files no sum covers."""
        files: list[Path] = []
        for folder in sorted({p.parent for p in self._rolled_files}):
            listed = {p.name for p in self._rolled_files if p.parent == folder}
            sums = [(len(covered), parquet, covered) for parquet, covered in summed_rollups(folder)]
            _, parquet, covered = max((s for s in sums if s[2] <= listed), default=(0, None, set()))
            files += [parquet] if parquet else []
            files += [rollup_path(folder / name) for name in sorted(listed - covered)]
        return files

    def write_rollup(self, events: Path, target: Path, earlier: list[Path]) -> None:
        """Write to ``target`` the rollup of the sessions compacted events file ``events`` holds whole,
        less that of the whole parts it replaced in the ``earlier`` events files."""
        self._keep_metadata([DEFAULT_USER_KEY])
        self._keep("session_records", self._session_records_sql([]))
        sessions = self._alone_sessions(
            f"{self._rolled_parts(self._parquet_list([parts_path(events)]))} WHERE alone"
        )
        details = sql.fill(sql.ALONE_DETAILS, files=self._parquet_list([details_path(events)]))
        self._keep("added", self._rollup(sessions, sql.fill(rollup_sql.WITH_GROUPS, details=details)))
        rollups = [sql.fill(rollup_sql.SIGNED, sign=1, rollup="SELECT * FROM added")]
        if earlier:
            self._keep("added_groups", rollup_sql.ADDED_GROUPS)
            replaced = sql.fill(sql.REPLACED_FILES, files=self._parquet_list([replaced_path(events)]))
            parts_files = self._parquet_list(parts_path(p) for p in earlier)
            columns = sql.part_columns(self._columns(parts_files))
            parts = sql.fill(sql.NAMED_PARTS, columns=columns, files=parts_files, pairs=replaced)
            details_files = self._parquet_list(details_path(p) for p in earlier)
            details = sql.fill(sql.NAMED_DETAILS, files=details_files, pairs=replaced)
            self._keep(
                "retracted",
                self._rollup(self._alone_sessions(parts), sql.fill(rollup_sql.WITH_GROUPS, details=details)),
            )
            rollups.append(sql.fill(rollup_sql.SIGNED, sign=-1, rollup="SELECT * FROM retracted"))
            rollups.append(sql.fill(rollup_sql.SIGNED, sign=1, rollup=rollup_sql.MOVED))
        statement = sql.fill(
            rollup_sql.KEPT, rollups=" UNION ALL BY NAME ".join(rollups), listed=rollup_sql.LISTED_PER_GROUP
        )
        self._con.execute(sql.fill(statement, target=sql.literal(str(target))))

    @staticmethod
    def _parquet_list(paths: Iterable[Path]) -> str:
        return "[" + ", ".join(sql.literal(str(p)) for p in paths) + "]"

    def _paths(self) -> str:
        """A SQL list of the JSON paths of the metadata keys kept."""
        return "[" + ", ".join(sql.literal(path) for path in self._json_paths()) + "]"

    def _meta(self, document: str) -> str:
        return f"json_extract_string({document}, {self._paths()})"  # one parse gives every value

    def _event_sessions_sql(self, sources: list[Source]) -> str:
        return self._fold(*self._scans_and_parts(sources))

    def _scans_and_parts(self, sources: list[Source]) -> tuple[str | None, str | None]:
        """A query of the events to fold and one of the parts compaction folded (either may be None)."""
        # A compacted store keeps its sessions folded; the rest is folded here.
        folded = [s for s in sources if s.format is Format.PARQUET and parts_path(s.path).exists()]
        unfolded = [s for s in sources if s not in folded]
        events = stored = None
        if unfolded or not folded:
            scans = self._event_scans(unfolded, sql.EVENT_SCAN, sql.PARQUET_SCAN) or [sql.EMPTY_EVENTS]
            events = " UNION ALL BY NAME ".join(scans)
        if folded:
            files = self._parquet_list(parts_path(s.path) for s in folded)
            columns = sql.part_columns(self._columns(files))
            stored = sql.fill(sql.PARTS_FILES, files=files, columns=columns)
        return events, stored

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


def _store_of(compacted: Path) -> Path:
    """The compacted folder a compacted file (or its snapshot link) belongs to."""
    return next((folder for folder in compacted.parents if folder.name == COMPACTED), compacted.parent)


def _groups(sources: list[Source]) -> Iterator[tuple[str, str]]:
    """SQL lists of file names by compression, as DuckDB wants one compression per scan."""
    for compressed in (False, True):
        files = [sql.literal(str(s.path)) for s in sources if s.compressed is compressed]
        if files:
            yield "[" + ", ".join(files) + "]", ("gzip" if compressed else "none")


@contextmanager
def _moved_files_reported() -> Iterator[None]:
    """A file that vanished between listing and a later read (an event log is read twice) is not
    damage: the analysis is started over on the files as they are now. Memory, or disk for spilling,
    that ran out is said in a line, with what to do."""
    try:
        yield
    except duckdb.IOException as error:
        if "No space left on device" in str(error):  # DuckDB's spill files, not the input
            raise SpillSpaceError(
                "the disk ran out of room for the analysis's spill files: free space where TMPDIR "
                "points, give it more memory (--memory-limit 4GB), or compact the folder first "
                "(waza compact DIR), whose reports need far less"
            ) from None
        raise InputChangedError(first_line(error)) from None
    except duckdb.OutOfMemoryException:
        raise OutOfMemoryError(
            "the analysis needs more memory than its limit: give it more (--memory-limit 4GB), "
            "or compact the folder first (waza compact DIR), whose reports need far less"
        ) from None


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
