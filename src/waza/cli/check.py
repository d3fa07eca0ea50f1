"""``waza check``: grade recorded sessions against eval tasks."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from waza.analysis.render import render_problems
from waza.cli.errors import friendly_errors
from waza.cli.types import InputPath, engine_options, format_option
from waza.tasks.checking import CheckResult, check_recorded
from waza.tasks.report import grades_json, grades_table, write_junit


def grading_options(command: click.Command) -> click.Command:
    """The output options ``check`` and ``replay`` share."""
    command = click.option(
        "--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML."
    )(command)
    return format_option(command)


def show_grades(result: CheckResult, output_format: str, junit: Path | None) -> int:
    """Print the grades and write JUnit if asked; the exit code: 1 when a task failed."""
    if result.problems:
        Console(stderr=True, soft_wrap=True).print(render_problems([p.to_dict() for p in result.problems]))
    if junit is not None:
        write_junit(result.grades, junit)
    if output_format == "json":
        click.echo(json.dumps(grades_json(result.grades), indent=2))
    else:
        Console().print(grades_table(result.grades))
    return 1 if result.failed else 0


@click.command()
@click.argument("tasks", type=click.Path(exists=True, path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@grading_options
@engine_options
@friendly_errors
def check(
    tasks: Path,
    paths: tuple[str, ...],
    output_format: str,
    junit: Path | None,
    engine: str,
    master: str | None,
) -> None:
    """Grade the sessions recorded under PATHS against the tasks in TASKS (eval.yaml, a task, or a folder).

    A task fails when its session raised, crashed or never ended, or misses an
    expectation; each failure says why. Exit code 1 when any task fails, 2 when
    nothing could be checked (no tasks, no sessions, or none answering a task).
    """
    result = check_recorded(tasks, paths, engine=engine, master=master)
    raise SystemExit(show_grades(result, output_format, junit))
