"""The public API: capture sessions, read them back, analyze them, turn them into eval tasks."""

from waza.analysis.analyzer import TelemetryAnalyzer
from waza.capture.collector import RuntimeCollector
from waza.capture.handle import SessionHandle, current_session
from waza.capture.http_sink import HttpSink
from waza.capture.limits import Limits
from waza.capture.redact import Redactor
from waza.errors import TelemetryError, UnknownSessionError, WazaError
from waza.model import SessionTelemetry, TelemetryEvent, fold_session, group_events
from waza.store.folder_sink import FolderSink
from waza.store.reader import load_sessions

__all__ = [
    "FolderSink",
    "HttpSink",
    "Limits",
    "Redactor",
    "RuntimeCollector",
    "SessionHandle",
    "SessionTelemetry",
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
