"""`waza report`: the analysis as one self-contained HTML page with charts and session timelines.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
