"""Deterministic per-session sampling: the same id gets the same decision everywhere."""

from __future__ import annotations

import hashlib

_SCALE = 1 << 64


class SessionSampler:
    """Keeps a session when a hash of its id falls under ``rate``.

    The decision depends on the id alone (SHA-256, not Python's salted
    ``hash()``), so every process and replica agrees, as trace-id ratio
    samplers do, and a kept session keeps all of its events.
    """

    def __init__(self, rate: float = 1.0):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, not {rate!r}")
        self.rate = rate
        self._bound = round(rate * _SCALE)

    def __call__(self, session_id: str) -> bool:
        if self.rate >= 1.0:
            return True
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") < self._bound
