"""How one record becomes one line of the event log."""

from __future__ import annotations

import json
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

    return json.dumps(record, separators=(",", ":"), default=fallback).encode("ascii")
