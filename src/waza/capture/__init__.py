"""Recording in the skill's process: the collector, its writer, sinks, sampling, redaction.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
