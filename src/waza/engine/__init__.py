"""Engines that fold stored telemetry into sessions and compute the metrics.

Internal: the public API is ``waza.telemetry`` and the ``waza`` command; names here may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waza.errors import MissingExtraError

if TYPE_CHECKING:  # engines load on demand: Spark's is heavy, DuckDB's is not needed by every caller
    from waza.engine.base import Engine

__all__ = ["ENGINES", "open_engine"]

ENGINES = ("duckdb", "spark")


def open_engine(
    name: str = "duckdb", *, master: str | None = None, memory_limit: str | None = None
) -> Engine:
    """DuckDB in this process (within ``memory_limit``), or Spark; a ``master`` given means Spark there."""
    if master is not None:
        name = "spark"
    if name == "duckdb":
        from waza.engine.duckdb_engine import DuckDBEngine

        return DuckDBEngine(memory_limit=memory_limit)
    if name == "spark":
        try:
            from waza.engine.spark_engine import SparkEngine
        except ModuleNotFoundError as missing:
            raise MissingExtraError("--engine spark", "spark", missing.name or "pyspark") from None

        return SparkEngine(master=master)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
