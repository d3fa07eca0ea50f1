"""``waza analyze``: metrics from telemetry files and folders."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from waza.analysis.analyzer import TelemetryAnalyzer
from waza.analysis.details import load_prices
from waza.analysis.empty import why_empty
from waza.analysis.render import render_problems, render_report
from waza.cli.errors import friendly_errors
from waza.cli.progress import progress_bar
from waza.cli.types import InputPath, KeyValue, MemorySize, Moment, engine_options, format_option
from waza.engine.slicing import DEFAULT_USER_KEY, Slice


@click.command()
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@click.option("--skill", help="Only sessions of this skill.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON report to this file.",
)
@format_option
@click.option("--strict", is_flag=True, help="Fail on any unreadable file or line instead of skipping it.")
@click.option("--since", type=Moment(), help="Sessions started at or after: ISO time, or an age like 7d.")
@click.option("--until", type=Moment(), help="Sessions started before: ISO time, or an age like 24h.")
@click.option(
    "--where", "where", type=KeyValue(), multiple=True, help="Metadata filter KEY=VALUE (repeatable)."
)
@click.option("--by", help="Break every figure down by skill, day, or a metadata key.")
@click.option(
    "--users-key", default=DEFAULT_USER_KEY, show_default=True, help="Metadata key that identifies users."
)
@click.option(
    "--top", type=click.IntRange(min=0), default=5, show_default=True, help="Outlier sessions to list."
)
# Figures per tool, model and error type are always in the report; the flag that asked for them stays
# accepted so that scripts written for earlier versions keep working.
@click.option("--details", is_flag=True, hidden=True)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML price table (model: {input: .., output: ..} per 1k tokens) to cost LLM calls.",
)
@engine_options
@click.option(
    "--memory-limit",
    type=MemorySize(),
    help="Memory DuckDB may use before spilling to disk, e.g. 4GB (default 640MB).",
)
@friendly_errors
def analyze(
    paths: tuple[str, ...],
    skill: str | None,
    output: Path | None,
    output_format: str,
    strict: bool,
    since: datetime | None,
    until: datetime | None,
    where: tuple[tuple[str, str], ...],
    by: str | None,
    users_key: str,
    top: int,
    details: bool,
    prices: Path | None,
    engine: str,
    master: str | None,
    memory_limit: str | None,
) -> None:
    """Analyze telemetry files or folders (any mix of supported formats).

    With --engine spark, a path may be an object-store prefix such as s3a://bucket/telemetry.
    """
    scope = Slice(skill=skill, since=since, until=until, where=where, by=by, user_key=users_key, top=top)
    stderr = Console(stderr=True, soft_wrap=True)
    with progress_bar(stderr, "Reading telemetry") as progress:
        price_table = load_prices(prices) if prices else None
        analyzer = TelemetryAnalyzer(strict=strict, engine=engine, master=master, memory_limit=memory_limit)
        report = analyzer.analyze_paths(paths, progress=progress, scope=scope, prices=price_table)
    problems = report["input"]["problems"]
    if problems:
        stderr.print(render_problems(problems))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if report["total_sessions"] == 0:
        raise why_empty(report, paths)
    if output_format == "json":
        click.echo(json.dumps(report, indent=2, allow_nan=False))
    else:
        # The terminal's width, or COLUMNS, or 80 into a pipe: every table fits 80 columns.
        Console(file=sys.stdout).print(render_report(report))
