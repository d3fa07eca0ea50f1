"""``waza prune``: delete day partitions older than a limit."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import click

from waza.cli.errors import friendly_errors
from waza.store.retention import prune as prune_partitions

UNITS = {"d": "days", "w": "weeks", "h": "hours"}


class Age(click.ParamType):
    """A span such as 30d, 2w or 36h."""

    name = "age"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([dwh])\s*", str(value))
        if not match:
            self.fail(f"{value!r} is not an age like 30d, 2w or 36h", param, ctx)
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--older-than", "older_than", type=Age(), required=True, help="Age limit, e.g. 30d, 2w, 36h.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@friendly_errors
def prune(directory: Path, older_than: timedelta, dry_run: bool) -> None:
    """Delete the date=YYYY-MM-DD partitions of a telemetry folder older than a limit."""
    doomed = prune_partitions(directory, older_than, dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    for path in doomed:
        click.echo(f"{verb} {path}")
    click.echo(f"{verb} {len(doomed)} partition(s) older than {older_than.days} day(s).")
