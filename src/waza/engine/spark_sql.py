"""The metric SQL in Spark's dialect.

Every statement is defined once, in ``sql.py``, in DuckDB's dialect; sqlglot
transpiles it for Spark. Two constructs are taught to it here: DuckDB's
``epoch_us`` is Spark's ``unix_micros``, and DuckDB's ``quantile_cont`` is
Spark's exact ``percentile`` (both interpolate linearly between the closest
ranks, so they are the same definition).
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.spark import Spark


def _percentile(generator: Spark.Generator, expression: exp.PercentileCont) -> str:
    return generator.func("PERCENTILE", expression.this, expression.expression)


class _WazaDuckDB(DuckDB):
    class Parser(DuckDB.Parser):
        FUNCTIONS = {**DuckDB.Parser.FUNCTIONS, "EPOCH_US": exp.UnixMicros.from_arg_list}


class _WazaSpark(Spark):
    class Generator(Spark.Generator):
        TRANSFORMS = {**Spark.Generator.TRANSFORMS, exp.PercentileCont: _percentile}


@functools.lru_cache(maxsize=256)
def to_spark(statement: str) -> str:
    """One statement of DuckDB SQL as Spark SQL."""
    (translated,) = sqlglot.transpile(statement, read=_WazaDuckDB, write=_WazaSpark)
    return translated
