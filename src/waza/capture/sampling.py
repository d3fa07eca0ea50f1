"""Deterministic per-session sampling: the same id gets the same decision everywhere.

One helper for the collector and ``waza serve``: both decide by the id, both
keep failed sessions the sample left out when ``keep_errors`` is on, and both
record how a session was sampled in its metadata, which analysis weighs by.
"""

from __future__ import annotations

import hashlib
from typing import Any

_SCALE = 1 << 64


class SessionSampler:
    """Keeps a session when a hash of its id falls under ``rate``.

    The decision depends on the id alone (SHA-256, not Python's salted
    ``hash()``), so every process and replica agrees, as trace-id ratio
    samplers do, and a kept session keeps all of its events.
    """

    def __init__(self, rate: float = 1.0, keep_errors: bool = False):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, not {rate!r}")
        self.rate = rate
        self.keep_errors = keep_errors  # whether a failed session is kept though the sample left it out
        self._bound = round(rate * _SCALE)

    def __call__(self, session_id: str) -> bool:
        if self.rate >= 1.0:
            return True
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") < self._bound

    def stamp(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """A session's metadata with how it was sampled: ``sample_rate`` (each kept session stands
        for 1/rate) and ``sample_keep_errors`` (a failure stands for itself: all were kept)."""
        if self.rate >= 1.0:
            return metadata
        stamped = {**metadata, "sample_rate": self.rate}
        if self.keep_errors:
            stamped["sample_keep_errors"] = True
        return stamped
