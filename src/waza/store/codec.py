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


# The longest line the readers take; a longer one is skipped and reported.
MAX_READ_LINE_BYTES = 16 * 2**20
# The longest line a writer stores: far above any real event, far below what the
# readers take, so that no single value can stop an analysis.
MAX_LINE_BYTES = 2**20
# How a too-long event is shrunk, step by step: (longest string, most items per list or dict).
_SHRINK_STEPS = ((4096, 100), (512, 20), (64, 5))


def bounded_line(record: dict[str, Any], on_fallback: Callable[[], None] | None = None) -> tuple[bytes, bool]:
    """The record's line, shrunk if needed to at most ``MAX_LINE_BYTES``; True when it was.

    Values deep in ``data`` are cut (strings shortened, long lists and dicts trimmed)
    until the line fits, and ``data["_truncated_bytes"]`` says how long it was.
    """
    line = encode_line(record, on_fallback)
    if len(line) <= MAX_LINE_BYTES:
        return line, False
    for longest, items in _SHRINK_STEPS:
        data = _shrunk(record.get("data"), longest, items)
        if isinstance(data, dict):
            data["_truncated_bytes"] = len(line)
        else:
            data = {"_truncated_bytes": len(line)}
        smaller = encode_line({**record, "data": data}, on_fallback)
        if len(smaller) <= MAX_LINE_BYTES:
            return smaller, True
    return encode_line({**record, "data": {"_truncated_bytes": len(line)}}), True


def _shrunk(value: Any, longest: int, items: int) -> Any:
    if isinstance(value, str):
        return (
            value
            if len(value) <= longest
            else value[:longest] + f"...<TRUNCATED {len(value) - longest} chars>"
        )
    if isinstance(value, dict):
        kept = list(value.items())[:items]
        return {str(key): _shrunk(item, longest, items) for key, item in kept}
    if isinstance(value, list | tuple):
        return [_shrunk(item, longest, items) for item in value[:items]]
    return value


def finite(value: Any) -> Any:
    """``value`` with every NaN and infinity, at any depth, replaced by None (strict JSON's null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def fast_line(record: dict[str, Any]) -> bytes:
    """The record's line from msgspec's encoder, a fifth of ``encode_line``'s time (UTF-8 rather than
    ASCII escapes); ``bounded_line``'s for a line past the limit or a value msgspec cannot write
    (a lone surrogate). For the importer and the server; the collector's writer keeps to the
    standard library, so that capturing loads no more than it needs."""
    import msgspec

    try:
        line = msgspec.json.encode(record)
    except (TypeError, ValueError, OverflowError):
        return bounded_line(record)[0]
    return line if len(line) <= MAX_LINE_BYTES else bounded_line(record)[0]
