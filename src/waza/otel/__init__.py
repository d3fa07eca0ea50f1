"""OpenTelemetry interchange: OTLP payloads and the mapping between spans and waza events.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
