"""The terminal report, laid out like SPEC.md's Output."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from waza.terminal import plain

SHOWN_PROBLEMS = 20


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def whole(value: float | None) -> str:
    return "-" if value is None else f"{round(value):,}"


def one_decimal(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


# The headline figures: JSON key, the words shown for it, and how its value reads.
HEADLINE = [
    ("success_rate", "Success rate", "rate"),
    ("avg_duration_ms", "Mean duration (ms)", "whole"),
    ("total_tool_calls", "Tool calls", "whole"),
    ("avg_tool_calls_per_session", "Tool calls per session", "one_decimal"),
    ("duration_ms_p50", "Duration p50 (ms)", "whole"),
    ("duration_ms_p90", "Duration p90 (ms)", "whole"),
    ("duration_ms_p95", "Duration p95 (ms)", "whole"),
    ("duration_ms_p99", "Duration p99 (ms)", "whole"),
    ("distinct_users", "Distinct users", "whole"),
]
FORMATS = {"rate": rate, "whole": whole, "one_decimal": one_decimal}
# Short column names keep a group table within 80 columns; the caption spells them out.
GROUP_LEGEND = (
    "Success: succeeded / completed. Mean ms and p95 ms: duration of completed sessions."
    " Tools: tool calls. Users: distinct users."
)
TREND_DAYS = 50  # a trend line longer than this would not fit 80 columns


def render_report(report: dict[str, Any]) -> Group:
    metrics = report["metrics"]
    header = Text.assemble(
        ("Runtime Telemetry Analysis", "bold"),
        "\n\n",
        f"Sessions analyzed: {report['total_sessions']:,}\n",
    )
    if report.get("sampled"):
        header.append(f"Estimated sessions (sampling): {report['estimated_sessions']:,.0f}\n")
    header.append("Skills invoked: ")
    header.append_text(plain(", ".join(report["skills"]) or "-"))

    table = Table(title="Runtime Metrics")
    table.add_column("Metric")
    table.add_column("Value", justify="right", min_width=14)
    for key, label, shown in HEADLINE:
        table.add_row(label, FORMATS[shown](metrics[key]))

    skills = group_table("Per-Skill Metrics", "Skill", report["skill_breakdown"])

    abandoned = report.get("abandoned_sessions", 0)
    incomplete = Text(
        f"Incomplete sessions: {report['incomplete_sessions']:,} "
        + (f"({abandoned:,} abandoned by the collector) " if abandoned else "")
        + "(no end recorded; counted neither as success nor as failure)",
        style="dim" if not report["incomplete_sessions"] else "yellow",
    )
    parts = [header, Text(""), table, skills]
    if "breakdown" in report:
        by = report["breakdown"]
        parts.append(group_table(f"By {by['by']}", by["by"], by["groups"]))
    parts.append(incomplete)
    if "tools" in report:
        parts.extend(render_details(report))
    if report.get("per_day"):
        parts.append(render_trend(report["per_day"]))
    parts.append(render_outliers(report))
    backwards = report.get("ended_before_start", 0)
    if backwards:
        parts.append(
            Text(
                f"{backwards:,} session(s) ended before they started (a clock stepped back): "
                "their durations are left out of every duration figure",
                style="yellow",
            )
        )
    cut = report.get("cut", {})
    if any(cut.values()):
        parts.append(
            Text(
                f"Cut by collector limits: {cut['events_dropped']:,} events dropped, "
                f"{cut['values_truncated']:,} values truncated",
                style="yellow",
            )
        )
    if "storage" in report:
        parts.append(render_storage(report["storage"]))
    return Group(*parts)


def group_table(title: str, label: str, groups: dict[str | None, dict[str, Any]]) -> Table:
    """One row per skill or breakdown value; names wrap rather than lose characters."""
    table = Table(title=title, caption=GROUP_LEGEND, caption_justify="left")
    table.add_column(label, overflow="fold")
    for name in ("Sessions", "Success", "Mean ms", "p95 ms", "Tools", "Users"):
        table.add_column(name, justify="right", no_wrap=True)
    for key, figures in groups.items():
        table.add_row(
            Text("(none)") if key is None else plain(key),
            whole(figures["invocations"]),
            rate(figures["success_rate"]),
            whole(figures["avg_duration_ms"]),
            whole(figures["duration_ms_p95"]),
            whole(figures["total_tool_calls"]),
            whole(figures["distinct_users"]),
        )
    return table


BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled between the smallest and largest."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(" " if v is None else BARS[round((v - low) / span * (len(BARS) - 1))] for v in values)


def render_trend(per_day: list[dict[str, Any]]) -> Text:
    """Daily trends as sparklines, oldest day first, each between its first and last value."""
    shown = per_day[-TREND_DAYS:]
    first, last = shown[0]["day"], shown[-1]["day"]
    rows = [
        ("Sessions", "sessions", whole),
        ("Success rate", "success_rate", rate),
        ("Mean ms", "avg_duration_ms", whole),
        ("Users", "distinct_users", whole),
    ]
    lines = [
        f"Per day, {first} to {last}"
        + (f" (the last {TREND_DAYS} days)" if len(per_day) > TREND_DAYS else "")
        + ":"
    ]
    for label, key, shown_as in rows:
        values = [row[key] for row in shown]
        lines.append(f"  {label:<13}{shown_as(values[0]):>7} {sparkline(values)} {shown_as(values[-1])}")
    return Text("\n".join(lines))


def render_outliers(report: dict[str, Any]) -> Text:
    text = Text("Slowest sessions:")
    for s in report["slowest_sessions"]:
        text.append("\n  ").append_text(plain(s["session_id"])).append("  ")
        text.append_text(plain(s["skill"] or "-")).append(f"  {s['duration_ms']:,} ms")
    text.append("\nMost tool calls:")
    for s in report["most_tool_calls"]:
        text.append("\n  ").append_text(plain(s["session_id"])).append("  ")
        text.append_text(plain(s["skill"] or "-")).append(f"  {s['tool_calls']:,} calls")
    return text


def render_details(report: dict[str, Any]) -> list[Table]:
    """Tools, skills loaded, LLM models and error types, when the report has them."""
    tools = Table(title="Tools")
    tools.add_column("Tool", overflow="fold")
    for name in ("Calls", "Failed", "p95 ms"):
        tools.add_column(name, justify="right", no_wrap=True)
    tools.add_column("Most frequent error", overflow="fold")
    for row in report["tools"]:
        tools.add_row(
            plain(row["tool"]),
            whole(row["calls"]),
            rate(row["failure_rate"]),
            whole(row["duration_ms_p95"]),
            plain(_shortened(row["top_error"])),
        )
    models = Table(title="LLM Models", caption="Tokens in thousands (k) past 10,000.", caption_justify="left")
    models.add_column("Model", overflow="fold")
    # Cached input and reasoning output only where a producer reported them: 80 columns otherwise.
    cached = any(row.get("cache_read_tokens") for row in report["llm"])
    reasoning = any(row.get("reasoning_tokens") for row in report["llm"])
    names = ["Requests", "Tokens in", "Cached", "Tokens out", "Reasoning", "p50 ms", "p95 ms", "Cost"]
    shown = [name for name in names if (name != "Cached" or cached) and (name != "Reasoning" or reasoning)]
    for name in shown:
        models.add_column(name, justify="right", no_wrap=True)
    for row in report["llm"]:
        cells = {
            "Requests": whole(row["requests"]),
            "Tokens in": thousands(row["input_tokens"]),
            "Cached": thousands(row.get("cache_read_tokens")),
            "Tokens out": thousands(row["output_tokens"]),
            "Reasoning": thousands(row.get("reasoning_tokens")),
            "p50 ms": whole(row["latency_ms_p50"]),
            "p95 ms": whole(row["latency_ms_p95"]),
            "Cost": "-" if row["cost"] is None else f"{row['cost']:,.2f}",
        }
        model = Text("(none)") if row["model"] is None else plain(row["model"])
        models.add_row(model, *(cells[name] for name in shown))
    errors = Table(title="Errors by Type")
    errors.add_column("Type", overflow="fold")
    errors.add_column("Count", justify="right", no_wrap=True)
    errors.add_column("Example", overflow="fold")
    for row in report["errors"]:
        errors.add_row(plain(row["error_type"]), whole(row["count"]), plain(_shortened(row["example"])))
    tables = [tools, models, errors]
    if report.get("skills_loaded"):  # only where sessions loaded skills
        skills = Table(title="Skills Loaded", caption="Tool calls after each load, until the next.",
                       caption_justify="left")  # fmt: skip
        skills.add_column("Skill", overflow="fold")
        for name in ("Sessions", "Loads", "Tool calls", "Failed", "p95 ms"):
            skills.add_column(name, justify="right", no_wrap=True)
        for row in report["skills_loaded"]:
            failed = row["tool_failures"] / row["tool_calls"] if row["tool_calls"] else None
            counts = (whole(row[key]) for key in ("sessions", "loads", "tool_calls"))
            skills.add_row(plain(row["skill"]), *counts, rate(failed), whole(row["tool_duration_ms_p95"]))
        tables.insert(1, skills)
    return tables


def thousands(value: float | None) -> str:
    """A count, in thousands once it is past 10,000, so that token columns stay narrow."""
    if value is None or value < 10_000:
        return whole(value)
    return f"{value / 1000:,.0f}k"


def _shortened(text: str | None, limit: int = 120) -> str:
    """An example message cut to a readable length (the JSON report keeps it whole)."""
    if not text:
        return "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def size(count: float | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} TB"


def render_storage(storage: dict[str, Any]) -> Group:
    """Bytes on disk, per session, and the last days, to watch growth and cost."""
    line = Text(
        f"Storage: {size(storage['bytes'])} on disk, {size(storage['bytes_per_session'])} per session"
    )
    days = Table(title="Per Day")
    for name in ("Day", "Sessions", "Bytes"):
        days.add_column(name, justify="left" if name == "Day" else "right")
    for row in storage["per_day"][-14:]:
        days.add_row(plain(row["day"] or "(unpartitioned)"), whole(row["sessions"]), size(row["bytes"]))
    return Group(line, days)


def render_problems(problems: list[dict[str, Any]]) -> Text:
    """What was skipped, one place per line, so nothing bad passes silently."""
    text = Text(f"Skipped {len(problems):,} unreadable place(s):", style="yellow")
    for problem in problems[:SHOWN_PROBLEMS]:
        where = problem["path"] if problem["line"] is None else f"{problem['path']}:{problem['line']}"
        text.append("\n  ").append_text(plain(f"{where}: {problem['reason']}", "yellow"))
    if len(problems) > SHOWN_PROBLEMS:
        text.append(f"\n  ... and {len(problems) - SHOWN_PROBLEMS:,} more (all are in the JSON report)")
    return text


def print_report(report: dict[str, Any], console: Console) -> None:
    console.print(render_report(report))
