"""``waza convert``: production sessions to eval tasks in the waza task format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from waza.analysis.render import render_problems
from waza.cli.errors import friendly_errors
from waza.cli.types import InputPath, Moment, engine_options
from waza.errors import NothingToAnalyzeError
from waza.tasks.convert import convert as convert_sessions
from waza.tasks.files import SUITE_FILE
from waza.tasks.selection import MODES


@click.command()
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the tasks.",
)
@click.option("--skill", help="Only sessions of this skill.")
@click.option("--succeeded", is_flag=True, help="Only sessions that succeeded.")
@click.option("--failed", is_flag=True, help="Only sessions that failed.")
@click.option("--since", type=Moment(), help="Sessions started at or after: ISO time, or an age like 7d.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many tasks.")
@click.option(
    "--select",
    "mode",
    type=click.Choice(MODES),
    default="interesting",
    show_default=True,
    help="Which sessions: all, the interesting ones, or a random sample.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random choices and ties.")
@click.option("--name", help="Name of the suite in eval.yaml (default: the skill, or runtime-regressions).")
@click.option("--force", is_flag=True, help="Overwrite existing task files.")
@click.option("--explain", is_flag=True, help="Say why each session was picked.")
@click.option("--mocks", is_flag=True,
              help="Answer the command-line tools a task calls as its session recorded.")  # fmt: skip
@engine_options
@friendly_errors
def convert(
    paths: tuple[str, ...],
    output: Path,
    skill: str | None,
    succeeded: bool,
    failed: bool,
    since: datetime | None,
    limit: int | None,
    mode: str,
    seed: int,
    name: str | None,
    force: bool,
    explain: bool,
    mocks: bool,
    engine: str,
    master: str | None,
) -> None:
    """Turn completed sessions into waza eval tasks: tasks/*.yaml, eval.yaml and provenance.yaml,
    a suite per skill.

    Everything written passes through the collector's redactor. Event logs and compacted
    stores are ranked by the engine, and only the sessions picked are read whole.
    """
    if succeeded and failed:
        raise click.UsageError("--succeeded and --failed exclude each other: give one, or neither for both")
    stderr = Console(stderr=True, soft_wrap=True)
    result = convert_sessions(
        paths,
        output,
        skill=skill,
        outcome=None if succeeded == failed else succeeded,
        since=since,
        mode=mode,
        limit=limit,
        seed=seed,
        name=name,
        force=force,
        mocks=mocks,
        engine=engine,
        master=master,
    )
    if result.problems:
        stderr.print(render_problems([p.to_dict() for p in result.problems]))
    if not result.tasks:
        raise NothingToAnalyzeError(f"no completed session to convert in {', '.join(map(str, paths))}")
    selection, converted, written = result.selection, result.tasks, result.written
    if explain:
        table = Table()
        table.add_column("task", overflow="fold")  # whole ids: each leads to its file
        table.add_column("why", overflow="fold")
        for pick, (task, _) in zip(selection.picked, converted, strict=True):
            table.add_row(Text(task["id"]), Text("; ".join(pick.reasons)))  # telemetry: never markup
        Console().print(table)
    collapsed = f", {len(selection.duplicates):,} near-duplicates left out" if selection.duplicates else ""
    suites = [path for path in written if path.name == SUITE_FILE]
    where = "eval.yaml" if len(suites) == 1 else f"{len(suites)} eval.yaml files, a suite per skill,"
    click.echo(f"Wrote {len(converted):,} tasks and {where} to {output}{collapsed}")
