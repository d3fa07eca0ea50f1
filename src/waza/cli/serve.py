"""``waza serve``: the ingest server."""

from __future__ import annotations

from pathlib import Path

import click

from waza.cli.errors import friendly_errors


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Telemetry folder to append to.")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="File holding the bearer token writers must send; required beyond loopback.")  # fmt: skip
@click.option("--sample-rate", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Share of sessions kept, decided by session id as collectors do.")  # fmt: skip
@click.option("--keep-errors/--no-keep-errors", default=True, show_default=True,
              help="Store failed sessions the sample left out (held until they end).")  # fmt: skip
@click.option("--no-redact", is_flag=True, help="Store data as received (redaction is on by default).")
@click.option("--max-body", type=click.IntRange(min=1024), default=4 * 2**20, show_default=True,
              help="Largest request body in bytes (413 beyond).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes; each writes segments of its own.")  # fmt: skip
@click.option("--max-connections", type=click.IntRange(min=1), default=256, show_default=True,
              help="Connections a worker serves at once; more get 503.")  # fmt: skip
@click.option("--client-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds for a request's headers (3x for its body).")  # fmt: skip
@click.option("--skill-tool", "skill_tools", multiple=True, metavar="NAME",
              help="A tool whose calls load the skill their arguments name, in traces (repeatable; "
                   "replaces load_skill, skill, activate_skill, use_skill, read_skill).")  # fmt: skip
@friendly_errors
def serve(
    directory: Path,
    host: str,
    port: int,
    token_file: Path | None,
    sample_rate: float,
    keep_errors: bool,
    no_redact: bool,
    max_body: int,
    workers: int,
    max_connections: int,
    client_timeout: float,
    skill_tools: tuple[str, ...],
) -> None:
    """Receive telemetry over HTTP and append it to the event log in DIR.

    Every 2xx answer means the events are on disk. Ctrl-C or SIGTERM stops
    taking requests, commits what was accepted, and exits.
    """
    from waza.serve.app import Settings
    from waza.serve.launch import read_token
    from waza.serve.launch import serve as serve_folder

    token = None
    if token_file is not None:
        token, readable = read_token(token_file)
        if readable:
            click.echo(f"waza serve: warning: others may read {token_file}; chmod 600 it", err=True)
    settings = Settings(directory, token, sample_rate, keep_errors, not no_redact, max_body)
    settings.max_body_seconds = 3 * client_timeout
    if skill_tools:
        settings.skill_tools = frozenset(skill_tools)

    def listening() -> None:
        click.echo(f"waza serve: appending to {directory} at http://{host}:{port}", err=True)

    serve_folder(
        settings,
        host,
        port,
        processes=workers,
        max_connections=max_connections,
        client_timeout=client_timeout,
        listening=listening,
    )
