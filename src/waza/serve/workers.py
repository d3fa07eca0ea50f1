"""Several server processes on one port, each listening on a socket of its own.

uvicorn's own workers share one listening socket, and whichever process wakes
first accepts a whole burst of connections: with keep-alive clients (collectors,
load balancers) one process can end up serving every connection while the
others idle. With ``SO_REUSEPORT`` each process listens on a socket of its own
and the kernel spreads new connections across them.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from typing import Any

import uvicorn

RESTART_PAUSE = 1.0  # seconds between restarts of a worker that died, so a crash loop stays cheap


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def run(workers: int, host: str, port: int, **config: Any) -> None:
    """Serve with ``workers`` processes until SIGINT or SIGTERM, restarting any that dies."""
    # Holding the port (bound, never listening) keeps it ours, and fixes it when 0 asked for any.
    holder = _reusable_socket(host, port)
    port = holder.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    start = lambda: context.Process(target=_serve, args=(host, port, config), daemon=False)  # noqa: E731
    processes = [start() for _ in range(workers)]
    try:
        for process in processes:
            process.start()
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    time.sleep(RESTART_PAUSE)
                    processes[index] = start()
                    processes[index].start()
    finally:
        for process in processes:  # each commits what it accepted before it exits
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        holder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(host: str, port: int, config: dict[str, Any]) -> None:
    """One worker process: its own socket, its own uvicorn server."""
    listener = _reusable_socket(host, port)
    uvicorn.Server(uvicorn.Config(host=host, port=port, **config)).run(sockets=[listener])


def _reusable_socket(host: str, port: int) -> socket.socket:
    family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock
