"""``waza check``: grade recorded sessions against eval tasks."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from waza.analysis.render import render_problems
from waza.cli.errors import friendly_errors
from waza.cli.types import format_option
from waza.store.reader import load_sessions
from waza.tasks.files import load_tasks
from waza.tasks.grading import Grade, grade_all
from waza.tasks.report import grades_json, grades_table, write_junit


def grading_options(command: click.Command) -> click.Command:
    """The output options ``check`` and ``replay`` share."""
    command = click.option(
        "--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML."
    )(command)
    return format_option(command)


def report_grades(grades: list[Grade], output_format: str, junit: Path | None) -> None:
    """Print the grades, write JUnit if asked, and exit 1 when a task failed."""
    if junit is not None:
        write_junit(grades, junit)
    if output_format == "json":
        click.echo(json.dumps(grades_json(grades), indent=2))
    else:
        Console(soft_wrap=False).print(grades_table(grades))
    if any(grade.status == "failed" for grade in grades):
        raise SystemExit(1)


@click.command()
@click.argument("tasks", type=click.Path(exists=True, path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@grading_options
@friendly_errors
def check(tasks: Path, paths: tuple[Path, ...], output_format: str, junit: Path | None) -> None:
    """Grade the sessions recorded under PATHS against the tasks in TASKS (eval.yaml, a task, or a folder).

    Exit code 1 when any task fails; each failure says why.
    """
    loaded = load_tasks(tasks)
    sessions, problems = load_sessions(paths)
    if problems:
        Console(stderr=True).print(render_problems([p.to_dict() for p in problems]))
    report_grades(grade_all(loaded, sessions), output_format, junit)
