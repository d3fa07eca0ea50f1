"""The SQL that folds stored records into sessions and defines every metric, written once.

Each statement reads the table or files named in it and nothing else, so the
same definitions serve files on disk and sessions handed over in memory.
"""

from __future__ import annotations

EVENT_COLUMNS = (
    "{{'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'skill_name': 'VARCHAR', "
    "'data': 'JSON', 'session_id': 'VARCHAR'}}"
)

# One row per session id found in event-log files. Unreadable lines arrive as
# rows of NULLs (mostly under a NULL session id); the files they came from are
# kept in bad_files so that only those files are re-read to name the lines.
EVENT_SESSIONS = """
SELECT session_id,
  coalesce(min(timestamp) FILTER (WHERE valid AND event_type = 'session.started'),
           min(timestamp) FILTER (WHERE valid)) AS start_time,
  max(timestamp) FILTER (WHERE valid AND event_type = 'session.ended') AS end_time,
  arg_max(coalesce((data -> '$.success')::VARCHAR = 'true', false), timestamp)
    FILTER (WHERE valid AND event_type = 'session.ended') AS success,
  arg_min(skill_name, timestamp) FILTER (WHERE valid AND skill_name IS NOT NULL) AS skill_name,
  count(*) FILTER (WHERE valid AND event_type = 'tool.called') AS tool_calls,
  count(*) FILTER (WHERE valid) AS events,
  list(filename) FILTER (WHERE NOT valid) AS bad_files
FROM (
  SELECT *, timestamp IS NOT NULL AND event_type IS NOT NULL AND session_id IS NOT NULL AS valid
  FROM ({scan})
)
GROUP BY session_id
"""

EVENT_SCAN = (
    "SELECT * FROM read_json({files}, format = 'newline_delimited', columns = "
    + EVENT_COLUMNS
    + ", compression = '{compression}', ignore_errors = true, filename = true, "
    "maximum_object_size = 268435456)"
)

# Session-shaped files, one JSON object per session, whatever the container.
SESSION_LINES_SCAN = (
    "SELECT filename, json AS s FROM read_json_objects({files}, "
    "format = 'newline_delimited', compression = '{compression}', ignore_errors = true, "
    "filename = true, maximum_object_size = 268435456)"
)
SESSION_DOCUMENT_SCAN = """
SELECT filename, unnest(json_extract(CASE WHEN json_type(doc) = 'ARRAY' THEN doc
                                          ELSE doc -> '$.sessions' END, '$[*]')) AS s
FROM (SELECT filename, json AS doc FROM read_json_objects({files}, format = 'unstructured',
      compression = '{compression}', ignore_errors = true, filename = true,
      maximum_object_size = {max_size}))
"""

SESSION_RECORDS = """
SELECT filename, session_id, start_time, end_time, skill_name, success, tool_calls,
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
    coalesce(json_array_length(s -> '$.tool_calls'), 0) AS tool_calls
  FROM ({scan})
)
"""

# The sessions every metric reads. Incomplete sessions have no success and no duration.
SESSIONS_VIEW = """
SELECT session_id, start_time, end_time, skill_name,
  CASE WHEN end_time IS NOT NULL THEN coalesce(success, false) END AS success,
  CASE WHEN end_time IS NOT NULL
       THEN trunc(date_diff('microsecond', start_time, end_time) / 1000)::BIGINT END
    AS duration_ms,
  tool_calls::BIGINT AS tool_calls
FROM (
  SELECT session_id, start_time, end_time, skill_name, success, tool_calls
  FROM event_sessions WHERE events > 0
  UNION ALL
  SELECT session_id, start_time, end_time, skill_name, success, tool_calls
  FROM session_records WHERE NOT bad
)
"""

# Files holding unreadable records, and how many.
BAD_FILES = """
SELECT file, count(*) FROM (SELECT unnest(bad_files) AS file FROM event_sessions
                            WHERE len(bad_files) > 0)
GROUP BY file
UNION ALL
SELECT filename, count(*) FROM session_records WHERE bad GROUP BY filename
"""

# Every figure per skill (NULL: sessions without one), in one pass; totals add these rows up.
PER_SKILL = """
SELECT skill_name,
  count(*) AS sessions,
  count(end_time) AS completed,
  count(*) FILTER (WHERE success) AS succeeded,
  coalesce(sum(duration_ms), 0)::HUGEINT AS duration_ms,
  coalesce(sum(tool_calls), 0)::BIGINT AS tool_calls,
  min(start_time) AS first_start,
  max(end_time) AS last_end
FROM sessions
WHERE $skill IS NULL OR skill_name = $skill
GROUP BY skill_name ORDER BY skill_name
"""
