"""What the ingest routes accept: every field typed and bounded, unknown fields refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr

MAX_ID = 256
MAX_NAME = 128
MAX_TEXT = 256 * 1024
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)


def _possible(moment: datetime) -> datetime:
    """A time an event can have happened at: naive means UTC; not before 2000 nor a day ahead."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST <= moment <= datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError(f"impossible timestamp {moment.isoformat()}: not between 2000 and tomorrow")
    return moment


Timestamp = Annotated[datetime, AfterValidator(_possible)]
SessionId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)]
SessionPath = Annotated[str, Path(min_length=1, max_length=MAX_ID)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]
EventType = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9_.:-]+$")]
Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionStart(_Strict):
    prompt: Text = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: SessionId | None = Field(None, description="Given by the caller, or made up by the server.")
    skill_name: Name | None = None
    timestamp: Timestamp | None = Field(
        None, description="When the session started; the server's time if absent."
    )


class EventIn(_Strict):
    event_type: EventType
    data: dict[str, Any] = Field(default_factory=dict)
    skill_name: Name | None = None
    timestamp: Timestamp | None = Field(None, description="When it happened; the server's time if absent.")


class SessionEnd(_Strict):
    output: Text = ""
    success: StrictBool = True
    error: Text | None = None
    timestamp: Timestamp | None = None


class SessionStarted(BaseModel):
    session_id: str
    sampled: bool = Field(description="False when the sampler left this session out: nothing is stored.")


class Accepted(BaseModel):
    ok: bool = True


class BatchResult(BaseModel):
    accepted: int
    rejected: list[dict[str, Any]] = Field(description="Each refused line: its number and what is wrong.")


class Problem(BaseModel):
    """The body of every refusal."""

    error: str = Field(description="What is wrong, in one line.")
    problems: list[str] | None = Field(None, description="Every invalid field, for a 422.")
    rejected: list[dict[str, Any]] | None = Field(None, description="Every refused line, for a batch.")


# The refusals every write route can give, published in the OpenAPI schema.
REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON, or no line of a batch is an event."},
    401: {"model": Problem, "description": "A bearer token is configured and this one is missing or wrong."},
    413: {"model": Problem, "description": "The body is larger than the server takes."},
    422: {
        "model": Problem,
        "description": "A field is missing, of the wrong type, unknown or out of bounds.",
    },
    503: {"model": Problem, "description": "The event log cannot be written; nothing was stored."},
}
