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

BACKLOG = 2048  # uvicorn's own default
RESTART_PAUSE = 1.0  # seconds between restarts of a worker that died, so a crash loop stays cheap


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def run(workers: int, host: str, port: int, **config: Any) -> None:
    """Serve with ``workers`` processes until SIGINT or SIGTERM, restarting any that dies."""
    # Every socket listens before any worker starts: a connection made while a
    # worker is still starting waits in that worker's queue, not on another worker.
    listeners = [_listening_socket(host, port)]
    port = listeners[0].getsockname()[1]  # fixed now, when 0 asked for any
    listeners += [_listening_socket(host, port) for _ in range(workers - 1)]
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def start(listener: socket.socket) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_serve, args=(listener, config))
        process.start()
        return process

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = []
    try:
        processes = [start(listener) for listener in listeners]
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    time.sleep(RESTART_PAUSE)
                    processes[index] = start(listeners[index])
    finally:
        for process in processes:  # each commits what it accepted before it exits
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        for listener in listeners:
            listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(listener: socket.socket, config: dict[str, Any]) -> None:
    """One worker process: its own socket, its own uvicorn server."""
    uvicorn.Server(uvicorn.Config(**config)).run(sockets=[listener])


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(BACKLOG)
    return sock
