"""How one record becomes one line of the event log."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any


def encode_line(record: dict[str, Any], on_fallback: Callable[[], None] | None = None) -> bytes:
    """Compact ASCII JSON on one line; a value JSON cannot hold is written as its repr.

    ASCII escapes keep every line valid UTF-8 even when a string holds lone surrogates.
    """

    def fallback(value: Any) -> str:
        if on_fallback is not None:
            on_fallback()
        return repr(value)

    try:
        text = json.dumps(record, separators=(",", ":"), default=fallback, allow_nan=False)
    except ValueError:  # NaN or an infinity, which strict JSON cannot hold: written as null
        if on_fallback is not None:
            on_fallback()
        text = json.dumps(finite(record), separators=(",", ":"), default=fallback, allow_nan=False)
    return text.encode("ascii")


def finite(value: Any) -> Any:
    """``value`` with every NaN and infinity, at any depth, replaced by None (strict JSON's null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
