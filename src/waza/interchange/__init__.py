"""Moving telemetry in and out: ``waza import`` of logs, OTLP files and exports into the event
log, and ``waza export`` of sessions as OpenTelemetry traces or Parquet tables.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
