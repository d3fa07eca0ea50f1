"""How long a client may take: request headers within a bound, or the connection is closed.

uvicorn closes idle keep-alive connections and caps concurrent ones, but waits
for a request's headers forever; a client that sends them a byte at a time
would hold its connection, and with enough of them every slot. The body's own
deadline is kept by ``limits.BodyLimit``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol; a connection whose request headers take over ``header_seconds`` closes."""

    _deadline: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, header_seconds: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_seconds = header_seconds

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_seconds, self.transport.close)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
