"""``waza compare``: did it get worse? Two sets of sessions, figure by figure, with significance."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from waza.analysis.details import load_prices
from waza.analysis.render import render_problems
from waza.cli.errors import friendly_errors
from waza.cli.types import InputPath, Moment, engine_options
from waza.compare import comparison
from waza.compare.render import markdown, table
from waza.engine.slicing import Slice
from waza.errors import UsageError


@click.command()
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@click.option("--baseline-since", type=Moment(), help="With one PATH: baseline sessions started at or after.")
@click.option("--baseline-until", type=Moment(), help="With one PATH: baseline sessions started before.")
@click.option("--since", type=Moment(), help="Current sessions started at or after (with one PATH: "
              "default --baseline-until).")  # fmt: skip
@click.option("--until", type=Moment(), help="Current sessions started before.")
@click.option("--skill", help="Only sessions of this skill.")
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML price table, to compare cost per session (as in waza analyze).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.01,
    show_default=True,
    help="Chance of calling any change significant when nothing changed.",
)
@click.option(
    "--fail-on",
    type=click.Choice([*comparison.FIGURES, "any"]),
    multiple=True,
    help="Exit 1 when this figure got significantly worse (repeatable; 'any' for all).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="What to print; markdown pastes into a pull request.",
)
@engine_options
@friendly_errors
def compare(
    paths: tuple[str, ...],
    baseline_since: datetime | None,
    baseline_until: datetime | None,
    since: datetime | None,
    until: datetime | None,
    skill: str | None,
    prices: Path | None,
    alpha: float,
    fail_on: tuple[str, ...],
    output_format: str,
    engine: str,
    master: str | None,
) -> None:
    """Compare the sessions of CURRENT with those of BASELINE: `waza compare BASELINE CURRENT`, or
    `waza compare PATH --baseline-until T` for the sessions of one store before and after T.

    Every headline figure, overall and per skill, with its change and whether the change is
    significant. Exit code 1 when a figure named by --fail-on got significantly worse.
    """
    if len(paths) > 2:
        raise UsageError(
            "give two paths (BASELINE CURRENT), or one path with --baseline-since/--baseline-until"
        )
    if len(paths) == 1:
        if baseline_since is None and baseline_until is None:
            raise UsageError("with one path, say which sessions are the baseline: --baseline-until TIME")
        since = since or baseline_until
    elif baseline_since or baseline_until:
        raise UsageError("--baseline-since/--baseline-until select within one path; with two, drop them")
    result, problems = comparison.compare_paths(
        paths,
        Slice(skill=skill, since=baseline_since, until=baseline_until),
        Slice(skill=skill, since=since, until=until),
        alpha=alpha,
        prices=load_prices(prices) if prices else None,
        engine=engine,
        master=master,
    )
    if problems:
        Console(stderr=True, soft_wrap=True).print(render_problems([p.to_dict() for p in problems]))
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    elif output_format == "markdown":
        click.echo(markdown(result), nl=False)
    else:
        Console().print(table(result))
    watched = comparison.FIGURES if "any" in fail_on else fail_on
    raise SystemExit(1 if result.worse(watched) else 0)
