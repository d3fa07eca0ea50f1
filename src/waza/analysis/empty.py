"""Why a report holds no session, in words a person can act on.

A filter that matches nothing is usually a slip: a misspelt skill or metadata
key, a time window outside the data, or a value written differently from how
it was stored. The analyzer records what the input holds without filters; this
module turns that into one line that names the slip and the closest known names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from waza.engine.results import Summary
from waza.engine.slicing import Slice
from waza.errors import NothingToAnalyzeError, UsageError, WazaError
from waza.model import format_time, parse_time
from waza.store.reader import metadata_keys
from waza.store.sources import Source


def unfiltered(held: Summary, scope: Slice, sources: list[Source]) -> dict[str, Any]:
    """What the input holds without the scope's filters: sessions, their time range, skills and keys."""
    totals = held.totals
    wanted = [key for key, _ in scope.where]
    return {
        "sessions": totals.sessions,
        "start": format_time(totals.first_start) if totals.first_start else None,
        "end": format_time(totals.last_end or totals.first_start) if totals.first_start else None,
        "skills": sorted(held.per_skill),
        "metadata_keys": sorted(metadata_keys(sources)) if wanted and totals.sessions else [],
    }


def why_empty(report: dict[str, Any], paths: Iterable[str]) -> WazaError:
    """The error that explains an empty report: a usage error when a filter names something unknown."""
    where = ", ".join(map(str, paths))
    found = report.get("input") or {}
    held = found.get("unfiltered") or {}
    if not found.get("files"):
        unreadable = f" ({len(found['problems'])} unreadable, listed above)" if found.get("problems") else ""
        return NothingToAnalyzeError(
            f"no telemetry in {where}{unreadable}: a collector writes a session when it ends, and"
            " nothing for the sessions its sample_rate drops"
        )
    if not held.get("sessions"):
        return NothingToAnalyzeError(f"{where} holds {found['files']:,} files but no session")
    filters = report["filters"]
    skill = filters.get("skill")
    if skill is not None and skill not in held["skills"]:
        return UsageError(f"no skill {skill!r} in {where}{_closest(skill, held['skills'], 'skills')}")
    for key in filters.get("where") or {}:
        if held["metadata_keys"] and key not in held["metadata_keys"]:
            known = _closest(key, held["metadata_keys"], "metadata keys")
            return UsageError(f"no session has metadata key {key!r}{known}")
    covers = f"{held['sessions']:,} sessions from {_minute(held['start'])} to {_minute(held['end'])} UTC"
    return NothingToAnalyzeError(f"no sessions match the filters; {where} holds {covers}")


def _minute(moment: str) -> str:
    return parse_time(moment).strftime("%Y-%m-%d %H:%M")


def _closest(name: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return f"; known {what}: {shown}" if known else ""
