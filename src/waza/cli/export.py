"""``waza export``: sessions as OpenTelemetry traces to an OTLP backend, or as Parquet tables."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import click
from rich.console import Console

from waza.cli.errors import friendly_errors
from waza.cli.types import InputPath, KeyValue, Moment
from waza.interchange.otlp_sender import PROTOCOLS, OtlpSender
from waza.interchange.tables import write_tables
from waza.model import SessionTelemetry
from waza.store.reader import load_sessions
from waza.terminal import plain

# The standard variable OpenTelemetry's exporters read headers from (an API key, say), so that
# a secret need not be on the command line, where other processes see it.
HEADERS_VARIABLE = "OTEL_EXPORTER_OTLP_HEADERS"


@click.command()
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@click.option("--otlp-endpoint", metavar="URL", help="OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318.")
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default="http/protobuf", show_default=True)
@click.option(
    "--header",
    "headers",
    type=KeyValue(),
    multiple=True,
    help=f"HTTP header K=V (repeatable); {HEADERS_VARIABLE} is read too.",
)
@click.option(
    "--format", "table_format", type=click.Choice(["parquet"]), help="Write tables instead of sending traces."
)
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="Folder for --format parquet."
)
@click.option("--skill", help="Only sessions of this skill.")
@click.option("--since", type=Moment(), help="Sessions started at or after: ISO time, or an age like 7d.")
@click.option("--until", type=Moment(), help="Sessions started before: ISO time, or an age like 24h.")
@friendly_errors
def export(
    paths: tuple[str, ...],
    otlp_endpoint: str | None,
    protocol: str,
    headers: tuple[tuple[str, str], ...],
    table_format: str | None,
    output: Path | None,
    skill: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Send sessions as OpenTelemetry GenAI traces (one trace per session), or write them as
    sessions.parquet and events.parquet with --format parquet -o DIR."""
    if (otlp_endpoint is None) == (table_format is None):
        raise click.UsageError("give --otlp-endpoint URL, or --format parquet -o DIR")
    if table_format and output is None:
        raise click.UsageError("--format parquet needs -o DIR")
    url = _traces_url(otlp_endpoint) if otlp_endpoint is not None else None
    sessions, problems = load_sessions(paths)
    stderr = Console(stderr=True, soft_wrap=True)
    for problem in problems:
        stderr.print(plain(f"skipped {problem}", "yellow"))
    chosen = [s for s in sessions if _wanted(s, skill, since, until)]
    if not chosen:
        raise click.ClickException("no session to export")
    if url is None:
        tables = output or Path()
        count, events = write_tables(chosen, tables)
        click.echo(
            f"Wrote {count:,} session(s) and {events:,} event(s) to {tables / 'sessions.parquet'} "
            f"and {tables / 'events.parquet'}."
        )
        return
    sender = OtlpSender(url, protocol, _environment_headers() | dict(headers))
    result = sender.send(chosen)
    click.echo(
        f"Sent {result.sessions:,} session(s) as {result.spans:,} span(s) in {result.requests:,} request(s)"
        + (f", {result.retries:,} retried" if result.retries else "")
        + "."
    )
    if result.rejected:
        reason = next((m for m in result.messages if m), "no reason given")
        raise click.ClickException(f"the backend rejected {result.rejected:,} span(s): {reason}")


def _wanted(
    session: SessionTelemetry, skill: str | None, since: datetime | None, until: datetime | None
) -> bool:
    return (
        (skill is None or skill in session.skills)
        and (since is None or session.start_time >= since)
        and (until is None or session.start_time < until)
    )


def _traces_url(endpoint: str) -> str:
    """A base URL gets OTLP's traces path, as OpenTelemetry's exporters add it; a full one is kept."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(f"--otlp-endpoint must be an http(s) URL, not {endpoint!r}")
    return endpoint.rstrip("/") + "/v1/traces" if parts.path in ("", "/") else endpoint


def _environment_headers() -> dict[str, str]:
    found = {}
    for pair in os.environ.get(HEADERS_VARIABLE, "").split(","):
        key, equals, value = pair.partition("=")
        if equals and key.strip():
            found[unquote(key.strip())] = unquote(value.strip())
    return found
