"""The SQL that folds stored records into sessions and defines every metric, written once.

Statements are in DuckDB's dialect, which DuckDB runs as written; the Spark
engine runs the metric statements transpiled by sqlglot (``spark_sql.py``),
so they keep to what both engines compute alike. The scans that read files
are DuckDB's own; Spark reads files its own way.

Each statement reads the table or files named in it and nothing else, so the
same definitions serve files on disk and sessions handed over in memory.
Placeholders are ``{name}``, filled by ``fill`` (SQL's own braces stay as they are).
"""

from __future__ import annotations

import json
import re

from waza.model import ERROR_TYPE_PREFIX
from waza.schema import DATA_TYPES, SESSION_ENDED, SESSION_STARTED, TOKEN_NAMES, TOOL_CALLED, token_sql
from waza.store.codec import MAX_READ_LINE_BYTES


def literal(text: str) -> str:
    """A SQL string literal: file names and keys are data, never SQL."""
    return "'" + text.replace("'", "''") + "'"


# The longest line a JSON scan takes whole. DuckDB reserves buffers of twice
# this per thread, so it stays modest; a file with a longer line is read by
# the Python reader instead.
MAX_LINE_BYTES = MAX_READ_LINE_BYTES


def fill(template: str, **values: object) -> str:
    """Replace ``{name}`` placeholders by the given values, touching no other brace."""
    values = {"max_line": MAX_LINE_BYTES, **values}
    return re.sub(
        r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


def percentiles(histogram: str, groups: str, quantiles: tuple[float, ...]) -> str:
    """Exact percentiles per group, as ``quantile_cont`` computes them from the sorted values, of a
    value -> count histogram (``histogram``: rows of ``groups``, ``value`` and ``n``); a row per
    group with the list ``percentiles``, in the order of ``quantiles``.

    For quantile q of n values, rank r = q * (n - 1) (in double precision) lies between the values
    at ranks floor(r) and ceil(r) (from 0), interpolated linearly. Counting per value is an
    aggregate that spills to disk, where ``quantile_cont`` holds every value of a group in memory:
    the tool durations of 10^7 sessions filled DuckDB's limit.
    """
    rank = "CAST(total - 1 AS DOUBLE) * CAST({q} AS DOUBLE)"
    bound = "min(CASE WHEN upto > {edge}(" + rank + ") THEN value END)"
    values = []
    for q in quantiles:
        low, high = (fill(bound, edge=edge, q=q) for edge in ("floor", "ceil"))
        values.append(f"{low} + ({high} - {low}) * ({fill(rank, q=q)} - floor({fill(rank, q=q)}))")
    return f"""
SELECT {groups}, [{", ".join(values)}] AS percentiles
FROM (SELECT {groups}, value,
        sum(n) OVER (PARTITION BY {groups} ORDER BY value ROWS UNBOUNDED PRECEDING) AS upto,
        sum(n) OVER (PARTITION BY {groups}) AS total
      FROM ({histogram}) WHERE value IS NOT NULL)
GROUP BY {groups}, total
"""


def with_percentiles(totals: str, key: str, values: str, quantiles: tuple[float, ...], column: str) -> str:
    """The rows of ``totals`` with the ``percentiles`` (see above) of ``values`` (rows of ``key``
    and ``value``) of their ``key`` beside them, as ``column``, ordered by the caller."""
    per_key = percentiles(
        f"SELECT {key}, value, count(*) AS n FROM ({values}) GROUP BY {key}, value", key, quantiles
    )
    return (
        f"SELECT totals.*, p.percentiles{column} FROM ({totals}) totals "
        f"LEFT JOIN ({per_key}) p ON p.{key} IS NOT DISTINCT FROM totals.{key} "
    )


# The fields of ``data`` that metrics read, all as text or JSON: DuckDB parses each
# line once, and a value of an unexpected type becomes text, never a rejected line.
def fields(*names: str) -> str:
    """The type DuckDB reads these fields of an event's data as (see schema.DATA_TYPES)."""
    return "STRUCT(" + ", ".join(f"{name} {DATA_TYPES[name]}" for name in names) + ")"


# A stored line that is no event: what every engine counts, and names, as unreadable.
UNREADABLE = "timestamp IS NULL OR event_type IS NULL OR session_id IS NULL"
DATA_FIELDS = fields("success", "metadata", "limits", "agent", "duration_ms")
EVENT_COLUMNS = (
    "{'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'skill_name': 'VARCHAR', "
    f"'data': '{DATA_FIELDS}', 'session_id': 'VARCHAR', 'event_id': 'VARCHAR'}}"
)

# An event stored twice (a writer or a client retried after a failure it could not
# see through) carries one event_id, and every count below counts it once: the
# fold's other figures (first, last, any) are the same however often it appears.
# The same fold in two steps, for when a session's events lie in several stores:
# SESSION_PARTS folds what one store holds (compaction keeps it beside the
# Parquet it writes), MERGE_PARTS combines the parts of each session. Every
# part keeps what combining needs: the time of its start, first event, first
# skill and end, and the ids of its tool calls, so that a call stored in two
# places (a retry that arrived after its original was compacted) is one call.
# A part with both a start and an end, and no other part of its id, is a whole
# session; every other part is combined with those of its id, as one fold over
# all the events would (a session stored whole twice is one session).
# A part also keeps the duration its end records, and how many of its events are
# copies of another (so that details look for copies only where there are some).
SESSION_PARTS = (
    """
SELECT session_id,
  min(timestamp) FILTER (WHERE event_type = 'session.started') AS started_at,
  min(timestamp) AS first_at,
  max(timestamp) FILTER (WHERE event_type = 'session.ended') AS end_time,
  arg_max(coalesce(data.success = 'true', false), timestamp) FILTER (WHERE event_type = 'session.ended')
    AS success,
  arg_min(skill_name, timestamp) FILTER (WHERE skill_name IS NOT NULL) AS skill_name,
  min(timestamp) FILTER (WHERE skill_name IS NOT NULL) AS skill_at,
  arg_min(data.agent, timestamp) FILTER (WHERE event_type = 'agent.invoked' AND data.agent IS NOT NULL)
    AS agent_name,
  min(timestamp) FILTER (WHERE event_type = 'agent.invoked' AND data.agent IS NOT NULL) AS agent_at,
  coalesce(bool_or(data.success = 'false') FILTER (WHERE event_type = 'agent.invoked'), false)
    AS agent_failed,
  max(data.agent) FILTER (WHERE event_type = 'session.started') AS root_agent,
  count(DISTINCT event_id) FILTER (WHERE event_type = 'tool.called' AND timestamp IS NOT NULL)
    + count(timestamp) FILTER (WHERE event_type = 'tool.called' AND event_id IS NULL) AS tool_calls,
  {tool_ids} AS tool_ids,
  arg_min(data.metadata, timestamp) FILTER (WHERE event_type = 'session.started') AS metadata,
  bool_or(event_type = 'session.abandoned') AS abandoned,
  max(data.limits) AS limits,
  count(timestamp) FILTER (WHERE event_type IS NOT NULL) AS events,
  count(*) FILTER (WHERE """
    + UNREADABLE
    + """) AS bad_rows,
  arg_max(TRY_CAST(data.duration_ms AS DOUBLE), timestamp) FILTER (WHERE event_type = 'session.ended')
    AS recorded_ms,
  count(event_id) - count(DISTINCT event_id) AS copies
FROM ({scan})
GROUP BY session_id
"""
)
ONE_PART = """
SELECT session_id, coalesce(started_at, first_at) AS start_time, end_time,
  success AND NOT agent_failed AS success, coalesce(skill_name, agent_name, root_agent) AS skill_name,
  tool_calls,
  {meta} AS meta, abandoned, limits, events, bad_rows, recorded_ms, copies > 0 AS repeated
FROM ({parts})
"""
MERGE_PARTS = """
WITH parts AS ({parts}),
  split AS (SELECT session_id FROM parts GROUP BY session_id
            HAVING count(*) > 1 OR bool_or(started_at IS NULL OR end_time IS NULL))
{single}
UNION ALL
SELECT session_id,
  coalesce(min(started_at), min(first_at)) AS start_time,
  max(end_time) AS end_time,
  arg_max(success, end_time) AND NOT bool_or(agent_failed) AS success,
  coalesce(arg_min(skill_name, skill_at), arg_min(agent_name, agent_at), max(root_agent)) AS skill_name,
  sum(tool_calls - array_length(tool_ids))
    + array_length(list_distinct(flatten(list(tool_ids)))) AS tool_calls,
  {first_meta} AS meta,
  bool_or(abandoned) AS abandoned,
  max(limits) AS limits,
  sum(events) AS events,
  sum(bad_rows) AS bad_rows,
  arg_max(recorded_ms, end_time) AS recorded_ms,
  true AS repeated
FROM parts SEMI JOIN split USING (session_id)
GROUP BY session_id
"""
# What SESSION_PARTS keeps as ``tool_ids``: nothing when the parts are the whole
# fold, the distinct ids of the tool calls when parts are to be combined.
NO_TOOL_IDS = "[]::VARCHAR[]"
TOOL_IDS = (
    "coalesce(list(DISTINCT event_id) FILTER (WHERE event_type = 'tool.called' AND timestamp IS NOT NULL "
    "AND event_id IS NOT NULL), []::VARCHAR[])"
)
# The columns of a part, in the order SESSION_PARTS gives them.
PART_COLUMNS = (
    "session_id, started_at, first_at, end_time, success, skill_name, skill_at, agent_name, agent_at, "
    "agent_failed, root_agent, tool_calls, tool_ids, metadata, abandoned, limits, events, bad_rows, "
    "recorded_ms, copies"
)
PARTS_FILES = "SELECT {columns} FROM read_parquet({files}, union_by_name = true)"

# Part columns that files compacted by earlier versions lack, and what they then
# read as: no tool-call ids, no agent, no recorded duration, no copies.
LATER_PART_COLUMNS = {
    "tool_ids": "[]::VARCHAR[]",
    "agent_name": "NULL::VARCHAR",
    "agent_at": "NULL::TIMESTAMPTZ",
    "agent_failed": "false",
    "root_agent": "NULL::VARCHAR",
    "recorded_ms": "NULL::DOUBLE",
    "copies": "0",
}


def part_columns(stored: set[str]) -> str:
    """PART_COLUMNS of stored parts with ``stored`` columns; a store may mix files of both kinds."""
    columns = []
    for name in PART_COLUMNS.split(", "):
        default = LATER_PART_COLUMNS.get(name)
        if default is None:
            columns.append(name)
        elif name in stored:
            columns.append(f"coalesce({name}, {default}) AS {name}")
        else:
            columns.append(f"{default} AS {name}")
    return ", ".join(columns)


def event_id_column(ids_stored: bool) -> str:
    return "event_id" if ids_stored else "NULL::VARCHAR AS event_id"


EVENT_SCAN = (
    "SELECT * FROM read_json({files}, format = 'newline_delimited', columns = "
    + EVENT_COLUMNS
    + ", compression = '{compression}', ignore_errors = true, maximum_object_size = {max_line})"
)

# Events compacted to Parquet, with the same columns as the event-log scan. Compaction
# kept each event id once; the id stays for copies in other stores.
PARQUET_SCAN = (
    "SELECT timestamp, event_type, skill_name, session_id, "
    "struct_pack(success := data.success, metadata := data.metadata, limits := data.limits, "
    "agent := data_json ->> 'agent', duration_ms := data.duration_ms) AS data, "
    "{event_id} FROM read_parquet({files}, union_by_name = true)"
)

# Session-shaped files, one JSON object per session, whatever the container.
SESSION_LINES_SCAN = (
    "SELECT filename, json AS s FROM read_json_objects({files}, "
    "format = 'newline_delimited', compression = '{compression}', ignore_errors = true, "
    "filename = true, maximum_object_size = {max_line})"
)
SESSION_DOCUMENT_SCAN = """
SELECT filename, unnest(json_extract(CASE WHEN json_type(doc) = 'ARRAY' THEN doc
                                          ELSE doc -> '$.sessions' END, '$[*]')) AS s
FROM (SELECT filename, json AS doc FROM read_json_objects({files}, format = 'unstructured',
      compression = '{compression}', ignore_errors = true, filename = true,
      maximum_object_size = {max_size}))
"""

# A session read whole keeps the duration it stores (earlier versions' exports give
# whole milliseconds): that is its duration, as whoever wrote it computed it.
SESSION_RECORDS = """
SELECT filename, session_id, start_time, end_time, skill_name, success, tool_calls, meta, recorded_ms,
  NOT (session_id IS NOT NULL AND start_time IS NOT NULL
       AND (raw_end IS NULL OR end_time IS NOT NULL)) AS bad
FROM (
  SELECT filename,
    s ->> '$.session_id' AS session_id,
    TRY_CAST(s ->> '$.start_time' AS TIMESTAMPTZ) AS start_time,
    s ->> '$.end_time' AS raw_end,
    TRY_CAST(s ->> '$.end_time' AS TIMESTAMPTZ) AS end_time,
    s ->> '$.skill_name' AS skill_name,
    coalesce((s -> '$.success')::VARCHAR, 'true') = 'true' AS success,
    coalesce(json_array_length(s -> '$.tool_calls'), 0) AS tool_calls,
    CASE WHEN json_type(s -> '$.duration_ms') IN ('UBIGINT', 'BIGINT', 'DOUBLE')
         THEN (s ->> '$.duration_ms')::DOUBLE END AS recorded_ms,
    {metadata_columns}
  FROM ({scan})
)
"""

# The sessions every metric reads, over the sessions folded from events and those
# read as records. Incomplete sessions have no success and no duration. A sampled
# session stands for 1/rate sessions, except that with keep_errors every session
# that did not succeed was kept, so it stands for one. Groups of unreadable event
# lines stay in the table, not ``counted``, so that their number needs no second read.
SESSIONS_VIEW = """
SELECT *,
  CASE WHEN sample_rate > 0 AND sample_rate < 1 AND NOT (keep_errors AND NOT coalesce(success, false))
       THEN 1 / sample_rate ELSE 1 END AS weight
FROM (
  SELECT counted, bad_rows, session_id, start_time, end_time, skill_name,
    CASE WHEN end_time IS NOT NULL THEN coalesce(success, false) END AS success,
    CASE WHEN end_time >= start_time
         THEN coalesce(trunc(recorded_ms), trunc((epoch_us(end_time) - epoch_us(start_time)) / 1000))::BIGINT
    END AS duration_ms,
    coalesce(end_time < start_time, false) AS ended_before_start,
    DATE '1970-01-01' + floor(epoch_us(start_time) / 86400000000)::INTEGER AS day,
    tool_calls::BIGINT AS tool_calls,
    TRY_CAST({sample_rate} AS DOUBLE) AS sample_rate,
    coalesce({keep_errors} = 'true', false) AS keep_errors,
    {metadata_columns},
    coalesce(abandoned, false) AND end_time IS NULL AS abandoned,
    coalesce(TRY_CAST(limits ->> 'events_dropped' AS BIGINT), 0) AS events_dropped,
    coalesce(TRY_CAST(limits ->> 'values_truncated' AS BIGINT), 0) AS values_truncated,
    repeated
  FROM (
    SELECT events > 0 AND session_id IS NOT NULL AS counted, bad_rows,
      session_id, start_time, end_time, skill_name, success, tool_calls, meta, abandoned, limits, recorded_ms,
      repeated
    FROM ({event_sessions})
    UNION ALL
    SELECT true AS counted, 0 AS bad_rows, session_id, start_time, end_time, skill_name, success, tool_calls,
      meta, false AS abandoned, NULL::VARCHAR AS limits, recorded_ms, false AS repeated
    FROM {records} WHERE NOT bad
  )
)
"""

# Event-log files holding unreadable lines, and how many (run only when there are some).
BAD_EVENT_FILES = (
    """
SELECT filename, count(*) FROM read_json({files}, format = 'newline_delimited',
  columns = {'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'session_id': 'VARCHAR'},
  compression = '{compression}', ignore_errors = true, filename = true, maximum_object_size = {max_line})
WHERE """
    + UNREADABLE
    + """
GROUP BY filename
"""
)
BAD_RECORD_FILES = "SELECT filename, count(*) FROM session_records WHERE bad GROUP BY filename"

# Metadata values kept per session: the sampling ones, and those a report asks for.
SAMPLING_KEYS = ("sample_rate", "sample_keep_errors")
# All wanted values come from one parse of the metadata: a list, one item per key.
RECORD_METADATA = "json_extract_string(s -> '$.metadata', {paths}) AS meta"

# The figures of a group of sessions that are counts and sums (rollups keep them per day and skill).
SESSION_SUMS = """
  count(end_time) AS completed,
  count(*) FILTER (WHERE success) AS succeeded,
  coalesce(sum(duration_ms), 0)::BIGINT AS duration_ms,
  count(duration_ms) AS timed,
  count(*) FILTER (WHERE ended_before_start) AS ended_before_start,
  coalesce(sum(tool_calls), 0)::BIGINT AS tool_calls,
  sum(weight)::DOUBLE AS estimated,
  count(*) FILTER (WHERE abandoned) AS abandoned,
  sum(events_dropped)::BIGINT AS events_dropped,
  sum(values_truncated)::BIGINT AS values_truncated,
"""
# Every figure of one group of sessions. GROUPING SETS give the overall row,
# one row per skill and, with a breakdown, one row per value of it, in one pass.
# Percentiles interpolate linearly between closest ranks (quantile_cont).
FIGURES = (
    """
SELECT grouping(skill_name) AS by_skill, {by_key} AS by_key, skill_name, {breakdown_value} AS breakdown,
  count(*) AS sessions,"""
    + SESSION_SUMS
    + """  count(DISTINCT users) AS users,
  quantile_cont(duration_ms, [0.5, 0.9, 0.95, 0.99]) AS duration_percentiles,
  min(start_time) AS first_start,
  max(end_time) AS last_end
FROM (SELECT *, {breakdown} AS breakdown, {users} AS users FROM sessions WHERE {where})
GROUP BY GROUPING SETS ((), (skill_name){breakdown_set})
"""
)

# Sessions per UTC day of their start.
PER_DAY = """
SELECT day, count(*) AS sessions, sum(weight)::DOUBLE AS estimated,
  count(end_time) AS completed, count(*) FILTER (WHERE success) AS succeeded,
  avg(duration_ms) AS avg_duration_ms, count(DISTINCT {users}) AS users
FROM sessions WHERE {where}
GROUP BY day ORDER BY day
"""

# The sessions that stand out, with a stable order among equals.
SLOWEST = """
SELECT session_id, skill_name, duration_ms FROM sessions
WHERE {where} AND duration_ms IS NOT NULL ORDER BY duration_ms DESC, session_id LIMIT {limit}
"""
MOST_TOOLS = """
SELECT session_id, skill_name, tool_calls FROM sessions
WHERE {where} AND tool_calls > 0 ORDER BY tool_calls DESC, session_id LIMIT {limit}
"""
LATEST_FAILED = """
SELECT session_id, skill_name, duration_ms FROM sessions
WHERE {where} AND end_time IS NOT NULL AND NOT success ORDER BY start_time DESC, session_id LIMIT {limit}
"""
# Completed sessions by duration, in bins of equal width on a log scale ({per_decade}
# bins from 1 ms to 10 ms, and so on); bin b holds durations from 10^(b/n) ms.
DURATION_BINS = """
SELECT floor(log10(greatest(duration_ms, 1)) * {per_decade})::INTEGER AS bin, count(*) AS sessions
FROM sessions WHERE {where} AND duration_ms IS NOT NULL GROUP BY bin ORDER BY bin
"""

# Tool, LLM and error events of the sessions in a slice, for the figures per tool,
# per model and per error type: read from compacted Parquet, or from the event log
# a second time. Copies of an event are looked for only in sessions that have
# some or whose events lie in several stores (``repeated``), each id kept once;
# a session id read twice (two exports holding one session) joins its events once.
DETAIL_FIELD_NAMES = (
    "tool", "success", "duration_ms", "error", "model", "tokens", "latency_ms", "error_type", "message",
    "span_id", "parent_span_id",
)  # fmt: skip
DETAIL_FIELDS = fields(*DETAIL_FIELD_NAMES)
DETAIL_EVENT_TYPES = (
    "('tool.called', 'tool.completed', 'llm.request', 'llm.response', 'error', 'agent.invoked', "
    "'skill.invoked', 'session.ended')"
)
DETAIL_SCAN = (
    "SELECT session_id, event_type, data, event_id, timestamp, skill_name FROM read_json({files}, "
    "format = 'newline_delimited', columns = {'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', "
    "'session_id': 'VARCHAR', 'skill_name': 'VARCHAR', "
    f"'data': '{DETAIL_FIELDS}', 'event_id': 'VARCHAR'}}, compression = '{{compression}}', "
    "ignore_errors = true, maximum_object_size = {max_line}) "
    "WHERE timestamp IS NOT NULL AND event_type IN {types}"
)
PARQUET_DETAIL_SCAN = (
    "SELECT session_id, event_type, struct_pack(tool := data.tool, success := data.success, "
    "duration_ms := data.duration_ms, error := data.error, model := data.model, tokens := data.tokens, "
    "latency_ms := data.latency_ms, error_type := data.error_type, message := data.message, "
    "span_id := data_json ->> 'span_id', parent_span_id := data_json ->> 'parent_span_id') AS data, "
    "{event_id}, timestamp, skill_name FROM read_parquet({files}, union_by_name = true) "
    "WHERE timestamp IS NOT NULL AND event_type IN {types}"
)
# The events sessions carry in session-shaped files (exports, session lists and
# lines, of this version and earlier ones), for the same details as the event log.
DETAIL_STRUCTURE = json.dumps({name: DATA_TYPES[name] for name in DETAIL_FIELD_NAMES})
RECORD_DETAIL_SCAN = (
    "SELECT * FROM (SELECT session_id, e ->> 'event_type' AS event_type, "
    "json_transform(e -> 'data', " + literal(DETAIL_STRUCTURE) + ") AS data, e ->> 'event_id' AS event_id, "
    "TRY_CAST(e ->> 'timestamp' AS TIMESTAMPTZ) AS timestamp, e ->> 'skill_name' AS skill_name "
    "FROM (SELECT s ->> '$.session_id' AS session_id, unnest(json_extract(s, '$.events[*]')) AS e "
    "FROM ({scan}))) WHERE timestamp IS NOT NULL AND event_type IN {types}"
)
# The events of a scan with each event id kept once, the first copy in ``order``
# (an event a writer or a client stored twice); events without an id all stay.
ONCE = (
    "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY session_id, event_id ORDER BY {order}) "
    "AS copy FROM ({scan})) WHERE event_id IS NULL OR copy = 1"
)
DETAIL_ROWS = (
    """
SELECT session_id, event_type,
  data.tool AS tool,
  data.success = 'true' AS ok,
  TRY_CAST(data.duration_ms AS DOUBLE) AS duration_ms,
  data.error AS error,
  data.model AS model,
  """
    + "".join(f"{token_sql('data.tokens', kind)} AS {kind}_tokens,\n  " for kind in TOKEN_NAMES)
    + """  TRY_CAST(data.latency_ms AS DOUBLE) AS latency_ms,
  data.error_type AS data_error_type,
  data.message AS message,
  data.span_id AS span_id,
  data.parent_span_id AS parent_span_id,
  timestamp AS event_time,
  CASE WHEN event_type = 'skill.invoked' THEN skill_name END AS loaded,
  event_id,
  NULL::VARCHAR AS attributed,
  false AS precomputed
FROM ({scan})
"""
)
# The columns of DETAIL_ROWS, in order: what compaction stores of each detail event, with the
# skill each tool call served (``attributed``, see SKILLS_LOADED) worked out while it compacts.
DETAIL_COLUMNS = (
    "session_id, event_type, tool, ok, duration_ms, error, model, "
    + "".join(f"{kind}_tokens, " for kind in TOKEN_NAMES)
    + "latency_ms, data_error_type, message, span_id, parent_span_id, event_time, loaded, event_id, "
    "attributed, precomputed"
)
# The digest that names a file of compaction's (``filename``) and the files beside it.
PART_FILE = "regexp_extract(filename, '([^-/]+)[.]parquet$', 1) AS part_file"
# Rows of compaction's parts or details files ({kind}) but those of parts a later file replaced
# (``replaced``: session, digest, and the paths of both files as read; see FOLDED_PARTS).
LIVE_ROWS = (
    "SELECT * FROM (SELECT * FROM read_parquet({files}, filename = true) WHERE {where}) p "
    "ANTI JOIN replaced r ON p.session_id = r.session_id AND p.filename = r.{kind}"
)
REPLACED = (
    "SELECT r.session_id, r.part_file, f.parts, f.details "
    "FROM ({replaced}) r JOIN ({files}) f USING (part_file)"
)
DETAILS_FILES = "SELECT " + DETAIL_COLUMNS + " FROM ({rows})"
# What the sessions compacted whole, and those of them ``touched`` names, hold in details files.
ALONE_DETAILS = (
    "SELECT " + DETAIL_COLUMNS + ", false AS repeated, 1 AS copy FROM read_parquet({files}) WHERE alone"
)
# The whole parts, and their details, that pairs of (session_id, part_file) name in these files:
# those touched when read, those a file replaced when compacted.
NAMED_PARTS = (
    "SELECT {columns} FROM (SELECT *, " + PART_FILE + " FROM read_parquet({files}, filename = true, "
    "union_by_name = true) WHERE alone AND session_id IN (SELECT session_id FROM ({pairs}))) "
    "SEMI JOIN ({pairs}) USING (session_id, part_file)"
)
NAMED_DETAILS = fill(NAMED_PARTS, columns=DETAIL_COLUMNS + ", false AS repeated, 1 AS copy")
TOUCHED_PAIRS = "SELECT session_id, part_file FROM touched"
# The parts compacted whole that share an id with a part folded at reading: they are folded too.
TOUCHED = "SELECT session_id, filename, " + PART_FILE + " FROM ({alone})"
TOUCHED_FILES = "SELECT DISTINCT filename FROM touched"
# (``{groups}``: for rollups, each session's day and skill too; see rollup_sql.SESSION_GROUPS.)
DETAILS = """
SELECT * FROM ({rows})
  JOIN (SELECT session_id, bool_or(repeated) AS repeated{groups}
        FROM {sessions} WHERE {where} GROUP BY session_id)
  USING (session_id)
"""
# DETAILS of every session: each detail row belongs to a counted session (read from the same
# files), so only the few sessions that are ``repeated`` are looked up, never all of them.
ALL_DETAILS = """
SELECT rows.*, coalesce(copied.repeated, false) AS repeated FROM ({rows}) rows
  LEFT JOIN (SELECT DISTINCT session_id, true AS repeated FROM {sessions} WHERE counted AND repeated) copied
  USING (session_id)
WHERE rows.session_id IS NOT NULL
"""
ONCE_DETAILS = "SELECT *, 1 AS copy FROM detail_rows WHERE NOT repeated UNION ALL " + ONCE.replace(
    "{order}", "event_type"
).replace("{scan}", "SELECT * FROM detail_rows WHERE repeated")
# Skills loaded during sessions (a session may load several), each with the tool
# calls made after it and before the next load in its session: which skill's
# tools fail or are slow. Attributed when read (compaction works it out for the
# sessions it holds whole), so however spans were batched. At equal times a
# load comes first, so a skill-loading call is its skill's own.
# The rows SKILLS_LOADED counts: each load, tool call and completion with the skill it served.
# (``{carry}``: further columns of each session, carried through; none here.)
LOADED_ROWS = """
SELECT session_id{carry}, event_type, ok, duration_ms, attributed AS skill FROM {details}
WHERE event_type IN ('skill.invoked', 'tool.called', 'tool.completed')
  AND precomputed AND NOT repeated
UNION ALL
SELECT session_id{carry}, event_type, ok, duration_ms,
  last_value(loaded IGNORE NULLS) OVER (PARTITION BY session_id ORDER BY event_time, event_type
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS skill
FROM {details}
WHERE event_type IN ('skill.invoked', 'tool.called', 'tool.completed')
  AND NOT (precomputed AND NOT repeated)
"""
# The sessions that loaded each skill, over LOADED_ROWS kept as ``loaded_rows``: counted apart
# from the rest of SKILLS_LOADED, as a distinct count beside a percentile in one aggregate ran out
# of memory on 10^7 sessions.
SKILL_SESSIONS = """
SELECT skill, count(DISTINCT session_id) AS sessions FROM loaded_rows
WHERE event_type = 'skill.invoked' AND skill IS NOT NULL GROUP BY skill
"""
SKILLS_LOADED = (
    with_percentiles(
        """
SELECT skill,
  count(*) FILTER (WHERE event_type = 'skill.invoked') AS loads,
  coalesce(max(s.sessions), 0) AS sessions,  -- every one loaded it
  count(*) FILTER (WHERE event_type = 'tool.called') AS tool_calls,
  count(*) FILTER (WHERE event_type = 'tool.completed' AND NOT coalesce(ok, false)) AS tool_failures
FROM loaded_rows LEFT JOIN skill_sessions s USING (skill)
WHERE skill IS NOT NULL
GROUP BY skill""",
        "skill",
        "SELECT skill, duration_ms AS value FROM loaded_rows "
        "WHERE event_type = 'tool.completed' AND skill IS NOT NULL",
        (0.95,),
        "[1] AS tool_duration_ms_p95",
    )
    + "ORDER BY sessions DESC, skill"
)
TOOLS = (
    with_percentiles(
        """
SELECT tool,
  count(*) FILTER (WHERE event_type = 'tool.called') AS calls,
  count(*) FILTER (WHERE event_type = 'tool.completed') AS completed,
  count(*) FILTER (WHERE event_type = 'tool.completed' AND NOT coalesce(ok, false)) AS failed
FROM details WHERE event_type IN ('tool.called', 'tool.completed') AND tool IS NOT NULL
GROUP BY tool""",
        "tool",
        "SELECT tool, duration_ms AS value FROM details "
        "WHERE event_type = 'tool.completed' AND tool IS NOT NULL",
        (0.95,),
        "[1] AS duration_ms_p95",
    )
    + "ORDER BY calls DESC, tool"
)
# The most frequent error of each tool; among equally frequent ones, the first in sort order.
TOOL_ERRORS = """
SELECT tool, error AS top_error
FROM (SELECT tool, error, row_number() OVER (PARTITION BY tool ORDER BY count(*) DESC, error) AS rank
      FROM details WHERE event_type = 'tool.completed' AND error IS NOT NULL GROUP BY tool, error)
WHERE rank = 1
"""
# A model call traced twice (an agent framework's span around a client library's
# span of the same request) counts once, as the innermost: a span that is the
# parent of another LLM span of its session is left out.
LLM_ROWS = """
SELECT * FROM {details}
  ANTI JOIN (SELECT DISTINCT session_id, parent_span_id AS span_id FROM {details}
             WHERE event_type = 'llm.request' AND parent_span_id IS NOT NULL) USING (session_id, span_id)
WHERE event_type IN ('llm.request', 'llm.response')
"""
LLM_TOKENS = ",\n  ".join(
    f"coalesce(sum({kind}_tokens) FILTER (WHERE event_type = 'llm.request'), 0)::BIGINT AS {kind}_tokens"
    for kind in TOKEN_NAMES
)
LLM = (
    with_percentiles(
        """
SELECT model,
  count(*) FILTER (WHERE event_type = 'llm.request') AS requests,
  """
        + LLM_TOKENS
        + "\nFROM ("
        + fill(LLM_ROWS, details="details")
        + ") GROUP BY model",
        "model",
        "SELECT model, latency_ms AS value FROM (" + fill(LLM_ROWS, details="details") + ") "
        "WHERE event_type = 'llm.response'",
        (0.5, 0.95, 0.99),
        " AS latency",
    )
    + "ORDER BY requests DESC, model NULLS LAST"
)
# Per completed session, what `waza compare` and `waza alert` test: its outcome,
# duration and the tokens of its model calls per model (a row per model; one
# with a null model for a session that called none), counted as LLM counts them.
OUTCOMES = """
WITH llm AS (
  SELECT session_id, model,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens
  FROM details
    ANTI JOIN (SELECT DISTINCT session_id, parent_span_id AS span_id FROM details
               WHERE event_type = 'llm.request' AND parent_span_id IS NOT NULL) USING (session_id, span_id)
  WHERE event_type = 'llm.request'
  GROUP BY session_id, model
)
SELECT s.session_id, s.start_time, s.skill_name, s.success, s.duration_ms, l.model,
  l.input_tokens, l.output_tokens, l.cache_read_tokens, l.cache_write_tokens, l.total_tokens
FROM (SELECT * FROM sessions WHERE {where} AND end_time IS NOT NULL) s LEFT JOIN llm l USING (session_id)
"""
# Errors from every place one is recorded: ``error`` events, tools and model calls
# that completed with an error, and sessions and agents that ended with one. Each
# text counts once per session, whether or not it begins with its type (an
# exception recorded on every span it passed through, and in the status of the
# span it ended, is one error), under the type an ``error`` event gives it, else
# the type its text begins with ("TimeoutError: ..."). A session's or agent's ending error
# counts only when the session recorded no other: it is then the only word of
# what went wrong.
ERROR_ROWS = (
    """
  SELECT session_id{carry}, arg_min(message, rank) AS message, arg_min(error_type, rank) AS error_type
  FROM (
    SELECT *, sum(CASE WHEN event_type IN ('session.ended', 'agent.invoked') THEN 0 ELSE 1 END)
                OVER (PARTITION BY session_id) AS others
    FROM (
      SELECT session_id{carry}, event_type,
        coalesce(message, error, data_error_type) AS message,
        regexp_replace(coalesce(message, error, data_error_type), '"""
    + ERROR_TYPE_PREFIX
    + """', '') AS text,
        coalesce(CASE WHEN event_type = 'error' THEN data_error_type END,
                 nullif(regexp_extract(coalesce(message, error), '"""
    + ERROR_TYPE_PREFIX
    + """', 1), ''),
                 data_error_type, 'error') AS error_type,
        CASE WHEN event_type = 'error' THEN 0 ELSE 1 END AS rank
      FROM {details}
      WHERE event_type = 'error'
        OR (event_type IN ('tool.completed', 'llm.response', 'agent.invoked', 'session.ended')
            AND error IS NOT NULL)
    )
  )
  WHERE event_type NOT IN ('session.ended', 'agent.invoked') OR others = 0
  GROUP BY session_id{carry}, text
"""
)
ERRORS = (
    "SELECT error_type, count(*) AS count, min(message) AS example FROM ("
    + fill(ERROR_ROWS, details="details", carry="")
    + ") GROUP BY error_type ORDER BY count DESC, error_type"
)

# Picking sessions to convert into tasks, without loading them: per completed
# session of a slice, the prompt, ending error and tools in order, each ranked by
# what makes a good regression test (see tasks/selection.py for the weights),
# in the ``{order}`` asked: the best first, equal ranks in an order the seed fixes.
CATALOG_FIELDS = fields("prompt", "error", "tool")
CATALOG_EVENT_TYPES = f"('{SESSION_STARTED}', '{SESSION_ENDED}', '{TOOL_CALLED}')"
CATALOG_SCAN = (
    "SELECT session_id, event_type, timestamp, event_id, data FROM read_json({files}, "
    "format = 'newline_delimited', columns = {'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', "
    f"'session_id': 'VARCHAR', 'data': '{CATALOG_FIELDS}', 'event_id': 'VARCHAR'}}, "
    "compression = '{compression}', ignore_errors = true, maximum_object_size = {max_line}) "
    f"WHERE timestamp IS NOT NULL AND event_type IN {CATALOG_EVENT_TYPES}"
)
PARQUET_CATALOG_SCAN = (
    "SELECT session_id, event_type, timestamp, {event_id}, struct_pack(prompt := data_json ->> 'prompt', "
    "error := data_json ->> 'error', tool := data_json ->> 'tool') AS data "
    "FROM read_parquet({files}, union_by_name = true) "
    f"WHERE timestamp IS NOT NULL AND event_type IN {CATALOG_EVENT_TYPES}"
)
CATALOG = (
    """
WITH chosen AS (SELECT session_id, start_time, skill_name, duration_ms, success FROM sessions
                WHERE {where} AND end_time IS NOT NULL),
facts AS (
  SELECT session_id,
    arg_min(data.prompt, timestamp) FILTER (WHERE event_type = 'session.started') AS prompt,
    arg_max(data.error, timestamp) FILTER (WHERE event_type = 'session.ended') AS error,
    string_agg(data.tool, ' > ' ORDER BY timestamp, event_id) FILTER (WHERE event_type = 'tool.called')
      AS tools
  FROM ("""
    + ONCE.replace("{order}", "timestamp")
    + """) SEMI JOIN chosen USING (session_id)
  GROUP BY session_id
),
counted AS (
  SELECT c.*, f.prompt, f.error, f.tools,
    count(*) OVER (PARTITION BY f.tools) AS same_tools,
    count(*) OVER (PARTITION BY c.skill_name) AS same_skill,
    quantile_cont(c.duration_ms, {slow}) OVER (PARTITION BY c.skill_name) AS slow_limit,
    count(*) OVER () AS total
  FROM chosen c LEFT JOIN facts f USING (session_id)
)
SELECT session_id, start_time, skill_name, duration_ms, success, prompt, error, tools, same_tools, same_skill,
  CASE WHEN same_skill >= {min_for_slow} THEN slow_limit END AS slow_limit, total,
  (CASE WHEN NOT success THEN 8 ELSE 0 END)
  + (CASE WHEN same_skill >= {min_for_slow} AND duration_ms > slow_limit THEN 4 ELSE 0 END)
  + (CASE WHEN tools IS NOT NULL AND same_tools <= greatest(2, {rare} * total) THEN 2 ELSE 0 END)
  + (CASE WHEN same_skill <= {rare} * total THEN 1 ELSE 0 END) AS rank
FROM counted
ORDER BY {order}
"""
)
# The events of the sessions picked, whole, to build their tasks from.
PICKED_EVENTS = (
    "SELECT timestamp, event_type, skill_name, data::VARCHAR, session_id, event_id FROM read_json({files}, "
    "format = 'newline_delimited', columns = {'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', "
    "'skill_name': 'VARCHAR', 'session_id': 'VARCHAR', 'data': 'JSON', 'event_id': 'VARCHAR'}, "
    "compression = '{compression}', ignore_errors = true, maximum_object_size = {max_line}) "
    "WHERE timestamp IS NOT NULL AND session_id IN (SELECT session_id FROM picked)"
)
PARQUET_PICKED_EVENTS = (
    "SELECT timestamp, event_type, skill_name, data_json, session_id, {event_id} "
    "FROM read_parquet({files}, union_by_name = true) WHERE session_id IN (SELECT session_id FROM picked)"
)

# Which sessions answer tasks: each session's task metadata and prompt, in
# batches; the digests are taken in Python, exactly as the tasks' were.
ANSWERS = """
WITH facts AS (
  SELECT session_id, arg_min(data.prompt, timestamp) FILTER (WHERE event_type = 'session.started') AS prompt
  FROM ({scan}) GROUP BY session_id
)
SELECT s.session_id, s.start_time, s.{task_column} AS task_id, f.prompt
FROM sessions s LEFT JOIN facts f USING (session_id) WHERE s.counted
"""


# Compaction (engine/compaction.py): closed segments, read once each, become a
# Parquet file of their events (each event id once, sorted by session and time)
# and one of the sessions they fold into; a segment with an unreadable line is
# left alone.
SEGMENTS_SCAN = (
    "read_json({files}, format = 'newline_delimited', compression = 'gzip', "
    "columns = {'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'skill_name': 'VARCHAR', "
    "'data': 'JSON', 'session_id': 'VARCHAR', 'event_id': 'VARCHAR'}, ignore_errors = true, "
    "filename = true, maximum_object_size = {max_line})"
)
SEGMENT_BAD_LINES = f"SELECT filename, count(*) FILTER (WHERE {UNREADABLE}) FROM {{scan}} GROUP BY filename"
COMPACTED_EVENTS = (
    "COPY (SELECT timestamp, event_type, skill_name, session_id, event_id, data::VARCHAR AS data_json, "
    "json_transform(data, {structure}) AS data FROM ({once}) ORDER BY session_id, timestamp) "
    "TO {target} (FORMAT parquet, COMPRESSION zstd)"
)
# A session met in a file compacted earlier is folded whole into the file that meets it: its
# parts there (``earlier_parts``: the live ones, each with the digest of its file) are folded
# with the new, and listed in ``replaced-<digest>.parquet``, which readers leave out of every
# read of those files. Each session thus lives in one file.
REPLACED_FILES = "SELECT session_id, part_file FROM read_parquet({files})"
NO_REPLACED = "SELECT NULL::VARCHAR AS session_id, NULL::VARCHAR AS part_file WHERE false"
REPLACED_PARTS = (
    "COPY (SELECT session_id, part_file FROM earlier_parts ORDER BY session_id) "
    "TO {target} (FORMAT parquet, COMPRESSION zstd)"
)
NO_FILES = "SELECT NULL::VARCHAR AS part_file, NULL::VARCHAR AS parts, NULL::VARCHAR AS details WHERE false"
NEW_PARTS = "CREATE OR REPLACE TEMP TABLE new_parts AS {parts}"
EARLIER_PARTS = (
    "CREATE OR REPLACE TEMP TABLE earlier_parts AS SELECT * FROM (SELECT {columns}, alone, "
    + PART_FILE
    + " FROM read_parquet({files}, "
    "filename = true, union_by_name = true) WHERE session_id IN (SELECT session_id FROM new_parts)) "
    "ANTI JOIN ({replaced}) USING (session_id, part_file)"
)
NO_EARLIER_PARTS = (
    "CREATE OR REPLACE TEMP TABLE earlier_parts AS "
    "SELECT *, NULL::BOOLEAN AS alone, NULL::VARCHAR AS part_file FROM new_parts LIMIT 0"
)
EARLIER_FILES = "SELECT DISTINCT part_file FROM earlier_parts"
# A part is ``alone`` when it holds a session's start and its end, or a start an hour or more
# before the last start of the file and no end (abandoned, most likely), or folds a part that
# was: its figures are kept in the file's rollup (see rollup_sql.py). Parts and details are
# sorted with the others first, so that readers of those skip the rest by the files' statistics
# (a file holds tens of thousands of sessions, a few hundred not alone). Row groups are as small
# as that skipping needs and no smaller: every reading parses the statistics of every group, and
# at 2,048 rows those of a store of 10^7 sessions took most of a report's time.
PARTS_ROW_GROUP = 8192  # sessions
DETAILS_ROW_GROUP = 65536  # events: a session has about a dozen
FOLDED_PARTS = """
COPY (
  WITH folded AS (
    SELECT session_id, min(started_at) AS started_at, min(first_at) AS first_at, max(end_time) AS end_time,
      arg_max(success, end_time) AS success, arg_min(skill_name, skill_at) AS skill_name,
      min(skill_at) AS skill_at, arg_min(agent_name, agent_at) AS agent_name, min(agent_at) AS agent_at,
      bool_or(agent_failed) AS agent_failed, max(root_agent) AS root_agent,
      (sum(tool_calls - len(tool_ids)) + len(list_distinct(flatten(list(tool_ids)))))::BIGINT AS tool_calls,
      list_distinct(flatten(list(tool_ids))) AS tool_ids,
      arg_min(metadata, started_at) AS metadata, bool_or(abandoned) AS abandoned, max(limits) AS limits,
      sum(events)::BIGINT AS events, sum(bad_rows)::BIGINT AS bad_rows,
      arg_max(recorded_ms, end_time) AS recorded_ms, sum(copies)::BIGINT AS copies,
      coalesce(bool_or(alone), false) AS was_alone
    FROM (SELECT *, NULL::BOOLEAN AS alone FROM new_parts
          UNION ALL BY NAME SELECT * EXCLUDE (part_file) FROM earlier_parts)
    GROUP BY session_id
  )
  SELECT * EXCLUDE (was_alone), coalesce(started_at IS NOT NULL AND (end_time IS NOT NULL OR was_alone
    OR started_at < (SELECT max(started_at) FROM folded) - INTERVAL 1 HOUR), false) AS alone
  FROM folded ORDER BY alone, session_id
) TO {target} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group})
"""
# The details of the sessions a file holds: its own events' and those of the parts it replaces,
# each event id once, with the skill each tool call served worked out over them all.
EARLIER_DETAILS = (
    "SELECT " + DETAIL_COLUMNS + " FROM (SELECT *, " + PART_FILE + " FROM read_parquet({files}, "
    "filename = true) WHERE session_id IN (SELECT session_id FROM earlier_parts)) "
    "SEMI JOIN earlier_parts USING (session_id, part_file)"
)
# The details of ``{rows}``: those of one new file (each event once already), or ``DETAILS_ONCE``
# of those and the details earlier files hold of the same sessions.
DETAILS_ONCE = "SELECT * EXCLUDE (copy) FROM (" + ONCE.replace("{order}", "event_type") + ")"
FOLDED_DETAILS = (
    "COPY (SELECT * REPLACE (last_value(loaded IGNORE NULLS) OVER (PARTITION BY session_id "
    "ORDER BY event_time, event_type ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS attributed, "
    "true AS precomputed) FROM ({rows}) "
    "JOIN (SELECT session_id, alone FROM read_parquet({parts})) USING (session_id) "
    "ORDER BY alone, session_id) TO {target} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group})"
)
PARQUET_ROWS = "SELECT count(*) FROM read_parquet({file})"
UNREADABLE_ROWS = "SELECT coalesce(sum(bad_rows), 0) FROM sessions_rows"

# What DuckDB reads when a kind of file is missing: the columns, no rows.
EMPTY_CATALOG = (
    "SELECT NULL::VARCHAR AS session_id, NULL::VARCHAR AS event_type, NULL::TIMESTAMPTZ AS timestamp, "
    f"NULL::VARCHAR AS event_id, NULL::{CATALOG_FIELDS} AS data LIMIT 0"
)
EMPTY_DETAILS = (
    "SELECT NULL::VARCHAR AS session_id, NULL::VARCHAR AS event_type, "
    f"NULL::{DETAIL_FIELDS} AS data, NULL::VARCHAR AS event_id, NULL::TIMESTAMPTZ AS timestamp, "
    "NULL::VARCHAR AS skill_name LIMIT 0"
)
EMPTY_RECORDS = "SELECT NULL::VARCHAR AS filename, NULL::JSON AS s"
EMPTY_EVENTS = (
    "SELECT NULL::TIMESTAMPTZ AS timestamp, NULL::VARCHAR AS event_type, "
    f"NULL::VARCHAR AS skill_name, NULL::{DATA_FIELDS} AS data, NULL::VARCHAR AS session_id, "
    "NULL::VARCHAR AS event_id LIMIT 0"
)
PARQUET_COLUMNS = "SELECT DISTINCT name FROM parquet_schema({files})"
# The sessions picked to read whole, named in a table the picked-events scans join.
PICKED_TABLE = "CREATE OR REPLACE TEMP TABLE picked (session_id VARCHAR)"
PICK = "INSERT INTO picked VALUES (?)"
