"""The public API: capture sessions, read them back, analyse them, turn them into eval tasks."""

from waza.analysis.analyzer import TelemetryAnalyzer
from waza.capture.collector import RuntimeCollector
from waza.errors import TelemetryError, UnknownSessionError, WazaError
from waza.model import SessionTelemetry, TelemetryEvent, fold_session, group_events
from waza.store.folder_sink import FolderSink
from waza.store.reader import load_sessions

__all__ = [
    "FolderSink",
    "RuntimeCollector",
    "SessionTelemetry",
    "TelemetryAnalyzer",
    "TelemetryError",
    "TelemetryEvent",
    "UnknownSessionError",
    "WazaError",
    "fold_session",
    "group_events",
    "load_sessions",
]
