"""``waza sample``: write a realistic event log to try waza on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from waza.cli.errors import friendly_errors
from waza.cli.types import Moment
from waza.sample import write_sample


@click.command()
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Telemetry folder to write into.",
)
@click.option(
    "--sessions",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="How many sessions.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same telemetry.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Days the sessions spread over.",
)
@click.option(
    "--end",
    type=Moment(),
    help="When the sample ends: ISO time, or an age like 1d (default: now; fix it for the same data).",
)
@click.option(
    "--gzip/--no-gzip",
    "compress",
    default=True,
    show_default=True,
    help="Close segments as .jsonl.gz, as collectors do.",
)
@friendly_errors
def sample(
    directory: Path, sessions: int, seed: int, days: int, end: datetime | None, compress: bool
) -> None:
    """Write sample telemetry (several skills, failing tools, LLM calls, errors, open sessions).

    The sessions spread over the DAYS days before the end and all finish before it.
    """
    end = end or datetime.now(UTC).replace(second=0, microsecond=0)
    summary = write_sample(directory, sessions, seed=seed, days=days, end=end, compress=compress)
    first = (end - timedelta(days=days)).strftime("%Y-%m-%d %H:%M")
    click.echo(
        f"Wrote {summary.sessions:,} sessions ({summary.events:,} events) to {directory},"
        f" from {first} to {end:%Y-%m-%d %H:%M} UTC"
    )
