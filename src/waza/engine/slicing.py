"""Which sessions a report covers, and how it breaks them down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_USER_KEY = "user_id"


@dataclass(frozen=True)
class Slice:
    """A selection of sessions: by skill, start time and metadata values.

    ``by`` breaks every figure down by ``skill``, ``day`` (UTC day of the start)
    or a metadata key. ``user_key`` names the metadata key that identifies users.
    """

    skill: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    where: tuple[tuple[str, str], ...] = ()
    by: str | None = None
    user_key: str = DEFAULT_USER_KEY
    top: int = 5

    @property
    def metadata_keys(self) -> list[str]:
        """The metadata keys the report reads, beyond the sampling ones."""
        keys = [self.user_key, *(key for key, _ in self.where)]
        if self.by not in (None, "skill", "day"):
            keys.append(self.by)
        return list(dict.fromkeys(keys))


@dataclass
class Condition:
    """A SQL condition and its parameters (values are never spliced into SQL)."""

    sql: str = "counted"
    params: dict[str, object] = field(default_factory=dict)
