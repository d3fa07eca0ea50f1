"""The single-file JSON export that SPEC.md's ``export_to_file`` writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from waza.model import SessionTelemetry, format_time, utc_now


def write_export(sessions: Iterable[SessionTelemetry], path: str | os.PathLike[str]) -> None:
    """Write ``{"exported_at", "sessions"}``; readers never see a half-written file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "exported_at": format_time(utc_now()),
        "sessions": [session.to_dict() for session in sessions],
    }
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2, default=repr)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
