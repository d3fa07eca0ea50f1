"""Where records live in a telemetry folder: day partitions of append-only segments."""

from __future__ import annotations

import os
import re
import socket
from datetime import date


def partition_name(day: date) -> str:
    """Folder for one UTC day, so retention is deleting whole partitions."""
    return f"date={day.isoformat()}"


def writer_tag() -> str:
    """host-pid, cleaned so that no host name can choose a path."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}"


def segment_name(tag: str, started: int, sequence: int) -> str:
    return f"part-{tag}-{started}-{sequence:05d}.jsonl"


def is_segment(name: str) -> bool:
    """Whether a file name is one a writer gives its segments (open, or closed as ``.gz``)."""
    return name.startswith("part-") and name.endswith((".jsonl", ".jsonl.gz"))
