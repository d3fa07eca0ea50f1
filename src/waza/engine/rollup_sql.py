"""The report as sums: what compaction keeps of each file it writes, and how a report adds them up.

Every figure of the default report is a count, a sum, or a percentile, a first
or a last of some group of sessions. Kept per UTC day and skill as counts, sums
and value -> count histograms (a "rollup"), the figures of any set of whole days
are the sums of their rollups, percentiles included, exactly: a percentile is
read off the cumulative counts of its histogram as ``quantile_cont`` reads it
off the sorted values. Rollups add and subtract, so a session kept in one file
and met again elsewhere is taken out (``sign`` -1) and counted once, folded from
all its parts.

ROLLUP reads ``rollup_sessions`` (sessions as SESSIONS_VIEW gives them, with the
user of each as ``users``), their detail events and the PREPARED tables over them.
The statements after it read ``rolled``: the rollups of the report's days and
skill, added up.
"""

from __future__ import annotations

from waza.engine import sql
from waza.schema import TOKEN_NAMES

# How many of the slowest sessions, and of those with the most tool calls, a rollup lists per
# day and skill: a report's lists come from them (``--top`` up to this many).
LISTED_PER_GROUP = 100
# The columns that say which group a rollup row counts, and of which kind it is.
KEYS = "kind, day, skill_name, key, detail, value"
# The columns added up (each multiplied by the row's sign).
COUNTS = (
    "n", "completed", "succeeded", "duration_ms", "timed", "ended_before_start", "tool_calls", "abandoned",
    "events_dropped", "values_truncated", "calls", "failed", "loads", "sessions", "requests",
    *(f"{kind}_tokens" for kind in TOKEN_NAMES),
)  # fmt: skip

# What ROLLUP reads beside ``rollup_sessions``: ``rollup_details``, the detail rows with their
# session's day and skill (as DETAILS gives them; WITH_GROUPS adds them to rows read elsewhere),
# and the rows of SKILLS_LOADED, LLM and ERRORS, each kept once for the kinds that read them.
SESSION_GROUPS = ", min(day) AS day, arg_min(skill_name, day) AS skill_name"
WITH_GROUPS = (
    "SELECT * FROM ({details}) JOIN (SELECT session_id, min(day) AS day, arg_min(skill_name, day) "
    "AS skill_name FROM rollup_sessions GROUP BY session_id) USING (session_id)"
)
_CARRY = ", day, skill_name"
PREPARED = {
    "rollup_loaded": sql.fill(sql.LOADED_ROWS, details="rollup_details", carry=_CARRY),
    "rollup_llm": sql.fill(sql.LLM_ROWS, details="rollup_details"),
    "rollup_errors": sql.fill(sql.ERROR_ROWS, details="rollup_details", carry=_CARRY),
}

ROLLUP = (
    """
SELECT 'sessions' AS kind, day, skill_name, count(*) AS n,"""
    + sql.SESSION_SUMS
    + """  min(start_time) AS first_start,
  max(end_time) AS last_end
FROM rollup_sessions GROUP BY day, skill_name
UNION ALL BY NAME
SELECT 'durations' AS kind, day, skill_name, duration_ms::DOUBLE AS value, count(*) AS n
FROM rollup_sessions WHERE duration_ms IS NOT NULL GROUP BY day, skill_name, value
UNION ALL BY NAME
SELECT 'users' AS kind, day, skill_name, users AS key, count(*) AS n
FROM rollup_sessions WHERE users IS NOT NULL GROUP BY day, skill_name, key
UNION ALL BY NAME
SELECT 'slowest' AS kind, day, skill_name, session_id AS key, duration_ms::DOUBLE AS value, count(*) AS n
FROM (SELECT *,
        row_number() OVER (PARTITION BY day, skill_name ORDER BY duration_ms DESC, session_id) AS place
      FROM rollup_sessions WHERE duration_ms IS NOT NULL)
WHERE place <= {listed} GROUP BY day, skill_name, key, value
UNION ALL BY NAME
SELECT 'most_tools' AS kind, day, skill_name, session_id AS key, tool_calls::DOUBLE AS value, count(*) AS n
FROM (SELECT *, row_number() OVER (PARTITION BY day, skill_name ORDER BY tool_calls DESC, session_id) AS place
      FROM rollup_sessions WHERE tool_calls > 0)
WHERE place <= {listed} GROUP BY day, skill_name, key, value
UNION ALL BY NAME
SELECT 'tools' AS kind, day, skill_name, tool AS key, count(*) AS n,
  count(*) FILTER (WHERE event_type = 'tool.called') AS calls,
  count(*) FILTER (WHERE event_type = 'tool.completed') AS completed,
  count(*) FILTER (WHERE event_type = 'tool.completed' AND NOT coalesce(ok, false)) AS failed
FROM rollup_details
WHERE event_type IN ('tool.called', 'tool.completed') AND tool IS NOT NULL
GROUP BY day, skill_name, key
UNION ALL BY NAME
SELECT 'tool_durations' AS kind, day, skill_name, tool AS key, duration_ms AS value, count(*) AS n
FROM rollup_details
WHERE event_type = 'tool.completed' AND tool IS NOT NULL AND duration_ms IS NOT NULL
GROUP BY day, skill_name, key, value
UNION ALL BY NAME
SELECT 'tool_errors' AS kind, day, skill_name, tool AS key, error AS detail, count(*) AS n
FROM rollup_details
WHERE event_type = 'tool.completed' AND tool IS NOT NULL AND error IS NOT NULL
GROUP BY day, skill_name, key, detail
UNION ALL BY NAME
SELECT 'loaded' AS kind, day, skill_name, skill AS key, count(*) AS n,
  count(*) FILTER (WHERE event_type = 'skill.invoked') AS loads,
  count(DISTINCT session_id) FILTER (WHERE event_type = 'skill.invoked') AS sessions,
  count(*) FILTER (WHERE event_type = 'tool.called') AS calls,
  count(*) FILTER (WHERE event_type = 'tool.completed' AND NOT coalesce(ok, false)) AS failed
FROM rollup_loaded WHERE skill IS NOT NULL GROUP BY day, skill_name, key
UNION ALL BY NAME
SELECT 'loaded_durations' AS kind, day, skill_name, skill AS key, duration_ms AS value, count(*) AS n
FROM rollup_loaded
WHERE skill IS NOT NULL AND event_type = 'tool.completed' AND duration_ms IS NOT NULL
GROUP BY day, skill_name, key, value
UNION ALL BY NAME
SELECT 'llm' AS kind, day, skill_name, model AS key, count(*) AS n,
  count(*) FILTER (WHERE event_type = 'llm.request') AS requests,
  """
    + sql.LLM_TOKENS
    + """
FROM rollup_llm GROUP BY day, skill_name, key
UNION ALL BY NAME
SELECT 'llm_latency' AS kind, day, skill_name, model AS key, latency_ms AS value, count(*) AS n
FROM rollup_llm WHERE event_type = 'llm.response' AND latency_ms IS NOT NULL
GROUP BY day, skill_name, key, value
UNION ALL BY NAME
SELECT 'errors' AS kind, day, skill_name, error_type AS key, message AS detail, count(*) AS n
FROM rollup_errors GROUP BY day, skill_name, key, detail
"""
)

# Rollups with a sign each, added up into one row per group. Added up for a report, a group
# nothing is left of goes (ROLLED_SUMS, ROLLED_VALUES). Added up to be stored (STORED_SUM: a
# file's rollup less those of the parts it replaced, a day's sum), a group keeps what it takes
# out, for another file may hold what it is taken from; a group of sums stays while any of them
# is not zero. The kinds that count values (histograms, users, errors) add up their counts alone,
# the few rows of the others every sum. First and last times come from the rollups added, never
# from those taken out (see STALE_GROUPS).
VALUE_KINDS = (
    "('durations', 'users', 'slowest', 'most_tools', 'tool_durations', 'tool_errors', 'loaded_durations', "
    "'llm_latency', 'errors')"
)
LISTS = "('slowest', 'most_tools')"


def _added_up(sums_kept: str, values_kept: str) -> tuple[str, str]:
    """The rows of the kinds that sum and of those that count values, each added up from ``rollups``."""
    sums = (
        "SELECT "
        + KEYS
        + ", "
        + ", ".join(f"sum(sign * {name})::BIGINT AS {name}" for name in COUNTS)
        + """,
  sum(sign * estimated)::DOUBLE AS estimated,
  min(first_start) FILTER (WHERE sign > 0) AS first_start,
  max(last_end) FILTER (WHERE sign > 0) AS last_end
FROM rollups WHERE kind NOT IN """
        + VALUE_KINDS
        + f" GROUP BY {KEYS} HAVING {sums_kept}"
    )
    values = f"SELECT {KEYS}, sum(sign * n)::BIGINT AS n FROM rollups WHERE kind IN {VALUE_KINDS} "
    return sums, values + f"GROUP BY {KEYS} HAVING {values_kept}"


_ROLLUPS = "WITH rollups AS ({rollups}) "
# Kept in two tables for a report: the value kinds are nearly every row, with no column but ``n``
# to add; ROLLED reads them as one.
ROLLED_SUMS, ROLLED_VALUES = (_ROLLUPS + rows for rows in _added_up("sum(sign * n) > 0", "sum(sign * n) > 0"))
ROLLED = "SELECT * FROM rolled_sums UNION ALL BY NAME SELECT * FROM rolled_values"
_ANY_SUM = " OR ".join(f"sum(sign * {name}) <> 0" for name in ("estimated", *COUNTS))
STORED_SUM = _ROLLUPS + " UNION ALL BY NAME ".join(_added_up(_ANY_SUM, "sum(sign * n) <> 0"))
# A file's rollup: what its sessions add, less what the parts it replaced added (see FOLDED_PARTS),
# with the groups the replaced sessions left (``moved``: their first start and last end may be
# the group's) and, per group and list, the entries taken out of its lists that may leave a gap
# (``unlisted``: the list then holds only its first LISTED_PER_GROUP less these for sure). None
# does when the session is put back as high, or when the file lists a full list's worth as high:
# the group's list is then made of those. (The file's lists are read as added, before the sum: an
# entry taken out and put back alike adds up to nothing, yet it is in the group's list.)
FILE_ROLLUP = (
    "WITH summed AS (" + STORED_SUM + ") SELECT * FROM summed UNION ALL BY NAME "
    "SELECT 'unlisted' AS kind, day, skill_name, kind AS key, count(*)::BIGINT AS n FROM summed gone "
    "WHERE kind IN " + LISTS + " AND n < 0 AND (SELECT count(*) FILTER (WHERE back.key = gone.key) = 0 "
    "AND count(*) < {listed} FROM ({rollups}) back WHERE back.sign > 0 AND back.kind = gone.kind "
    "AND back.day = gone.day AND back.value >= gone.value "
    "AND back.skill_name IS NOT DISTINCT FROM gone.skill_name) "
    "GROUP BY day, skill_name, kind"
)
MOVED = """
SELECT 'moved' AS kind, day, skill_name, count(*) AS n, min(start_time) AS first_start,
  max(end_time) AS last_end
FROM rollup_sessions ANTI JOIN added_groups a
  ON rollup_sessions.session_id = a.session_id AND rollup_sessions.day = a.day
  AND rollup_sessions.skill_name IS NOT DISTINCT FROM a.skill_name
GROUP BY day, skill_name
"""
ADDED_GROUPS = "SELECT session_id, day, skill_name FROM rollup_sessions"
# The groups of taken-out sessions that may be the first start or last end of their group in
# the stored rollups: the stored minimum cannot then be trusted (a session folded again never
# starts later or ends earlier, but it may change group); FRESH_EXTREMES reads those two again.
# Sessions are taken out when read (``retracted``) and when compacted (``moved`` rows).
STALE_GROUPS = """
SELECT DISTINCT r.day, r.skill_name
FROM (SELECT day, skill_name, first_start, last_end FROM retracted WHERE kind = 'sessions'
      UNION ALL
      SELECT day, skill_name, first_start, last_end FROM read_parquet({files}, union_by_name = true)
      WHERE kind = 'moved') r
  JOIN (SELECT day, skill_name, min(first_start) AS first_start, max(last_end) AS last_end
        FROM read_parquet({files}, union_by_name = true) WHERE kind = 'sessions' GROUP BY day, skill_name) s
  ON r.day = s.day AND r.skill_name IS NOT DISTINCT FROM s.skill_name
WHERE r.first_start = s.first_start OR r.last_end = s.last_end
"""
# The first start and last end of the stale groups, from their sessions (all of them: a few
# columns of a day's parts).
FRESH_EXTREMES = """
UPDATE rolled_sums SET first_start = fresh.first_start, last_end = fresh.last_end
FROM (SELECT s.day, s.skill_name, min(s.start_time) AS first_start, max(s.end_time) AS last_end
      FROM sessions s JOIN stale_groups g ON s.day = g.day AND s.skill_name IS NOT DISTINCT FROM g.skill_name
      WHERE s.counted GROUP BY s.day, s.skill_name) fresh
WHERE rolled_sums.kind = 'sessions' AND rolled_sums.day = fresh.day
  AND rolled_sums.skill_name IS NOT DISTINCT FROM fresh.skill_name
"""
# The rollups of a day's files added up into one file, each list cut to its first {listed} again
# (what it takes out of other days' lists kept whole).
SUMMED = (
    "COPY (SELECT * FROM (" + STORED_SUM + ") QUALIFY kind NOT IN " + LISTS + " OR n < 0 "
    "OR row_number() OVER (PARTITION BY kind, day, skill_name, n > 0 ORDER BY value DESC, key) <= {listed}) "
    "TO {target} (FORMAT parquet, COMPRESSION zstd)"
)
# How many entries of a list of one group may be missing: taken out when read, and when compacted.
UNLISTED = "SELECT coalesce(max(n), 0) FROM rolled WHERE kind = 'unlisted'"
TAKEN_OUT = "SELECT coalesce(sum(n), 0) FROM retracted WHERE kind = 'sessions'"
STORED = "SELECT *, 1 AS sign FROM read_parquet({files}, union_by_name = true)"
SIGNED = "SELECT *, {sign} AS sign FROM ({rollup})"
KEPT = "COPY (" + FILE_ROLLUP + ") TO {target} (FORMAT parquet, COMPRESSION zstd)"

# The rolled groups of a report's slice: whole UTC days, one skill or all.
SCOPED = "SELECT * FROM rolled WHERE {where}"

# FIGURES over the rolled groups of one kind, in its grouping sets; ``{value}`` adds a column to
# each set. The engine fills the breakdown as for FIGURES.
_FIGURE_GROUPS = """
SELECT grouping(skill_name) AS by_skill, {by_key} AS by_key, skill_name, {breakdown_value} AS breakdown,
  {columns}
FROM (SELECT *, {breakdown} AS breakdown FROM scoped WHERE kind = '{kind}')
GROUP BY GROUPING SETS (({value}), (skill_name{comma_value}){breakdown_set})
"""
FIGURE_COUNTS = sql.fill(
    _FIGURE_GROUPS,
    kind="sessions",
    value="",
    comma_value="",
    columns="""sum(n) AS sessions, sum(completed) AS completed, sum(succeeded) AS succeeded,
  sum(duration_ms)::BIGINT AS duration_ms, sum(timed) AS timed, sum(ended_before_start) AS ended_before_start,
  sum(tool_calls)::BIGINT AS tool_calls, sum(estimated)::DOUBLE AS estimated, sum(abandoned) AS abandoned,
  sum(events_dropped)::BIGINT AS events_dropped, sum(values_truncated)::BIGINT AS values_truncated,
  min(first_start) AS first_start, max(last_end) AS last_end""",
)
FIGURE_USERS = sql.fill(
    _FIGURE_GROUPS, kind="users", value="", comma_value="", columns="count(DISTINCT key) AS users"
)
# (its breakdown set is filled with ", value" inside)
FIGURE_DURATIONS = sql.percentiles(
    sql.fill(
        _FIGURE_GROUPS,
        kind="durations",
        value="value",
        comma_value=", value",
        columns="value, sum(n) AS n",
    ),
    "by_skill, by_key, skill_name, breakdown",
    (0.5, 0.9, 0.95, 0.99),
)

PER_DAY = """
SELECT day, sum(n) AS sessions, sum(estimated)::DOUBLE AS estimated, sum(completed) AS completed,
  sum(succeeded) AS succeeded, sum(duration_ms)::DOUBLE / nullif(sum(timed), 0) AS avg_duration_ms,
  coalesce(any_value(users), 0) AS users
FROM scoped LEFT JOIN (SELECT day, count(DISTINCT key) AS users FROM scoped WHERE kind = 'users' GROUP BY day)
  USING (day)
WHERE kind = 'sessions'
GROUP BY day ORDER BY day
"""


def _with_percentiles(totals: str, kind: str, quantiles: tuple[float, ...], column: str) -> str:
    """The rows of ``totals`` (keyed by their first column, named ``key`` here) with the
    percentiles of the histograms of ``kind`` per key beside them, as ``column``."""
    histogram = f"SELECT key, value, sum(n) AS n FROM scoped WHERE kind = '{kind}' GROUP BY key, value"
    percentiles = sql.percentiles(histogram, "key", quantiles)
    return (
        f"SELECT totals.* EXCLUDE (key), p.percentiles{column} FROM ({totals}) totals "
        f"LEFT JOIN ({percentiles}) p ON p.key IS NOT DISTINCT FROM totals.key "
    )


TOOLS = (
    _with_percentiles(
        "SELECT key, key AS tool, sum(calls)::BIGINT AS calls, sum(completed)::BIGINT AS completed, "
        "sum(failed)::BIGINT AS failed FROM scoped WHERE kind = 'tools' GROUP BY key",
        "tool_durations",
        (0.95,),
        "[1] AS duration_ms_p95",
    )
    + "ORDER BY calls DESC, tool"
)
TOOL_ERRORS = """
SELECT tool, error AS top_error
FROM (SELECT key AS tool, detail AS error,
        row_number() OVER (PARTITION BY key ORDER BY sum(n) DESC, detail) AS rank
      FROM scoped WHERE kind = 'tool_errors' GROUP BY key, detail)
WHERE rank = 1
"""
SKILLS_LOADED = (
    _with_percentiles(
        "SELECT key, key AS skill, sum(loads)::BIGINT AS loads, sum(sessions)::BIGINT AS sessions, "
        "sum(calls)::BIGINT AS tool_calls, sum(failed)::BIGINT AS tool_failures "
        "FROM scoped WHERE kind = 'loaded' GROUP BY key",
        "loaded_durations",
        (0.95,),
        "[1] AS tool_duration_ms_p95",
    )
    + "ORDER BY sessions DESC, skill"
)
LLM = (
    _with_percentiles(
        "SELECT key, key AS model, sum(requests)::BIGINT AS requests, "
        + ", ".join(f"sum({kind}_tokens)::BIGINT AS {kind}_tokens" for kind in TOKEN_NAMES)
        + " FROM scoped WHERE kind = 'llm' GROUP BY key",
        "llm_latency",
        (0.5, 0.95, 0.99),
        " AS latency",
    )
    + "ORDER BY requests DESC, model NULLS LAST"
)
# The sessions that stand out (SLOWEST, MOST_TOOLS), from the first {listed} of each day and
# skill: the first {limit} of the slice are among them while {limit} <= {listed} less the sessions
# taken out.
LISTED = """
SELECT key AS session_id, skill_name, value::BIGINT AS value
FROM (SELECT *, unnest(range(n)) FROM scoped WHERE kind = '{kind}')
ORDER BY value DESC, session_id LIMIT {limit}
"""
ERRORS = """
SELECT key AS error_type, sum(n)::BIGINT AS count, min(detail) AS example
FROM scoped WHERE kind = 'errors'
GROUP BY key ORDER BY count DESC, error_type
"""
