"""The event log on disk and the files waza reads: layout, sinks, formats, the Python reader.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
