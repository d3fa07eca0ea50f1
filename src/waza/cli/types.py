"""Option types shared by commands: ages (30d), moments (ISO time or an age ago), KEY=VALUE, --format."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from waza.engine import ENGINES
from waza.model import parse_time

UNITS = {"d": "days", "w": "weeks", "h": "hours", "m": "minutes", "s": "seconds"}


class Age(click.ParamType):
    """A span such as 30d, 2w, 36h, 15m or 30s."""

    name = "age"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([dwhms])\s*", str(value))
        if not match:
            self.fail(f"{value!r} is not an age like 30d, 2w, 36h or 15m", param, ctx)
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class Moment(click.ParamType):
    """An ISO 8601 time (UTC unless it has an offset), or an age meaning that long ago."""

    name = "time"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return parse_time(value)
        text = str(value)
        if re.fullmatch(r"\s*\d+\s*[dwhm]\s*", text):
            return datetime.now(UTC) - Age().convert(text, param, ctx)
        try:
            return parse_time(text)
        except ValueError:
            self.fail(f"{text!r} is neither an ISO time nor an age like 7d or 24h", param, ctx)


class KeyValue(click.ParamType):
    """KEY=VALUE, for metadata filters."""

    name = "key=value"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key.strip(), text


class InputPath(click.ParamType):
    """A file or folder to read, which must exist, or an object-store prefix (s3a://...)."""

    name = "path"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if "://" not in text and not Path(text).exists():
            self.fail(f"{text}: no such file or folder", param, ctx)
        return text


class MemorySize(click.ParamType):
    """An amount of memory such as 512MB, 4GB or 1.5GiB."""

    name = "size"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B|B)", text, re.IGNORECASE):
            self.fail(f"{value!r} is not an amount of memory like 512MB or 4GB", param, ctx)
        return text


# What a command prints: a table for people, JSON for programs.
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="What to print.",
)


def engine_options(command: click.Command) -> click.Command:
    """``--engine`` and ``--master``, for the commands that read telemetry through an engine."""
    command = click.option(
        "--master", help="Spark master URL (default local[*], or $WAZA_SPARK_MASTER); implies --engine spark."
    )(command)
    return click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="duckdb",
        show_default=True,
        help="DuckDB in this process, or Apache Spark (pip install 'waza[spark]').",
    )(command)


class Share(click.ParamType):
    """A share: percentage points (3pp), a percentage (20%), or a fraction (0.03)."""

    name = "share"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(pp|%)?\s*", str(value))
        if not match:
            self.fail(f"{value!r} is not a share like 3pp, 20% or 0.03", param, ctx)
        number = float(match.group(1))
        return number / 100 if match.group(2) else number
