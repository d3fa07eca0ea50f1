"""A comparison for people: a terminal table, or Markdown to paste into a pull request."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from waza.compare.comparison import Change, Comparison

LABELS = {
    "success_rate": "success",
    "avg_duration_ms": "avg time",
    "p95_duration_ms": "p95 time",
    "tokens_per_session": "tokens",
    "cost_per_session": "cost",
}
HEADER = ("skill", "figure", "baseline", "current", "change", "p", "verdict")


def rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """A line of session counts per group, then a line per figure."""
    lines = []
    for change in comparison.changes:
        if change.figure == "success_rate":
            counts = (change.baseline_sessions, change.current_sessions)
            lines.append((change.group, "sessions", f"{counts[0]:,}", f"{counts[1]:,}", "", "", ""))
        p = "" if change.adjusted_p is None else f"{change.adjusted_p:.2g}"
        lines.append(
            (
                change.group,
                LABELS[change.figure],
                _value(change.figure, change.baseline),
                _value(change.figure, change.current),
                _change(change),
                p,
                _verdict(change),
            )
        )
    return lines


def table(comparison: Comparison) -> Table:
    shown = Table(caption=_caption(comparison))
    for name in HEADER:
        right = name in ("baseline", "current", "change", "p")
        shown.add_column(name, justify="right" if right else "left", overflow="fold", no_wrap=right)
    for row in rows(comparison):
        style = "red" if row[-1].startswith("worse") else "green" if row[-1].startswith("better") else None
        shown.add_row(*(Text(cell) for cell in row), style=style)  # skill names are telemetry: never markup
    return shown


def markdown(comparison: Comparison) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * 2 + " ---: |" * 4 + " --- |"]
    for row in rows(comparison):
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return "\n".join(lines) + f"\n\n{_caption(comparison)}\n"


def _caption(comparison: Comparison) -> str:
    return (
        f"worse/better: significant at {comparison.alpha:g} over the whole comparison (p Holm-adjusted);"
        " success by the two-proportion test, times, tokens and cost by Mann-Whitney, p95 by the"
        " quantile test; 'same': no significant change; 'too few': under 10 sessions on a side."
    )


def _value(figure: str, value: float | None) -> str:
    if value is None:
        return "-"
    if figure == "success_rate":
        return f"{value:.1%}"
    if figure.endswith("_ms"):
        return f"{value:,.0f} ms"
    if figure == "cost_per_session":
        return f"{value:.4f}"
    return f"{value:,.0f}"


def _change(change: Change) -> str:
    if change.change is None:
        return "-"
    if change.figure == "success_rate":
        return f"{100 * change.change:+.1f} pp"
    return f"{change.relative:+.1%}" if change.relative is not None else "-"


def _verdict(change: Change) -> str:
    if change.z is None:
        return "too few"
    return "worse" if change.worse else "better" if change.better else "same"


def _cell(text: str) -> str:
    """A Markdown table cell that shows telemetry as text: no pipes, markup or HTML."""
    escaped = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for mark in "`*_[]<>#!":
        escaped = escaped.replace(mark, "\\" + mark)
    return escaped
