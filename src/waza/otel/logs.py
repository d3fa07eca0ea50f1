"""OTLP log records as waza events: GenAI content events and anything else a trace logs.

A record joins the session of its trace id. It has no id on the wire, so a
digest of its bytes names it: an exporter that sends it again repeats the id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from waza.model import TelemetryEvent
from waza.otel.messages import prompt
from waza.otel.values import SpanError, any_value, attributes, flat, moment


def log_event(record: Any, latest: datetime) -> TelemetryEvent:
    if len(record.trace_id) != 16 or not any(record.trace_id):
        raise SpanError("a log record without a trace id")
    at = moment(record.time_unix_nano or record.observed_time_unix_nano, latest)
    found = attributes(record.attributes)
    name = record.event_name or str(found.pop("event.name", "") or "otel.log")
    data = flat(found)
    if record.HasField("body"):
        body = any_value(record.body)
        data["body"] = json.dumps(body) if isinstance(body, dict | list) else body
        if name == "gen_ai.user.message" and isinstance(body, dict):  # the older per-message events
            found.setdefault("gen_ai.input.messages", [{"role": "user", **body}])
    asked = prompt(found) if "gen_ai.input.messages" in found else ""
    extra = {
        "prompt": asked or None,
        "span_id": record.span_id.hex() or None,
        "severity": record.severity_text or None,
    }
    digest = hashlib.sha256(record.SerializeToString(deterministic=True)).hexdigest()[:24]
    return TelemetryEvent(at, name, None, data | extra, record.trace_id.hex(), f"log-{digest}")
