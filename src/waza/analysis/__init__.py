"""TelemetryAnalyzer and the JSON and terminal reports.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
