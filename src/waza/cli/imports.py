"""``waza import``: logs, OTLP files and waza files of any version into an event log."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from waza.cli.errors import friendly_errors
from waza.cli.progress import progress_bar
from waza.interchange.fields import FieldMap
from waza.interchange.importer import ImportResult, SourceFormat, import_paths, total_bytes
from waza.terminal import plain


@click.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Telemetry folder to import into (made if missing).",
)
@click.option(
    "--format",
    "source_format",
    type=click.Choice([f.value for f in SourceFormat]),
    default="auto",
    show_default=True,
    help="jsonl: JSON lines read through --map; otlp: the Collector's file exporter; waza: waza's own files.",
)
@click.option(
    "--map",
    "mapping",
    metavar="FIELD=PATH,...",
    help="Where lines keep waza's fields (event_type, timestamp, session_id, skill_name, data, event_id), "
    "as dotted paths: --map event_type=event,timestamp=ts,session_id=ctx.sid.",
)
@click.option(
    "--session-key",
    metavar="PATH",
    help="The field that names the session of lines without a session id (a request or conversation id).",
)
@click.option("--no-redact", is_flag=True, help="Store data as it is (redaction is on by default).")
@friendly_errors
def import_(
    sources: tuple[Path, ...],
    directory: Path,
    source_format: str,
    mapping: str | None,
    session_key: str | None,
    no_redact: bool,
) -> None:
    """Import JSON-lines logs, OTLP JSON files (gzip too) and waza exports into a telemetry folder.

    Importing the same input again counts nothing twice. Times may be epoch
    seconds, milliseconds, microseconds or nanoseconds, or ISO 8601; a time
    without a zone is taken as UTC.
    """
    try:
        fields = FieldMap.parse(mapping, session_key) if mapping or session_key else None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    stderr = Console(stderr=True, soft_wrap=True)
    with progress_bar(stderr, "Importing", total_bytes(sources)) as progress:
        result = import_paths(
            sources,
            directory,
            source_format=SourceFormat(source_format),
            fields=fields,
            redact=not no_redact,
            progress=progress,
        )
    if result.skipped:
        stderr.print(_skipped(result))
    if not result.events:
        raise click.ClickException(f"nothing imported from {result.files:,} file(s)")
    click.echo(f"Imported {result.events:,} event(s) from {result.files:,} file(s) into {directory}.")


def _skipped(result: ImportResult) -> Text:
    text = Text(f"Skipped {result.skipped:,} place(s) that could not be imported:", style="yellow")
    for problem in result.problems:
        text.append("\n  ").append_text(plain(str(problem), "yellow"))
    if result.skipped > len(result.problems):
        text.append(f"\n  ... and {result.skipped - len(result.problems):,} more")
    return text
