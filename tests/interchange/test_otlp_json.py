"""Spans read straight from OTLP JSON give the events protobuf's parser gives, refusals included."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.interchange.test_import import sdk_export_lines
from tests.serve.test_otlp import otlp_json
from waza.model import TelemetryEvent, fold_session
from waza.otel import otlp
from waza.otel.traces import export_request
from waza.sample import sample_sessions

LATEST = datetime.now(UTC) + timedelta(days=1)


def both_ways(document: dict) -> tuple[tuple, tuple]:
    through_protobuf = otlp.events_of(otlp.from_json(json.loads(json.dumps(document))), LATEST)
    straight = otlp.json_events_of(document, LATEST)
    return through_protobuf, straight


def test_the_sdk_encoders_exports_read_alike() -> None:
    for line in sdk_export_lines()[:2]:  # the trace lines
        protobuf, straight = both_ways(json.loads(line))
        assert straight == protobuf and len(straight[0]) > 5


def test_hex_ids_string_integers_and_a_refused_span_read_alike() -> None:
    document = otlp_json("4bf92f3577b34da6a3ce929d0e0e4736", bad_span=True)
    protobuf, straight = both_ways(document)
    assert straight == protobuf and straight[1] == 1


def test_every_attribute_kind_and_waza_exports_read_alike() -> None:
    sessions = [
        fold_session(events[0]["session_id"], [TelemetryEvent.from_dict(e) for e in events])
        for events in sample_sessions(30, seed=2)
    ]
    document = json.loads(otlp.to_json(export_request(sessions, {"service.name": "agents"})))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] += [
        {"key": "ratio", "value": {"doubleValue": 0.25}},
        {"key": "flag", "value": {"boolValue": True}},
        {"key": "list", "value": {"arrayValue": {"values": [{"intValue": "7"}, {"stringValue": "x"}]}}},
        {"key": "map", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": 3}}]}}},
        {"key": "raw", "value": {"bytesValue": "3q2+7w=="}},
    ]
    span["status"] = {"code": 2, "message": "boom"}
    protobuf, straight = both_ways(document)
    assert straight == protobuf and straight[1] == 0
