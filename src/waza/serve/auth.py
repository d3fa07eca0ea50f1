"""Bearer-token auth for every write, checked before anything reads the request."""

from __future__ import annotations

import hmac
import json
from typing import Any

OPEN_PATHS = {"/healthz", "/openapi.json"}


class BearerAuth:
    """ASGI middleware: with a token configured, a request other than a read of
    ``OPEN_PATHS`` needs ``Authorization: Bearer <token>``, compared in constant time."""

    def __init__(self, app: Any, token: str | None):
        self.app = app
        self.expected = f"bearer {token}".encode() if token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.expected is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if hmac.compare_digest(scheme.lower() + b" " + token, self.expected):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "a valid bearer token is required"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
