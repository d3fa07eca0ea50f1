"""Sessions as eval tasks: selection, waza's task format, graders, checking, replay.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
