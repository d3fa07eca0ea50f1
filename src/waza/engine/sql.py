"""The SQL that folds stored records into sessions and defines every metric, written once.

Each statement reads the table or files named in it and nothing else, so the
same definitions serve files on disk and sessions handed over in memory.
Placeholders are ``{name}``, filled by ``fill`` (SQL's own braces stay as they are).
"""

from __future__ import annotations

import re


def fill(template: str, **values: object) -> str:
    """Replace ``{name}`` placeholders by the given values, touching no other brace."""
    return re.sub(
        r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


# The fields of ``data`` that metrics read, all as text or JSON: DuckDB parses each
# line once, and a value of an unexpected type becomes text, never a rejected line.
DATA_FIELDS = (
    "STRUCT(tool VARCHAR, success VARCHAR, duration_ms VARCHAR, error VARCHAR, model VARCHAR, "
    "tokens JSON, latency_ms VARCHAR, error_type VARCHAR, message VARCHAR, metadata JSON, limits JSON)"
)
EVENT_COLUMNS = (
    "{'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'skill_name': 'VARCHAR', "
    f"'data': '{DATA_FIELDS}', 'session_id': 'VARCHAR'}}"
)

# One row per session id found in event-log files. Unreadable lines arrive as
# rows of NULLs (mostly under a NULL session id); the files they came from are
# kept in bad_files so that only those files are re-read to name the lines.
# Tool, LLM and error events are kept per session as small lists, so that every
# figure can be sliced by session (skill, time, metadata) without a second scan.
EVENT_SESSIONS = """
SELECT session_id,
  coalesce(min(timestamp) FILTER (WHERE valid AND event_type = 'session.started'),
           min(timestamp) FILTER (WHERE valid)) AS start_time,
  max(timestamp) FILTER (WHERE valid AND event_type = 'session.ended') AS end_time,
  arg_max(coalesce(data.success = 'true', false), timestamp)
    FILTER (WHERE valid AND event_type = 'session.ended') AS success,
  arg_min(skill_name, timestamp) FILTER (WHERE valid AND skill_name IS NOT NULL) AS skill_name,
  count(*) FILTER (WHERE valid AND event_type = 'tool.called') AS tool_calls,
  arg_min(data.metadata, timestamp) FILTER (WHERE valid AND event_type = 'session.started') AS metadata,
  count(*) FILTER (WHERE valid AND event_type = 'session.abandoned') > 0 AS abandoned,
  sum(TRY_CAST(data.limits ->> 'events_dropped' AS BIGINT)) FILTER (WHERE valid AND ends) AS events_dropped,
  sum(TRY_CAST(data.limits ->> 'values_truncated' AS BIGINT)) FILTER (WHERE valid AND ends)
    AS values_truncated,
  list(data.tool) FILTER (WHERE valid AND event_type = 'tool.called') AS called,
  list({'tool': data.tool, 'success': data.success = 'true',
        'duration_ms': TRY_CAST(data.duration_ms AS DOUBLE), 'error': data.error})
    FILTER (WHERE valid AND event_type = 'tool.completed') AS tools,
  list({'model': data.model,
        'input_tokens': TRY_CAST(coalesce(data.tokens ->> 'input', data.tokens ->> 'prompt_tokens',
                                          data.tokens ->> 'input_tokens') AS BIGINT),
        'output_tokens': TRY_CAST(coalesce(data.tokens ->> 'output', data.tokens ->> 'completion_tokens',
                                           data.tokens ->> 'output_tokens') AS BIGINT)})
    FILTER (WHERE valid AND event_type = 'llm.request') AS llm_requests,
  list({'model': data.model, 'latency_ms': TRY_CAST(data.latency_ms AS DOUBLE)})
    FILTER (WHERE valid AND event_type = 'llm.response') AS llm_responses,
  list({'type': coalesce(data.error_type, 'error'), 'message': data.message})
    FILTER (WHERE valid AND event_type = 'error') AS errors,
  count(*) FILTER (WHERE valid) AS events,
  list(filename) FILTER (WHERE NOT valid) AS bad_files
FROM (
  SELECT *, timestamp IS NOT NULL AND event_type IS NOT NULL AND session_id IS NOT NULL AS valid,
    event_type IN ('session.ended', 'session.abandoned') AS ends
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
SELECT filename, session_id, start_time, end_time, skill_name, success, tool_calls, metadata,
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
    s -> '$.metadata' AS metadata
  FROM ({scan})
)
"""

# Session-shaped records carry no tool, LLM or error details in this form.
_NO_DETAILS = """NULL AS called, NULL AS tools, NULL AS llm_requests, NULL AS llm_responses,
    NULL AS errors"""

# The sessions every metric reads. Incomplete sessions have no success and no
# duration. A sampled session stands for 1/rate sessions, except that with
# keep_errors every session that did not succeed was kept, so it stands for one.
SESSIONS_VIEW = f"""
SELECT *,
  CASE WHEN sample_rate > 0 AND sample_rate < 1 AND NOT (keep_errors AND NOT coalesce(success, false))
       THEN 1 / sample_rate ELSE 1 END AS weight
FROM (
  SELECT session_id, start_time, end_time, skill_name,
    CASE WHEN end_time IS NOT NULL THEN coalesce(success, false) END AS success,
    CASE WHEN end_time IS NOT NULL
         THEN trunc(date_diff('microsecond', start_time, end_time) / 1000)::BIGINT END
      AS duration_ms,
    tool_calls::BIGINT AS tool_calls,
    metadata,
    TRY_CAST(metadata ->> 'sample_rate' AS DOUBLE) AS sample_rate,
    coalesce((metadata -> 'sample_keep_errors')::VARCHAR = 'true', false) AS keep_errors,
    abandoned AND end_time IS NULL AS abandoned,
    coalesce(events_dropped, 0) AS events_dropped,
    coalesce(values_truncated, 0) AS values_truncated,
    called, tools, llm_requests, llm_responses, errors
  FROM (
    SELECT session_id, start_time, end_time, skill_name, success, tool_calls, metadata,
      abandoned, events_dropped, values_truncated, called, tools, llm_requests, llm_responses, errors
    FROM event_sessions WHERE events > 0
    UNION ALL BY NAME
    SELECT session_id, start_time, end_time, skill_name, success, tool_calls, metadata,
      false AS abandoned, 0 AS events_dropped, 0 AS values_truncated, {_NO_DETAILS}
    FROM session_records WHERE NOT bad
  )
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
  sum(weight)::DOUBLE AS estimated,
  count(*) FILTER (WHERE abandoned) AS abandoned,
  sum(events_dropped)::BIGINT AS events_dropped,
  sum(values_truncated)::BIGINT AS values_truncated,
  min(start_time) AS first_start,
  max(end_time) AS last_end
FROM sessions
WHERE $skill IS NULL OR skill_name = $skill
GROUP BY skill_name ORDER BY skill_name
"""

# Sessions per UTC day of their start.
PER_DAY = """
SELECT (start_time AT TIME ZONE 'UTC')::DATE AS day, count(*) AS sessions, sum(weight)::DOUBLE AS estimated
FROM sessions WHERE $skill IS NULL OR skill_name = $skill
GROUP BY day ORDER BY day
"""
