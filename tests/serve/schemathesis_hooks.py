"""Schemathesis hooks: batches are NDJSON, which it cannot derive from a schema of a string."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import strategies as st

event = st.fixed_dictionaries(
    {
        "timestamp": st.sampled_from(["2026-11-20T10:00:00Z", "1970-01-01T00:00:00Z", "not a time"]),
        "event_type": st.sampled_from(["tool.called", "", "bad type!"]),
        "session_id": st.text(max_size=20),
    },
    optional={"data": st.dictionaries(st.text(max_size=5), st.integers()), "extra": st.none()},
).map(json.dumps)
lines = st.lists(st.one_of(event, st.text(max_size=30)), max_size=6)
schemathesis.openapi.media_type("application/x-ndjson", lines.map(lambda items: "\n".join(items).encode()))
