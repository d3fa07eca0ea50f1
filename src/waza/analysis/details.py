"""Figures per tool, per LLM model and per error type, and LLM cost from a price table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from waza.errors import WazaError
from waza.store.codec import finite

# model -> {"input": price per 1,000 input tokens, "output": per 1,000 output tokens,
# optionally "cache_read" and "cache_write": per 1,000 input tokens read from or written
# to a prompt cache}. Input counts include cached tokens and output counts reasoning
# tokens, as the GenAI conventions and the OpenAI APIs count them; cached tokens
# without a price of their own cost as input.
Prices = dict[str, dict[str, float]]
CACHE_PRICES = ("cache_read", "cache_write")


def load_prices(path: str | Path) -> Prices:
    """Read a YAML price table: ``model: {input: 0.002, output: 0.008, cache_read: 0.0005}``
    (per 1,000 tokens; ``cache_read`` and ``cache_write`` optional)."""
    try:
        table = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WazaError(f"cannot read price table {path}: {exc}") from None
    if not isinstance(table, dict):
        raise WazaError(f"price table {path}: expected a mapping of model to prices")
    prices: Prices = {}
    for model, entry in table.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise WazaError(f"price table {path}: {model!r} needs 'input' and 'output' prices")
        try:
            named = ("input", "output", *(k for k in CACHE_PRICES if k in entry))
            prices[str(model)] = {key: float(entry[key]) for key in named}
        except (TypeError, ValueError):
            raise WazaError(f"price table {path}: prices of {model!r} must be numbers") from None
    return prices


def cost_of(row: dict[str, Any], prices: Prices | None) -> float | None:
    price = (prices or {}).get(row["model"] or "")
    if price is None:
        return None
    cost = row["output_tokens"] * price["output"]
    uncached = row["input_tokens"]
    for kind in CACHE_PRICES:
        if kind in price:
            cached = min(row[f"{kind}_tokens"], uncached)
            cost += cached * price[kind]
            uncached -= cached
    return (cost + uncached * price["input"]) / 1000


def detail_sections(found: dict[str, list[dict[str, Any]]], prices: Prices | None) -> dict[str, Any]:
    """The report's ``tools``, ``llm`` and ``errors`` sections."""
    tools = [
        {
            "tool": row["tool"],
            "calls": row["calls"],
            "completed": row["completed"],
            "failure_rate": row["failed"] / row["completed"] if row["completed"] else None,
            "duration_ms_p95": row["duration_ms_p95"],
            "top_error": row["top_error"],
        }
        for row in found["tools"]
    ]
    skills = [
        {
            "skill": row["skill"],
            "loads": row["loads"],
            "sessions": row["sessions"],
            "tool_calls": row["tool_calls"],
            "tool_failures": row["tool_failures"],
            "tool_duration_ms_p95": row["tool_duration_ms_p95"],
        }
        for row in found["skills_loaded"]
    ]
    llm = []
    for row in found["llm"]:
        latency = row["latency"] or [None, None, None]
        llm.append(
            {
                "model": row["model"],
                "requests": row["requests"],
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "cache_read_tokens": row["cache_read_tokens"],
                "cache_write_tokens": row["cache_write_tokens"],
                "reasoning_tokens": row["reasoning_tokens"],
                "total_tokens": row["total_tokens"],
                "latency_ms_p50": latency[0],
                "latency_ms_p95": latency[1],
                "latency_ms_p99": latency[2],
                "cost": cost_of(row, prices),
            }
        )
    costs = [entry["cost"] for entry in llm if entry["cost"] is not None]
    return finite(
        {
            "tools": tools,
            "skills_loaded": skills,
            "llm": llm,
            "llm_cost": sum(costs) if prices is not None else None,
            "errors": [
                {"error_type": row["error_type"], "count": row["count"], "example": row["example"]}
                for row in found["errors"]
            ],
        }
    )
