"""`waza compare` and `waza alert`: outcomes, statistics, comparisons, alerts, webhooks.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

__all__: list[str] = []
