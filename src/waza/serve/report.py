"""GET /report: the HTML report of the server's own folder, behind the server's token.

Building reads the whole folder, so builds take turns (one at a time) and a
page is reused for ``FRESH_SECONDS`` for the same filters: a client reloading
in a loop costs one build a minute, not one per request. Only filters come
from the request (a skill name and a number of days), never a path.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from waza.engine.slicing import Slice
from waza.serve.requests import MAX_ID, Refusal

FRESH_SECONDS = 60.0
MAX_DAYS = 3650


class ReportPage:
    def __init__(self, directory: Path):
        self.directory = directory
        self._turn = asyncio.Lock()
        self._kept: tuple[float, tuple[str | None, int | None], bytes] | None = None

    async def respond(self, request: Request) -> Response:
        key = _filters(request)
        async with self._turn:
            if self._kept is None or self._kept[1] != key or time.monotonic() - self._kept[0] > FRESH_SECONDS:
                self._kept = (time.monotonic(), key, await run_in_threadpool(self._build, *key))
            page = self._kept[2]
        if not page:
            raise Refusal(404, "no sessions in this server's folder match yet")
        return Response(page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})

    def _build(self, skill: str | None, days: int | None) -> bytes:
        from waza.dashboard.build import html_report  # Bokeh loads on the first report asked for

        since = datetime.now(UTC) - timedelta(days=days) if days else None
        page, report = html_report([self.directory], Slice(skill=skill, since=since))
        return page.encode("utf-8") if report["total_sessions"] else b""


def _filters(request: Request) -> tuple[str | None, int | None]:
    unknown = set(request.query_params) - {"skill", "days"}
    if unknown:
        raise Refusal(400, f"unknown query parameter {sorted(unknown)[0]!r}: /report takes skill and days")
    skill = request.query_params.get("skill")
    if skill is not None and not 0 < len(skill) <= MAX_ID:
        raise Refusal(400, f"skill must be 1 to {MAX_ID} characters")
    days = request.query_params.get("days")
    if days is None:
        return skill, None
    if not days.isdigit() or not 0 < int(days) <= MAX_DAYS:
        raise Refusal(400, f"days must be a whole number from 1 to {MAX_DAYS}")
    return skill, int(days)
