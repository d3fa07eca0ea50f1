"""``waza report``: the analysis as one HTML page with charts and session timelines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from waza.analysis.details import load_prices
from waza.analysis.empty import why_empty
from waza.analysis.render import render_problems
from waza.cli.errors import friendly_errors
from waza.cli.types import InputPath, KeyValue, Moment, engine_options
from waza.engine.slicing import Slice
from waza.store.atomic import replace_text


@click.command()
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default="report.html",
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--skill", help="Only sessions of this skill.")
@click.option("--since", type=Moment(), help="Sessions started at or after: ISO time, or an age like 7d.")
@click.option("--until", type=Moment(), help="Sessions started before: ISO time, or an age like 24h.")
@click.option(
    "--where", "where", type=KeyValue(), multiple=True, help="Metadata filter KEY=VALUE (repeatable)."
)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML price table (model: {input: .., output: ..} per 1k tokens), for LLM cost.",
)
@engine_options
@friendly_errors
def report(
    paths: tuple[str, ...],
    output: Path,
    skill: str | None,
    since: datetime | None,
    until: datetime | None,
    where: tuple[tuple[str, str], ...],
    prices: Path | None,
    engine: str,
    master: str | None,
) -> None:
    """Write the analysis of PATHS as one HTML file that works offline: headline figures, charts
    over time and of durations, skills, tools, models and errors, and the timeline of each of the
    slowest and latest failed sessions."""
    from waza.dashboard.build import html_report  # Bokeh loads only for this command

    scope = Slice(skill=skill, since=since, until=until, where=where)
    page, analysis = html_report(
        paths, scope, prices=load_prices(prices) if prices else None, engine=engine, master=master
    )
    problems = analysis["input"]["problems"]
    if problems:
        Console(stderr=True, soft_wrap=True).print(render_problems(problems))
    if analysis["total_sessions"] == 0:
        raise why_empty(analysis, paths)
    replace_text(output, page)
    size = output.stat().st_size
    click.echo(f"Wrote {output} ({size / 1e6:.1f} MB, {analysis['total_sessions']:,} sessions)")
