"""``waza prune``: delete day partitions older than a limit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from waza.cli.errors import friendly_errors
from waza.cli.types import Age
from waza.store.retention import prune as prune_partitions


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
    click.echo(f"{verb} {len(doomed)} partition(s) whose day ended over {_span(older_than)} ago.")


def _span(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    if hours and not hours % 24:
        return f"{hours // 24} day(s)"
    return f"{hours} hour(s)" if hours else f"{int(age.total_seconds() // 60)} minute(s)"
