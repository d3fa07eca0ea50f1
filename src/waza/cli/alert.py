"""``waza alert``: the latest window against the baseline before it, per skill; exit 3 when it fires."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from waza.analysis.render import render_problems
from waza.cli.errors import friendly_errors
from waza.cli.types import Age, InputPath, Moment, Share, engine_options
from waza.compare.alert import Rule
from waza.compare.watch import check
from waza.errors import UsageError

FIRING_EXIT = 3


@click.command()
@click.argument("paths", nargs=-1, required=True, type=InputPath())
@click.option("--window", type=Age(), default="1h", show_default=True, help="The latest span to check.")
@click.option(
    "--baseline", type=Age(), default="7d", show_default=True, help="The span before it to compare with."
)
@click.option(
    "--min-sessions",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Completed sessions a skill needs in the window and the baseline to be checked.",
)
@click.option(
    "--max-drop",
    type=Share(),
    default="3pp",
    show_default=True,
    help="Success-rate drop to catch; drops below half of it never fire.",
)
@click.option(
    "--max-p95-increase",
    type=Share(),
    default="20%",
    show_default=True,
    help="Rise of the p95 duration to catch; rises below half of it never fire.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.005,
    show_default=True,
    help="Chance that a run over healthy skills fires.",
)
@click.option("--skill", help="Only this skill.")
@click.option("--at", "now", type=Moment(), help="Check as of this time instead of now.")
@click.option(
    "--webhook",
    metavar="URL|@FILE",
    help="POST alerts here (Slack and Teams show its 'text'); @FILE reads the URL from FILE.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Remember what fired: no repeats while it holds, and a message when it clears.",
)
@engine_options
@friendly_errors
def alert(
    paths: tuple[str, ...],
    window: timedelta,
    baseline: timedelta,
    min_sessions: int,
    max_drop: float,
    max_p95_increase: float,
    alpha: float,
    skill: str | None,
    now: datetime | None,
    webhook: str | None,
    state: Path | None,
    engine: str,
    master: str | None,
) -> None:
    """Check each skill's latest --window of sessions against the --baseline before it.

    One line per check; exit code 0 when healthy, 3 when an alert fires. Meant to run every few
    minutes from cron or CI.
    """
    rule = Rule(window, baseline, min_sessions, max_drop, max_p95_increase, alpha)
    run = check(
        paths,
        rule,
        skill=skill,
        now=now,
        webhook=_webhook_url(webhook),
        state=state,
        engine=engine,
        master=master,
    )
    stderr = Console(stderr=True, soft_wrap=True)
    if run.problems:
        stderr.print(render_problems([p.to_dict() for p in run.problems]))
    console = Console(soft_wrap=True)
    for finding in run.findings:
        console.print(Text(("ALERT " if finding.firing else "ok    ") + finding.message))  # never markup
    if not run.findings:
        (start, _), (_, end) = run.spans
        console.print(f"no completed sessions between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC")
    if run.undelivered:
        stderr.print(Text(f"Error: {run.undelivered}"))
    raise SystemExit(FIRING_EXIT if run.firing else 0)


def _webhook_url(webhook: str | None) -> str | None:
    """The URL given, or read from @FILE (a URL holding a secret stays out of the process list)."""
    if webhook is None or not webhook.startswith("@"):
        url = webhook
    else:
        try:
            url = Path(webhook[1:]).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UsageError(f"cannot read the webhook URL from {webhook[1:]}: {error.strerror}") from None
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError(f"--webhook needs an http(s) URL or @FILE, not {url[:40]!r}")
    return url
