"""The ``waza`` command line."""

from __future__ import annotations

import importlib

import click

from waza import __version__

# Where each command lives: its module is imported when the command runs (or help lists it), so
# that a report does not wait for the server, the exporter and the graders to be imported.
COMMANDS = {
    "alert": "waza.cli.alert:alert",
    "analyze": "waza.cli.analyze:analyze",
    "check": "waza.cli.check:check",
    "compact": "waza.cli.compact:compact",
    "compare": "waza.cli.compare:compare",
    "convert": "waza.cli.convert:convert",
    "export": "waza.cli.export:export",
    "import": "waza.cli.imports:import_",
    "prune": "waza.cli.prune:prune",
    "replay": "waza.cli.replay:replay",
    "report": "waza.cli.report:report",
    "sample": "waza.cli.sample:sample",
    "serve": "waza.cli.serve:serve",
}


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="waza")
def main() -> None:
    """waza: runtime telemetry for AI agent skills."""
