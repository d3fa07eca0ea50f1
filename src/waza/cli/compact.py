"""``waza compact``: turn closed event-log segments into Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from waza.cli.errors import friendly_errors
from waza.engine.compaction import compact as compact_folder
from waza.store.compacted import parts_path


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@friendly_errors
def compact(directory: Path) -> None:
    """Compact the closed segments (.jsonl.gz) of a telemetry folder into Parquet, per day.

    Safe to run again and while collectors write; every reader reads the result.
    """
    result = compact_folder(directory)
    for segment, lines in result.skipped.items():
        click.echo(f"Left {segment} as it is: {lines:,} unreadable line(s)", err=True)
    written = sum(1 + parts_path(events).exists() for events in result.files)  # events, folded sessions
    click.echo(
        f"Compacted {result.segments:,} segment(s), {result.rows:,} event(s), "
        f"into {written:,} Parquet file(s)"
        + (f"; removed {result.removed:,} already compacted segment(s)" if result.removed else "")
    )
