"""``waza replay``: run eval tasks through the skill, record them, and grade the recording."""

from __future__ import annotations

from pathlib import Path

import click

from waza.cli.check import grading_options, show_grades
from waza.cli.errors import friendly_errors
from waza.tasks.checking import replay_recorded


@click.command()
@click.argument("tasks", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--entrypoint", required=True, metavar="MODULE:FUNCTION", help="The skill: function(prompt, session)."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to record into.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Tasks run at once."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds per task.",
)
@grading_options
@friendly_errors
def replay(
    tasks: Path,
    entrypoint: str,
    output: Path,
    workers: int,
    timeout: float,
    output_format: str,
    junit: Path | None,
) -> None:
    """Run every task in TASKS through the skill, record into OUTPUT, and grade it as `waza check` does.

    The module is imported from the current folder or the installed packages.
    A task fails when the skill raises, times out or crashes (the exception is
    in the report and the JUnit), or misses an expectation. Exit code 1 when
    any task fails, 2 when TASKS holds no task.
    """
    result = replay_recorded(tasks, entrypoint, output, workers=workers, timeout=timeout)
    raise SystemExit(show_grades(result, output_format, junit))
