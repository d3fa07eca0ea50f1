"""What `compare` and `alert` test, per completed session, read through the engine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from waza.analysis.analyzer import PathLike, TelemetryAnalyzer
from waza.analysis.details import Prices, cost_of
from waza.engine.base import Engine
from waza.engine.slicing import Slice
from waza.store.sources import Problem, Source


@dataclass
class Outcome:
    """One completed session: how it ended, how long it took, what its model calls used."""

    session_id: str
    start_time: datetime
    skill: str | None
    success: bool
    duration_ms: int | None  # None when its clock stepped back
    tokens: int  # all the tokens of its model calls (see schema.TOKEN_NAMES)
    cost: float | None  # None without a price table, or when a model it called has no price


def load_outcomes(
    paths: Iterable[PathLike],
    scopes: Sequence[Slice],
    *,
    engine: str = "duckdb",
    master: str | None = None,
    prices: Prices | None = None,
) -> tuple[list[list[Outcome]], list[Problem]]:
    """The completed sessions of each scope, from one reading of ``paths``; and what could not be read."""

    def collect(
        opened: Engine, _: list[Source], problems: list[Problem]
    ) -> tuple[list[list[Outcome]], list[Problem]]:
        return [_outcomes(opened, scope, prices) for scope in scopes], problems

    analyzer = TelemetryAnalyzer(engine=engine, master=master)
    return analyzer.read_paths(paths, collect)


def _outcomes(engine: Engine, scope: Slice, prices: Prices | None) -> list[Outcome]:
    sessions: dict[str, Outcome] = {}
    for columns, batch in engine.outcomes(scope):
        for values in batch:
            row = dict(zip(columns, values, strict=True))
            session = sessions.get(row["session_id"])
            if session is None:
                session = sessions[row["session_id"]] = Outcome(
                    row["session_id"],
                    row["start_time"],
                    row["skill_name"],
                    bool(row["success"]),
                    row["duration_ms"],
                    0,
                    0.0 if prices is not None else None,
                )
            if row["model"] is None and row["input_tokens"] is None:
                continue  # a session without model calls
            session.tokens += row["total_tokens"]
            price = cost_of(row, prices)
            session.cost = None if price is None or session.cost is None else session.cost + price
    return list(sessions.values())
