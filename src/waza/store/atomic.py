"""Replacing a file whole: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


def replace_text(path: str | os.PathLike[str], text: str) -> None:
    replace_file(path, lambda stream: stream.write(text))


def replace_file(path: str | os.PathLike[str], write: Callable[[TextIO], object]) -> None:
    """Let ``write`` fill a scratch file beside ``path``, make it durable, and rename it over ``path``
    (folders made as needed)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
