"""The server's processes: one, or several on one port, each listening on a socket of its own.

uvicorn's own workers share one listening socket, and whichever process wakes
first accepts a whole burst of connections: with keep-alive clients (collectors,
load balancers) one process can end up serving every connection while the
others idle. With ``SO_REUSEPORT`` each process listens on a socket of its own
and the kernel spreads new connections across them. The sockets are opened
here, so a port in use is one clear error, however many workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from waza.errors import WazaError

BACKLOG = 2048  # uvicorn's own default
RESTART_PAUSE = 1.0  # seconds between restarts of a worker that died, so a crash loop stays cheap
ORPHAN_CHECK_SECONDS = 0.5


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def run(
    workers: int, host: str, port: int, *, listening: Callable[[], None] | None = None, **config: Any
) -> None:
    """Serve until SIGINT or SIGTERM: one worker in this process, more in processes of their own,
    each restarted if it dies. ``listening`` is called once the port is taken."""
    try:
        family, address = _free_address(host, port)
    except OSError as error:
        raise WazaError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    announce = listening or (lambda: None)
    if workers == 1:
        listener = _listening_socket(family, address, shared=False)
        announce()
        if not _serve(listener, config):
            raise WazaError("the server did not start (see the error above)")
        return
    # Every socket listens before any worker starts: a connection made while a
    # worker is still starting waits in that worker's queue, not on another worker.
    listeners = [_listening_socket(family, address, shared=True) for _ in range(workers)]
    announce()
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def start(listener: socket.socket) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_serve, args=(listener, config, os.getpid()))
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


def _serve(listener: socket.socket, config: dict[str, Any], parent: int | None = None) -> bool:
    """One worker: its own socket, its own uvicorn server; whether it started.

    A worker of ``parent`` stops as a SIGTERM would stop it (committing what it accepted) when the
    parent is gone, even killed outright: no orphan keeps the port.
    """
    server = uvicorn.Server(uvicorn.Config(**config))
    if parent is not None:
        threading.Thread(target=_stop_when_orphaned, args=(server, parent), daemon=True).start()
    server.run(sockets=[listener])
    return server.started


def _stop_when_orphaned(server: uvicorn.Server, parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    server.should_exit = True


def _free_address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """The address to listen on, or OSError when something listens there already:
    with SO_REUSEPORT alone, a second server of the same user would share the port."""
    family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        return family, probe.getsockname()  # the port fixed, when 0 asked for any


def _listening_socket(family: socket.AddressFamily, address: Any, *, shared: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(BACKLOG)
    return sock
