"""``waza compact``: turn closed event-log segments into Parquet."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import click

from waza.cli.errors import friendly_errors
from waza.cli.types import Age
from waza.engine.compaction import CompactionResult
from waza.engine.compaction import compact as compact_folder
from waza.store.compacted import BESIDE_PATHS


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--watch",
    type=Age(),
    metavar="EVERY",
    help="Compact again every EVERY (e.g. 1m or 30s) until stopped: for folders written without compaction.",
)
@click.option("--background", is_flag=True, hidden=True)  # a writer's own run: quiet, at low priority
@friendly_errors
def compact(directory: Path, watch: timedelta | None, background: bool) -> None:
    """Compact the closed segments (.jsonl.gz) of a telemetry folder into Parquet, per day.

    Safe to run again and while collectors write; every reader reads the result.
    Collectors and `waza serve` compact the segments they close themselves.
    """
    if background:
        os.nice(10)
        compact_folder(directory)
        return
    while True:
        _report(compact_folder(directory))
        if watch is None:
            return
        time.sleep(watch.total_seconds())


def _report(result: CompactionResult) -> None:
    for segment, lines in result.skipped.items():
        click.echo(f"Left {segment} as it is: {lines:,} unreadable line(s)", err=True)
    # The events, and beside them the sessions folded, their details and the rollup.
    written = sum(1 + sum(beside(events).exists() for beside in BESIDE_PATHS) for events in result.files)
    click.echo(
        f"Compacted {result.segments:,} segment(s), {result.rows:,} event(s), "
        f"into {written:,} Parquet file(s)"
        + (f"; removed {result.removed:,} already compacted segment(s)" if result.removed else "")
    )
