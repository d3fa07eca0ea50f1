"""The report's charts, drawn by Bokeh in the browser from the figures computed here.

Each chart is a Bokeh document as JSON (``json_item``); the page embeds it
beside Bokeh's own JavaScript, so the file needs nothing from the network.
Bokeh draws text on a canvas and escapes tooltip values, so names from
telemetry never become markup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bokeh.embed import json_item
from bokeh.models import ColumnDataSource, HoverTool, Label, LinearAxis, NumeralTickFormatter, Range1d, Span
from bokeh.plotting import figure

BLUE, GREEN, GREY = "#3b6ea8", "#2e8b57", "#888888"
DAY_MS = 86_400_000
MAX_SKILLS = 30  # skills in the per-skill chart, the busiest first; the table lists every one


def _figure(**options: Any) -> Any:
    chart = figure(**{"height": 260, "sizing_mode": "stretch_width", "toolbar_location": None, **options})
    chart.outline_line_color = None
    chart.grid.grid_line_alpha = 0.4
    return chart


def daily(per_day: list[dict[str, Any]]) -> dict[str, Any]:
    """Sessions per day as bars, the success rate as a line on its own axis."""
    days = [datetime.fromisoformat(row["day"]).replace(tzinfo=UTC) for row in per_day]
    source = ColumnDataSource(
        {
            "day": days,
            "label": [row["day"] for row in per_day],
            "sessions": [row["sessions"] for row in per_day],
            "success": [row["success_rate"] for row in per_day],
        }
    )
    chart = _figure(x_axis_type="datetime", y_axis_label="sessions")
    chart.vbar(x="day", top="sessions", width=DAY_MS * 0.8, color=BLUE, alpha=0.7, source=source)
    chart.extra_y_ranges = {"rate": Range1d(0, 1.05)}
    chart.add_layout(
        LinearAxis(
            y_range_name="rate", axis_label="success rate", formatter=NumeralTickFormatter(format="0%")
        ),
        "right",
    )
    chart.line(x="day", y="success", y_range_name="rate", color=GREEN, line_width=2, source=source)
    chart.scatter(x="day", y="success", y_range_name="rate", color=GREEN, size=5, source=source)
    chart.add_tools(
        HoverTool(tooltips=[("day", "@label"), ("sessions", "@sessions{0,0}"), ("success", "@success{0.0%}")])
    )
    return json_item(chart)


def durations(
    bins: list[tuple[int, int]], per_decade: int, percentiles: dict[str, float | None]
) -> dict[str, Any]:
    """Completed sessions by duration on a log scale, with the percentiles marked."""
    source = ColumnDataSource(
        {
            "left": [10 ** (b / per_decade) for b, _ in bins],
            "right": [10 ** ((b + 1) / per_decade) for b, _ in bins],
            "sessions": [n for _, n in bins],
        }
    )
    chart = _figure(x_axis_type="log", x_axis_label="duration (ms)", y_axis_label="sessions")
    chart.quad(left="left", right="right", bottom=0, top="sessions", color=BLUE, alpha=0.7, source=source)
    for name, value in percentiles.items():
        if value is None or value <= 0:
            continue
        chart.add_layout(Span(location=value, dimension="height", line_color=GREY, line_dash="dashed"))
        chart.add_layout(
            Label(x=value, y=5, y_units="screen", text=f" {name}", text_font_size="11px", text_color=GREY)
        )
    chart.add_tools(
        HoverTool(
            tooltips=[("from", "@left{0,0} ms"), ("to", "@right{0,0} ms"), ("sessions", "@sessions{0,0}")]
        )
    )
    return json_item(chart)


def skills(breakdown: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sessions per skill, the busiest first, coloured by success rate."""
    busiest = sorted(breakdown.items(), key=lambda item: (-item[1]["invocations"], item[0]))[:MAX_SKILLS]
    names = [name for name, _ in reversed(busiest)]
    source = ColumnDataSource(
        {
            "skill": names,
            "sessions": [breakdown[name]["invocations"] for name in names],
            "success": [breakdown[name]["success_rate"] for name in names],
            "colour": [_rate_colour(breakdown[name]["success_rate"]) for name in names],
        }
    )
    chart = _figure(y_range=names, x_axis_label="sessions", height=max(160, 28 * len(names) + 60))
    chart.hbar(y="skill", right="sessions", height=0.7, color="colour", source=source)
    chart.add_tools(
        HoverTool(
            tooltips=[("skill", "@skill"), ("sessions", "@sessions{0,0}"), ("success", "@success{0.0%}")]
        )
    )
    return json_item(chart)


def _rate_colour(rate: float | None) -> str:
    """Green at 100% success, through amber, to red at 80% and below."""
    if rate is None:
        return GREY
    share = min(1.0, max(0.0, (rate - 0.8) / 0.2))
    return f"#{round(200 - 150 * share):02x}{round(60 + 100 * share):02x}50"
