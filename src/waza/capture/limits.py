"""Bounds on what a collector holds in memory; what they cut is counted, never silent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """``max_open_sessions``: past it the least recently active session is abandoned.
    ``max_events_per_session``: further events of a session are dropped and counted.
    ``max_value_chars``: longer prompts, outputs, errors and top-level string values
    in event data are cut (deeper values are bounded when written).
    ``idle_timeout``: seconds without activity after which a session is abandoned.
    """

    max_open_sessions: int = 10_000
    max_events_per_session: int = 10_000
    max_value_chars: int = 64 * 1024
    idle_timeout: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("max_open_sessions", "max_events_per_session", "max_value_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")

    def cut(self, text: str) -> tuple[str, bool]:
        if len(text) <= self.max_value_chars:
            return text, False
        dropped = len(text) - self.max_value_chars
        return text[: self.max_value_chars] + f"...<TRUNCATED {dropped} chars>", True

    def cut_data(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """A shallow copy of ``data`` with long top-level strings cut, and how many were."""
        copy = dict(data)
        cuts = 0
        for key, value in copy.items():
            if isinstance(value, str) and len(value) > self.max_value_chars:
                copy[key], _ = self.cut(value)
                cuts += 1
        return copy, cuts
