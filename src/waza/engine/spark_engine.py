"""Apache Spark as the engine: the metric SQL of ``sql.py``, transpiled, on a laptop or a cluster.

Spark reads the event log (plain or gzip) and compacted Parquet itself; the
session-shaped files of earlier versions are turned into an event log by the
Python reader first. Every figure then comes from the same statements as on
DuckDB, so both engines give the same report.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from waza.engine import sql
from waza.engine.base import Engine
from waza.engine.object_store import list_prefix
from waza.engine.results import Progress, Rows
from waza.engine.salvage import first_line
from waza.engine.spark_sql import to_spark
from waza.errors import InputChangedError, MissingExtraError, WazaError
from waza.schema import DATA_TYPES
from waza.store.sources import EVENT_FORMATS, Format, Problem, Source

# Every field an event's ``data`` contributes to a figure, read as text: a value
# of an unexpected type becomes text (JSON for objects), never a rejected line.
DATA_FIELDS = tuple(DATA_TYPES)
EVENT_SCHEMA = (
    "timestamp STRING, event_type STRING, skill_name STRING, session_id STRING, event_id STRING, data STRUCT<"
    + ", ".join(f"{field}: STRING" for field in DATA_FIELDS)
    + ">"
)
# Compacted events keep each event's data whole in ``data_json``, whichever fields its version typed.
_DATA = (
    "named_struct("
    + ", ".join(f"'{f}', get_json_object(data_json, '$.{f}')" for f in DATA_FIELDS)
    + ") AS data"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Spark's own messages below errors stay out of the terminal.
_LOG_SETTINGS = Path(__file__).with_name("spark-log4j2.properties")


class SparkUnavailableError(WazaError):
    """PySpark or Java is missing, or the cluster cannot be reached."""


def spark_session(master: str | None = None) -> Any:
    """The process's Spark session (started on first use), set up for telemetry.

    Local mode listens on loopback only; a cluster master is used as given.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingExtraError("the Spark engine", "spark", "PySpark") from None
    master = master or os.environ.get("WAZA_SPARK_MASTER") or "local[*]"
    builder = (
        SparkSession.builder.master(master)
        .appName("waza")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG_SETTINGS}")
    )
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
        )
    try:
        session = builder.getOrCreate()
    except Exception as error:  # the JVM did not start: no Java, or a bad master URL
        raise SparkUnavailableError(f"cannot start Spark at {master}: {first_line(error)}") from None
    return session


class SparkEngine(Engine):
    """Runs the metric queries on Spark, in local mode or on the cluster at ``master``."""

    def __init__(self, *, master: str | None = None):
        super().__init__()
        # A session of its own keeps this engine's tables apart from any other's.
        self._spark = spark_session(master).newSession()
        self._kept: list[Any] = []
        self._listed: set[str] = set()  # files seen under object-store prefixes

    def close(self) -> None:
        for frame in self._kept:
            frame.unpersist()
        self._kept.clear()
        super().close()

    # -- loading -----------------------------------------------------------

    def list_prefix(self, url: str) -> tuple[list[Source], list[Problem]]:
        sources, problems, listed = list_prefix(self._spark, url)
        self._listed |= listed
        return sources, problems

    def _load(self, sources: list[Source], progress: Progress | None) -> list[Problem]:
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        problems: list[Problem] = []
        # Earlier versions' session files: the Python reader turns them into an event log.
        sources = [s if s.format in EVENT_FORMATS else self._salvage.rewrite(s, problems) for s in sources]
        try:
            with _moved_files_reported():
                self._create_tables(sources)
        except (Py4JJavaError, PySparkException):
            # Some file breaks the job as a whole: find it, salvage it, read again.
            sources = self._isolate(sources, problems)
            self._create_tables(sources)
        problems.extend(self._salvage.name_bad_lines(sources, self._bad_rows_by_file(sources)))
        if progress is not None:
            progress(100.0)
        return problems

    def _create_tables(self, sources: list[Source]) -> None:
        self._event_sources = sources  # every source is an event file by now (see _load)
        # A compacted store keeps its sessions folded; the rest is folded here.
        folded = [s for s in sources if s.format is Format.PARQUET and self._has(s, "sessions-")]
        unfolded = [s for s in sources if s not in folded]
        if unfolded or not folded:
            self._events(unfolded).createOrReplaceTempView("events")
        stored = None
        if folded:
            parts = self._merged_parquet(_beside(s, "sessions-") for s in folded)
            parts.createOrReplaceTempView("stored_parts")
            stored = f"SELECT {sql.part_columns(set(parts.columns))} FROM stored_parts"
        statement = self._fold("SELECT * FROM events" if unfolded or not folded else None, stored)
        self._keep("session_records", _NO_RECORDS)
        self._keep("sessions_rows", self._sessions_statement(statement))
        self._view("sessions", "SELECT * FROM sessions_rows")

    def _events(self, sources: list[Source]) -> Any:
        """One frame of the events in the sources, with the file each came from."""
        logs = [_uri(s) for s in sources if s.format is Format.EVENTS]
        stores = [_uri(s) for s in sources if s.format is Format.PARQUET]
        frames = []
        if logs or not stores:
            reader = self._spark.read.schema(EVENT_SCHEMA).option("mode", "PERMISSIVE")
            frame = reader.json(logs) if logs else self._spark.createDataFrame([], EVENT_SCHEMA)
            frames.append(
                frame.selectExpr(
                    "try_cast(timestamp AS TIMESTAMP) AS timestamp",
                    "event_type",
                    "skill_name",
                    "session_id",
                    "data",
                    "event_id",
                    "input_file_name() AS filename",
                )
            )
        if stores:
            frame = self._merged_parquet(stores)
            frames.append(
                frame.selectExpr(
                    "timestamp",
                    "event_type",
                    "skill_name",
                    "session_id",
                    _DATA,
                    "event_id" if "event_id" in frame.columns else "CAST(NULL AS STRING) AS event_id",
                    "input_file_name() AS filename",
                )
            )
        combined = frames[0]
        for frame in frames[1:]:
            combined = combined.unionByName(frame)
        return combined

    def _merged_parquet(self, files: Iterable[str]) -> Any:
        """Parquet files as one frame; a column some files lack (written by older versions) is null there."""
        return self._spark.read.option("mergeSchema", "true").parquet(*files)

    def _has(self, source: Source, beside: str) -> bool:
        """Whether compaction left the ``beside`` file (sessions-, details-) of a compacted events file."""
        if source.url:
            return _beside(source, beside) in self._listed
        return Path(_beside(source, beside)).exists()

    def _meta(self, document: str) -> str:
        values = ", ".join(f"json_extract_string({document}, {sql.literal(p)})" for p in self._json_paths())
        return f"[{values}]"

    def _read_alone(self, source: Source) -> None:
        self._events([source]).count()

    def _read_errors(self) -> tuple[type[Exception], ...]:
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        return (Py4JJavaError, PySparkException)

    def _bad_rows_by_file(self, sources: list[Source]) -> dict[str, int]:
        """Unreadable records per file; the files are read again only when there are some."""
        (bad_rows,) = self._rows(sql.UNREADABLE_ROWS)[1][0]
        if not bad_rows:
            return {}
        with _moved_files_reported():
            self._events(sources).createOrReplaceTempView("all_events")
        _, rows = self._rows(
            f"SELECT filename, count(*) FROM all_events WHERE {sql.UNREADABLE} GROUP BY filename"
        )
        named = {_same_file(_uri(s)): str(s.path) for s in sources}
        return {named.get(_same_file(uri), uri): count for uri, count in rows}

    # -- running -------------------------------------------------------------

    def _rows(self, statement: str, params: dict[str, object] | None = None) -> Rows:
        with _moved_files_reported():
            return self._collect(statement, params)

    def _collect(self, statement: str, params: dict[str, object] | None) -> Rows:
        exact = _Exact(self._spark.sql(to_spark(statement), args=params or None))
        return exact.columns, exact.rows(exact.frame.collect())

    def _batches(self, statement: str, params: dict[str, object] | None = None) -> Iterator[Rows]:
        exact = _Exact(self._spark.sql(to_spark(statement), args=params or None))
        with _moved_files_reported():
            rows = exact.frame.toLocalIterator()  # a partition at a time reaches this process
            while batch := list(itertools.islice(rows, _BATCH_ROWS)):
                yield exact.columns, exact.rows(batch)

    def _keep(self, name: str, statement: str, params: dict[str, object] | None = None) -> None:
        frame = self._spark.sql(to_spark(statement), args=params or None).persist()
        with _moved_files_reported():
            frame.count()  # read now, so that a damaged file shows while loading
        frame.createOrReplaceTempView(name)
        self._kept.append(frame)

    def _view(self, name: str, statement: str) -> None:
        self._spark.sql(to_spark(statement)).createOrReplaceTempView(name)

    def _detail_rows(self) -> str:
        # Compaction keeps the details of what it compacts; the rest is read from the events again.
        kept = [s for s in self._event_sources if s.format is Format.PARQUET and self._has(s, "details-")]
        with _moved_files_reported():
            read = [s for s in self._event_sources if s not in kept]
            self._events(read).createOrReplaceTempView("detail_events")
            scan = (
                "SELECT session_id, event_type, data, event_id, timestamp, skill_name FROM detail_events "
                f"WHERE timestamp IS NOT NULL AND event_type IN {sql.DETAIL_EVENT_TYPES}"
            )
            rows = [sql.fill(sql.DETAIL_ROWS, scan=scan)]
            if kept:
                details = self._merged_parquet(_beside(s, "details-") for s in kept)
                details.createOrReplaceTempView("kept_details")
                rows.append(f"SELECT {sql.DETAIL_COLUMNS} FROM kept_details")
        return " UNION ALL ".join(rows)

    def _catalog_scan(self) -> str:
        with _moved_files_reported():
            self._events(self._event_sources).createOrReplaceTempView("catalog_events")
        return (
            "SELECT session_id, event_type, timestamp, event_id, data FROM catalog_events "
            f"WHERE timestamp IS NOT NULL AND event_type IN {sql.CATALOG_EVENT_TYPES}"
        )

    def _picked_events(self, session_ids: list[str]) -> list[tuple]:
        """Events are read whole here: the typed schema of ``_events`` keeps only the fields metrics need."""
        picked = self._spark.createDataFrame([(sid,) for sid in session_ids], "session_id STRING")
        logs = [_uri(s) for s in self._event_sources if s.format is Format.EVENTS]
        stores = [_uri(s) for s in self._event_sources if s.format is Format.PARQUET]
        frames = []
        if logs:
            lines = self._spark.read.text(logs).selectExpr(
                "json_tuple(value, 'timestamp', 'event_type', 'skill_name', 'data', 'session_id', 'event_id')"
                " AS (timestamp, event_type, skill_name, data, session_id, event_id)"
            )
            frames.append(lines.selectExpr("try_cast(timestamp AS TIMESTAMP) AS timestamp", *_PICKED[1:]))
        if stores:
            frame = self._merged_parquet(stores)
            event_id = "event_id" if "event_id" in frame.columns else "CAST(NULL AS STRING) AS event_id"
            columns = ("timestamp", "event_type", "skill_name", "data_json AS data", "session_id", event_id)
            frames.append(frame.selectExpr(*columns))
        if not frames:
            return []
        events = functools.reduce(lambda a, b: a.unionByName(b), frames)
        found = events.where("timestamp IS NOT NULL").join(picked.hint("broadcast"), "session_id", "semi")
        exact = _Exact(found.select(*_PICKED))
        with _moved_files_reported():
            return exact.rows(exact.frame.collect())


# The columns of ``picked_events``, in order.
_PICKED = ("timestamp", "event_type", "skill_name", "data", "session_id", "event_id")
_BATCH_ROWS = 10_000


class _Exact:
    """A frame whose timestamps leave Spark as microseconds since the epoch, and become datetimes here:
    exact, and in UTC whatever zone this process runs in."""

    def __init__(self, frame: Any):
        self.columns: list[str] = frame.columns
        self._timestamps = {f.name for f in frame.schema.fields if f.dataType.typeName() == "timestamp"}
        self.frame = frame.selectExpr(
            *(f"unix_micros(`{c}`) AS `{c}`" if c in self._timestamps else f"`{c}`" for c in self.columns)
        )

    def rows(self, rows: Iterable[Any]) -> list[tuple[Any, ...]]:
        return [tuple(map(self._value, self.columns, row)) for row in rows]

    def _value(self, column: str, value: Any) -> Any:
        if column in self._timestamps and value is not None:
            return _EPOCH + timedelta(microseconds=value)
        return value


# Spark reads no session-shaped files itself; the sessions view still unions this in.
_NO_RECORDS = (
    "SELECT NULL::VARCHAR AS filename, NULL::VARCHAR AS session_id, NULL::TIMESTAMPTZ AS start_time, "
    "NULL::TIMESTAMPTZ AS end_time, NULL::VARCHAR AS skill_name, NULL::BOOLEAN AS success, "
    "NULL::BIGINT AS tool_calls, NULL::VARCHAR[] AS meta, NULL::DOUBLE AS recorded_ms, true AS bad LIMIT 0"
)


def _uri(source: Source) -> str:
    """The name Spark reads a file by (Hadoop takes a local one as a path, not a URI to decode)."""
    return source.url or str(source.path.resolve())


# How Spark says a file listed before is gone (compressed, compacted or pruned meanwhile).
_MOVED = ("PATH_NOT_FOUND", "FILE_NOT_EXIST", "FileNotFoundException")


@contextmanager
def _moved_files_reported() -> Iterator[None]:
    """A vanished file is no damage: the analysis is started over on the files as they are now."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except (Py4JJavaError, PySparkException) as error:
        if any(sign in str(error) for sign in _MOVED):
            raise InputChangedError(first_line(error)) from None
        raise


def _beside(source: Source, prefix: str) -> str:
    """The file compaction keeps beside a compacted events file (session parts, details)."""
    if source.url:
        folder, leaf = source.url.rsplit("/", 1)
        return f"{folder}/{prefix}{leaf.removeprefix('events-')}"
    return str(source.path.resolve().with_name(prefix + source.path.name.removeprefix("events-")))


def _same_file(name: str) -> str:
    """One spelling of a file's name, whether Spark gives it as a path or a URI."""
    parts = urlparse(name)
    return parts.netloc + unquote(parts.path)
