"""The ``waza`` command line."""

from __future__ import annotations

import click

from waza import __version__
from waza.cli.alert import alert
from waza.cli.analyze import analyze
from waza.cli.check import check
from waza.cli.compact import compact
from waza.cli.compare import compare
from waza.cli.convert import convert
from waza.cli.export import export
from waza.cli.imports import import_
from waza.cli.prune import prune
from waza.cli.replay import replay
from waza.cli.report import report
from waza.cli.sample import sample
from waza.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="waza")
def main() -> None:
    """waza: runtime telemetry for AI agent skills."""


main.add_command(analyze)
main.add_command(report)
main.add_command(sample)
main.add_command(import_)
main.add_command(export)
main.add_command(prune)
main.add_command(compact)
main.add_command(convert)
main.add_command(check)
main.add_command(replay)
main.add_command(serve)
main.add_command(compare)
main.add_command(alert)
