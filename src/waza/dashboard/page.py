"""The report as one HTML file: works offline, asks the network for nothing, runs nothing from telemetry.

- Every string from telemetry is escaped where the page is built, or handed
  to the browser inside JSON and put on screen with ``textContent``.
- The JSON sits in a ``<script type="application/json">`` block with ``<``,
  ``>`` and ``&`` escaped, so no value can close the block.
- A Content-Security-Policy allows only the page's own scripts (by their
  SHA-256) and no network at all: were anything to slip past the escaping,
  the browser would still neither run it nor fetch for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from importlib.resources import files
from typing import Any

from bokeh.resources import Resources

from waza import __version__

Rows = list[list[Any]]


def page(
    report: dict[str, Any], charts: dict[str, Any], timelines: list[dict[str, Any]], lists: dict[str, Rows]
) -> str:
    """The whole HTML document."""
    library = "\n".join(Resources(mode="inline", components=["bokeh"]).js_raw)
    here = files("waza.dashboard")
    app = here.joinpath("app.js").read_text(encoding="utf-8")
    style = here.joinpath("style.css").read_text(encoding="utf-8")
    data = _json({"charts": charts, "timelines": timelines})
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_digest(library)} {_digest(app)}",
            "style-src 'unsafe-inline'",
            "img-src data:",
        ]
    )
    body = "\n".join(
        [
            _header(report),
            _cards(report),
            _section("Sessions and success rate per day", '<div id="chart-daily" class="chart"></div>'),
            _section("Durations", '<div id="chart-durations" class="chart"></div>' + _percentiles(report)),
            _section("Skills", '<div id="chart-skills" class="chart"></div>' + _skills(report)),
            _section("Tools", _tools(report)),
            _section("Models", _models(report)),
            _section("Top errors", _errors(report)),
            _section("Slowest sessions", _sessions(lists["slowest"], "no completed sessions")),
            _section("Latest failed sessions", _sessions(lists["failed"], "no failed sessions")),
            '<section id="timeline" hidden><h2>Session</h2><dl id="timeline-facts"></dl>'
            '<table class="timeline"><thead><tr><th>at</th><th>event</th><th>name</th><th>took</th>'
            '<th class="bar-cell"></th><th>detail</th></tr></thead><tbody></tbody></table>'
            '<p id="timeline-more"></p></section>',
        ]
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>waza report</title>
<style>{style}</style>
<script>{library}</script>
</head>
<body>
{body}
<script type="application/json" id="waza-data">{data}</script>
<script>{app}</script>
</body>
</html>
"""


def _json(value: Any) -> str:
    """JSON that cannot end the script block it sits in."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _digest(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


def _header(report: dict[str, Any]) -> str:
    span = report.get("time_range") or {}
    filters = {k: v for k, v in (report.get("filters") or {}).items() if v not in (None, {}, "user_id")}
    chosen = ", ".join(f"{key} {value}" for key, value in filters.items()) or "none"
    return (
        f"<header><h1>waza report</h1><p>{escape(str(span.get('start') or '-'))} to "
        f"{escape(str(span.get('end') or '-'))} &middot; {report['input']['files']:,} files &middot; "
        f"filters: {escape(chosen)} &middot; waza {escape(__version__)}</p></header>"
    )


def _cards(report: dict[str, Any]) -> str:
    metrics = report["metrics"]
    tokens = sum(row["total_tokens"] for row in report.get("llm") or [])
    cards = [
        ("sessions", f"{report['total_sessions']:,}"),
        ("completed", f"{report['completed_sessions']:,}"),
        ("success rate", _percent(metrics.get("success_rate"))),
        ("mean duration", _ms(metrics.get("avg_duration_ms"))),
        ("p95 duration", _ms(metrics.get("duration_ms_p95"))),
        ("tool calls", f"{metrics.get('total_tool_calls', 0):,}"),
        ("LLM tokens", f"{tokens:,}"),
    ]
    if report.get("llm_cost") is not None:
        cards.append(("LLM cost", f"{report['llm_cost']:,.2f}"))
    items = "".join(f'<div class="card"><span>{escape(n)}</span><b>{escape(v)}</b></div>' for n, v in cards)
    return f'<section class="cards">{items}</section>'


def _percentiles(report: dict[str, Any]) -> str:
    metrics = report["metrics"]
    names = ("p50", "p90", "p95", "p99")
    return _table(["percentile", "duration"], [[n, _ms(metrics.get(f"duration_ms_{n}"))] for n in names])


def _skills(report: dict[str, Any]) -> str:
    rows = [
        [name, f"{s['invocations']:,}", _percent(s["success_rate"]), _ms(s["avg_duration_ms"]),
         _ms(s.get("duration_ms_p95")), f"{s['total_tool_calls']:,}"]
        for name, s in sorted(report["skill_breakdown"].items())
    ]  # fmt: skip
    return _table(["skill", "sessions", "success", "mean", "p95", "tool calls"], rows, "no skills")


def _tools(report: dict[str, Any]) -> str:
    rows = [
        [
            t["tool"],
            f"{t['calls']:,}",
            _percent(t.get("failure_rate")),
            _ms(t.get("duration_ms_p95")),
            t.get("top_error") or "",
        ]
        for t in report.get("tools") or []
    ]
    return _table(["tool", "calls", "failed", "p95", "most frequent error"], rows, "no tool calls")


def _models(report: dict[str, Any]) -> str:
    rows = [
        [m["model"] or "(unnamed)", f"{m['requests']:,}", f"{m['input_tokens']:,}", f"{m['output_tokens']:,}",
         _ms(m.get("latency_ms_p95")), "-" if m.get("cost") is None else f"{m['cost']:,.2f}"]
        for m in report.get("llm") or []
    ]  # fmt: skip
    return _table(
        ["model", "requests", "input tokens", "output tokens", "p95 latency", "cost"], rows, "no LLM calls"
    )


def _errors(report: dict[str, Any]) -> str:
    rows = [
        [e["error_type"], f"{e['count']:,}", e.get("example") or ""]
        for e in (report.get("errors") or [])[:20]
    ]
    return _table(["type", "sessions", "example"], rows, "no errors")


def _sessions(rows: Rows, empty: str) -> str:
    """Session rows; the first cell is the timeline's index, shown as a button that opens it."""
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    body = "".join(
        f'<tr><td><button type="button" data-session="{int(index)}">timeline</button></td>'
        + "".join(f"<td>{escape(str(cell))}</td>" for cell in cells)
        + "</tr>"
        for index, *cells in rows
    )
    head = "".join(f"<th>{name}</th>" for name in ("", "session", "skill", "duration", "prompt"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table(headers: list[str], rows: Rows, empty: str = "none") -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{content}</section>"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:,.2f} s" if value >= 1000 else f"{value:,.0f} ms"
