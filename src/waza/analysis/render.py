"""The terminal report, laid out like SPEC.md's Output."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

SHOWN_PROBLEMS = 20


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def whole(value: float | None) -> str:
    return "-" if value is None else f"{round(value):,}"


def one_decimal(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render_report(report: dict[str, Any]) -> Group:
    metrics = report["metrics"]
    estimate = ""
    if report.get("sampled"):
        estimate = f"Estimated sessions (sampling): {report['estimated_sessions']:,.0f}\n"
    header = Text.assemble(
        ("Runtime Telemetry Analysis", "bold"),
        "\n\n",
        f"Sessions analyzed: {report['total_sessions']:,}\n",
        estimate,
        f"Skills invoked: {', '.join(report['skills']) or '-'}",
    )

    table = Table(title="Runtime Metrics")
    table.add_column("Metric")
    table.add_column("Value", justify="right", min_width=14)
    table.add_row("success_rate", rate(metrics["success_rate"]))
    table.add_row("avg_duration_ms", whole(metrics["avg_duration_ms"]))
    table.add_row("total_tool_calls", whole(metrics["total_tool_calls"]))
    table.add_row("avg_tool_calls_per_session", one_decimal(metrics["avg_tool_calls_per_session"]))
    for name in ("p50", "p90", "p95", "p99"):
        table.add_row(f"duration_ms_{name}", whole(metrics[f"duration_ms_{name}"]))
    table.add_row("distinct_users", whole(metrics["distinct_users"]))

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
    """One row per skill or breakdown value."""
    table = Table(title=title)
    names = ("invocations", "success_rate", "avg_duration_ms", "duration_ms_p95", "total_tool_calls", "users")
    table.add_column(label)
    for name in names:
        table.add_column(name, justify="right")
    for key, figures in groups.items():
        table.add_row(
            "(none)" if key is None else str(key),
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
    """Daily trends as sparklines, oldest day first."""
    first, last = per_day[0]["day"], per_day[-1]["day"]
    rows = [
        ("sessions", [row["sessions"] for row in per_day]),
        ("success_rate", [row["success_rate"] for row in per_day]),
        ("avg_duration_ms", [row["avg_duration_ms"] for row in per_day]),
        ("distinct_users", [row["distinct_users"] for row in per_day]),
    ]
    lines = [f"Per day, {first} to {last}:"]
    lines += [f"  {name:<16} {sparkline(values)}" for name, values in rows]
    return Text("\n".join(lines))


def render_outliers(report: dict[str, Any]) -> Text:
    lines = ["Slowest sessions:"]
    lines += [
        f"  {s['session_id']}  {s['skill'] or '-'}  {s['duration_ms']:,} ms"
        for s in report["slowest_sessions"]
    ]
    lines.append("Most tool calls:")
    lines += [
        f"  {s['session_id']}  {s['skill'] or '-'}  {s['tool_calls']:,} calls"
        for s in report["most_tool_calls"]
    ]
    return Text("\n".join(lines))


def render_details(report: dict[str, Any]) -> list[Table]:
    """Tools, LLM models and error types, when the report has them."""
    tools = Table(title="Tools")
    for name in ("Tool", "calls", "failure_rate", "duration_ms_p95", "top_error"):
        tools.add_column(name, justify="left" if name in ("Tool", "top_error") else "right")
    for row in report["tools"]:
        tools.add_row(
            row["tool"],
            whole(row["calls"]),
            rate(row["failure_rate"]),
            whole(row["duration_ms_p95"]),
            (row["top_error"] or "-")[:60],
        )
    models = Table(title="LLM Models")
    names = ("Model", "requests", "input_tokens", "output_tokens", "latency_p50", "latency_p95", "cost")
    for name in names:
        models.add_column(name, justify="left" if name == "Model" else "right")
    for row in report["llm"]:
        cost = "-" if row["cost"] is None else f"{row['cost']:,.2f}"
        models.add_row(
            row["model"] or "(none)",
            whole(row["requests"]),
            whole(row["input_tokens"]),
            whole(row["output_tokens"]),
            whole(row["latency_ms_p50"]),
            whole(row["latency_ms_p95"]),
            cost,
        )
    errors = Table(title="Errors by Type")
    for name in ("Type", "count", "example"):
        errors.add_column(name, justify="right" if name == "count" else "left")
    for row in report["errors"]:
        errors.add_row(row["error_type"], whole(row["count"]), (row["example"] or "-")[:70])
    return [tools, models, errors]


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
    for name in ("Day", "sessions", "bytes"):
        days.add_column(name, justify="left" if name == "Day" else "right")
    for row in storage["per_day"][-14:]:
        days.add_row(row["day"] or "(unpartitioned)", whole(row["sessions"]), size(row["bytes"]))
    return Group(line, days)


def render_problems(problems: list[dict[str, Any]]) -> Text:
    """What was skipped, one place per line, so nothing bad passes silently."""
    lines = [f"Skipped {len(problems):,} unreadable place(s):"]
    for problem in problems[:SHOWN_PROBLEMS]:
        where = problem["path"] if problem["line"] is None else f"{problem['path']}:{problem['line']}"
        lines.append(f"  {where}: {problem['reason']}")
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - SHOWN_PROBLEMS:,} more (all are in the JSON report)")
    return Text("\n".join(lines), style="yellow")


def print_report(report: dict[str, Any], console: Console) -> None:
    console.print(render_report(report))
