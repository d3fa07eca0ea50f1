"""Starting the server: the rule for who may write, the settings every worker gets, the processes.

The rule lives here, not in the command line, so that every way of starting
the server keeps it: beyond loopback, writes need a token.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from waza.errors import UsageError, WazaError
from waza.serve import workers
from waza.serve.app import Settings, create_app
from waza.serve.timeouts import HeaderDeadlineProtocol


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def read_token(path: Path) -> tuple[str, bool]:
    """The token in a file, and whether others than its owner may read the file."""
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise WazaError(f"{path} holds no token")
    return token, bool(path.stat().st_mode & 0o077)


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    processes: int = 1,
    max_connections: int = 256,
    client_timeout: float = 10.0,
    listening: Callable[[], None] | None = None,
) -> None:
    """Serve ``settings.directory`` on ``host:port`` until SIGINT or SIGTERM."""
    if settings.token is None and not is_loopback(host):
        raise WazaError(
            f"listening on {host} needs --token-file: unauthenticated writes are refused beyond loopback"
        )
    if processes > 1 and not workers.supported():
        raise UsageError("--workers needs SO_REUSEPORT, which this system lacks: run one worker per port")
    settings.directory.mkdir(parents=True, exist_ok=True)
    config = {
        # Workers get the settings, token included, as an argument: never through the environment.
        "app": functools.partial(create_app, settings),
        "factory": True,
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        "http": functools.partial(HeaderDeadlineProtocol, header_seconds=client_timeout),
        "limit_concurrency": max_connections,  # past it, new requests get 503 at once
        "timeout_keep_alive": 5,  # an idle connection is closed after 5 s
    }
    workers.run(processes, host, port, listening=listening, **config)
