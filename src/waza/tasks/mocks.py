"""Hermetic replays: command-line and MCP tools answered from what a session recorded of them.

``waza convert --mocks`` writes waza's ``command_mocks`` into each task: for
every call of a command-line tool (``az``, ``gh``, ``kubectl``: a tool whose
name is an executable's and whose arguments are an argument vector) that
recorded its result, the argument vector and the output and exit code it got.
The waza runner answers them with executable shims; ``waza replay`` does the
same: the replayed process finds a shim of each mocked tool first on its
``PATH``, which prints the recorded answer for a known argument vector and
fails with exit code 127 for any other, so a replay never reaches a real
service.

MCP tools (a call whose data names its ``server``, or named ``mcp__<server>__<tool>``)
are answered by waza's ``mcp_mocks``, which the suite carries for all its tasks:
per server and tool, the arguments of each call (an exact match) and what it
returned, or its error. ``waza replay`` does not serve them; ``waza run`` does.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from waza.model import SessionTelemetry
from waza.schema import TOOL_CALLED, TOOL_COMPLETED

EXECUTABLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MOCK_SCHEMA_VERSION = "1.3"  # the eval schema version command_mocks (1.3) and mcp_mocks (1.1) need
MCP_CALLS = "mcp_calls"  # in a task's record: its MCP calls, until the suite's mocks are written
MCP_NAME = re.compile(r"^mcp__(?P<server>[^_].*?)__(?P<tool>.+)$")
UNMATCHED = 127  # a shell's "command not found": the call was not recorded


def command_mocks(session: SessionTelemetry) -> list[dict[str, Any]]:
    """A mock per command-line tool the session called with a recorded result, its calls in order."""
    mocks: dict[str, list[dict[str, Any]]] = {}
    pending: dict[str, list[list[str]]] = {}  # tool -> argument vectors called, not yet completed
    for event in session.events:
        tool = event.data.get("tool")
        if not isinstance(tool, str) or not EXECUTABLE.match(tool):
            continue
        if event.event_type == TOOL_CALLED:
            args = event.data.get("args")
            if isinstance(args, list) and all(isinstance(a, str) for a in args):
                pending.setdefault(tool, []).append(args)
        elif event.event_type == TOOL_COMPLETED and pending.get(tool):
            args = pending[tool].pop(0)
            result = event.data.get("result", event.data.get("stdout"))
            if result is None:
                continue  # content was not captured: nothing to answer with
            code = event.data.get("exit_code")
            if not isinstance(code, int) or not 0 <= code <= 255:
                code = 0 if event.data.get("success") is not False else 1
            response = {"args": args, "stdout": result if isinstance(result, str) else json.dumps(result)}
            if code:
                response["exit_code"] = code
            responses = mocks.setdefault(tool, [])
            if not any(r["args"] == args for r in responses):  # the first answer to an argument vector
                responses.append(response)
    return [{"name": name, "responses": responses} for name, responses in mocks.items()]


def mcp_calls(session: SessionTelemetry) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(server, tool, arguments, response) of each MCP call whose outcome the session recorded."""
    found = []
    pending: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for event in session.events:
        name = event.data.get("tool")
        if not isinstance(name, str):
            continue
        if event.event_type == TOOL_CALLED:
            named = MCP_NAME.match(name)
            server = event.data.get("server") or (named and named["server"])
            args = event.data.get("args")
            if isinstance(server, str) and server and isinstance(args, dict | type(None)):
                pending.setdefault(name, []).append((server, named["tool"] if named else name, args or {}))
        elif event.event_type == TOOL_COMPLETED and pending.get(name):
            server, tool, args = pending[name].pop(0)
            if event.data.get("success") is False and event.data.get("error"):
                found.append((server, tool, args, {"match": args, "error": str(event.data["error"])}))
            elif "result" in event.data:
                found.append((server, tool, args, {"match": args, "return": event.data["result"]}))
    return found


def mcp_mocks(
    sessions_calls: list[list[tuple[str, str, dict[str, Any], dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """waza's ``mcp_mocks`` for a suite: a mock server per MCP server its sessions called."""
    servers: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for calls in sessions_calls:
        for server, tool, args, response in calls:
            responses = servers.setdefault(server, {}).setdefault(tool, [])
            if not any(r["match"] == args for r in responses):
                responses.append(response)
    return [
        {"name": server, "tools": {tool: {"responses": responses} for tool, responses in tools.items()}}
        for server, tools in servers.items()
    ]


def install_shims(mocks: list[dict[str, Any]], folder: Path) -> None:
    """Executables in ``folder`` answering each mocked tool; put ``folder`` first on ``PATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    for mock in mocks:
        name = str(mock["name"])
        if not EXECUTABLE.match(name):
            continue
        answers = folder / f".{name}.json"
        answers.write_text(json.dumps(mock["responses"]), encoding="utf-8")
        shim = folder / name
        shim.write_text(
            _SHIM.format(python=sys.executable, answers=json.dumps(str(answers))), encoding="utf-8"
        )
        shim.chmod(0o755)
    os.environ["PATH"] = str(folder) + os.pathsep + os.environ.get("PATH", "")


# The shim: the first recorded response whose argument vector matches (exactly, or by
# full-string regular expressions) is printed with its exit code.
_SHIM = (
    """#!{python}
import json, re, sys
args = sys.argv[1:]
for response in json.load(open({answers}, encoding="utf-8")):
    exact = response.get("args")
    patterns = response.get("args_regex")
    if exact is not None and exact == args or patterns is not None and len(patterns) == len(args) and all(
            re.fullmatch(p, a) for p, a in zip(patterns, args)):
        stdout = response.get("stdout", "")
        sys.stdout.write(stdout if isinstance(stdout, str) else json.dumps(stdout))
        sys.stderr.write(response.get("stderr", ""))
        sys.exit(response.get("exit_code", 0))
sys.stderr.write("waza replay: no recorded answer for this call: " + " ".join(args) + "\\n")
sys.exit("""
    + str(UNMATCHED)
    + """)
"""
)
