"""The metric SQL in Spark's dialect.

Every statement is defined once, in ``sql.py``, in DuckDB's dialect; sqlglot
transpiles it for Spark. The one construct rendered by hand is the percentile:
DuckDB's ``quantile_cont`` and Spark's exact ``percentile`` both interpolate
linearly between the closest ranks, so they are the same definition.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark


def _percentile(generator: Spark.Generator, expression: exp.PercentileCont) -> str:
    return generator.func("PERCENTILE", expression.this, expression.expression)


class _WazaSpark(Spark):
    class Generator(Spark.Generator):
        TRANSFORMS = {**Spark.Generator.TRANSFORMS, exp.PercentileCont: _percentile}


@functools.lru_cache(maxsize=256)
def to_spark(statement: str) -> str:
    """One statement of DuckDB SQL as Spark SQL."""
    (translated,) = sqlglot.transpile(statement, read="duckdb", write=_WazaSpark)
    return translated
