"""The public API: capture sessions, read them back, analyze them, turn them into eval tasks.

Capturing loads only what capturing needs: the analysis side (the engine,
DuckDB) loads the first time ``TelemetryAnalyzer`` or ``Slice`` is used, so
the skill's own process never pays for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from waza.capture.collector import RuntimeCollector
from waza.capture.handle import SessionHandle, current_session
from waza.capture.http_sink import HttpSink
from waza.capture.limits import Limits
from waza.capture.redact import Redactor
from waza.errors import TelemetryError, UnknownSessionError, WazaError
from waza.model import SessionTelemetry, TelemetryEvent, fold_session, group_events
from waza.store.folder_sink import FolderSink
from waza.store.reader import load_sessions

if TYPE_CHECKING:
    from waza.analysis.analyzer import TelemetryAnalyzer
    from waza.engine.slicing import Slice

_ON_FIRST_USE = {"TelemetryAnalyzer": "waza.analysis.analyzer", "Slice": "waza.engine.slicing"}

__all__ = [
    "FolderSink",
    "HttpSink",
    "Limits",
    "Redactor",
    "RuntimeCollector",
    "SessionHandle",
    "SessionTelemetry",
    "Slice",
    "TelemetryAnalyzer",
    "TelemetryError",
    "TelemetryEvent",
    "UnknownSessionError",
    "WazaError",
    "current_session",
    "fold_session",
    "group_events",
    "load_sessions",
]


def __getattr__(name: str) -> Any:
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module 'waza.telemetry' has no attribute {name!r}")
    value = getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    globals()[name] = value
    return value
