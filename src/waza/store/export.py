"""The single-file JSON export that SPEC.md's ``export_to_file`` writes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from waza.model import SessionTelemetry, format_time, utc_now
from waza.store.atomic import replace_file


def write_export(sessions: Iterable[SessionTelemetry], path: str | os.PathLike[str]) -> None:
    """Write ``{"exported_at", "sessions"}``; readers never see a half-written file."""
    document = {
        "exported_at": format_time(utc_now()),
        "sessions": [session.to_dict() for session in sessions],
    }
    replace_file(path, lambda stream: json.dump(document, stream, indent=2, default=repr))
