"""`waza serve`: the ingest routes, group commit, limits, and the report page.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
