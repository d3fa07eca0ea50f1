"""Bounding request bodies before anything reads them."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class BodyLimit:
    """ASGI middleware bounding a body: 413 over ``max_bytes`` (declared or as it streams), and 408
    when it has not all arrived within ``max_seconds``, so a slow client holds no memory for long."""

    def __init__(self, app: Any, max_bytes: int, max_seconds: float = 30.0):
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        started = whole = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_seconds

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen, whole
            if whole:  # the body is in: what follows (a disconnect) has no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
                whole = not message.get("more_body", False)
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)
        except _TooSlow:
            if not started:
                await self._refuse(send, 408, f"the body did not arrive within {self.max_seconds:g} s")

    async def _refuse(self, send: Any, status: int = 413, error: str = "") -> None:
        body = json.dumps({"error": error or f"the body is larger than {self.max_bytes:,} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
