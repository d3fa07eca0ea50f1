"""Why `waza serve` is plain Starlette: the same event route on FastAPI and on Starlette.

Both apps take POST /telemetry/session/<id>/event with a body checked against
the same bounds (FastAPI with a pydantic model, as FastAPI is meant to be used;
Starlette with the msgspec struct `waza serve` uses) and answer {"ok":true}
without touching disk, so the difference is the framework's own cost per
request. Each runs on uvicorn (httptools, uvloop) in one process and is driven
from another by the load generator of bench/serve.py. Usage:

  python bench/frameworks.py [--seconds 8] [--connections 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import pydantic
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from waza.serve.requests import MAX_NAME, EventIn, decode

HERE = Path(__file__).resolve().parent
ROUTE = "/telemetry/session/{session_id}/event"
OK = b'{"ok":true}'


class PydanticEvent(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    event_type: Annotated[
        str, pydantic.Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9_.:-]+$")
    ]
    data: dict[str, Any] = {}


fastapi_app = FastAPI()


@fastapi_app.post(ROUTE)
async def fastapi_event(session_id: str, body: PydanticEvent) -> Response:
    return Response(OK, media_type="application/json")


async def starlette_event(request: Request) -> Response:
    decode(await request.body(), EventIn)
    return Response(OK, media_type="application/json")


starlette_app = Starlette(routes=[Route(ROUTE, starlette_event, methods=["POST"])])


APPS = {"FastAPI + pydantic": "frameworks:fastapi_app", "Starlette + msgspec": "frameworks:starlette_app"}


def serve(app: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
               "--loop", "uvloop", "--http", "httptools"]  # fmt: skip
    process = subprocess.Popen(command, cwd=HERE, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            return process  # it answers (404 on /)
        except OSError:
            time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit(f"{app} did not start")


def main() -> None:
    sys.path.insert(0, str(HERE))
    import serve as load_generator  # bench/serve.py

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the apps this many times")
    args = parser.parse_args()
    print(
        f"one event route, no disk, 1 process each, {args.connections} connections, {args.seconds:g} s a run"
    )
    header = f"{'app':<22} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, app in APPS.items():
            port = load_generator.free_port()
            server = serve(app, port)
            try:
                load_generator.load(port, "single", args.connections, 1.0)  # warm up
                wall, latencies, _ = load_generator.load(port, "single", args.connections, args.seconds)
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait()
            rate = len(latencies) / wall
            best[name] = max(best.get(name, 0.0), rate)
            cuts = statistics.quantiles(latencies, n=100)
            print(
                f"{name:<22} {rate:>11,.0f} {statistics.median(latencies):>8.2f} {cuts[98]:>8.2f}", flush=True
            )
    ratio = best["Starlette + msgspec"] / best["FastAPI + pydantic"]
    print(
        f"best of {args.rounds}: Starlette + msgspec serves {ratio:.1f}x the requests of FastAPI + pydantic"
    )


if __name__ == "__main__":
    main()
