"""The telemetry files under an object-store prefix, listed through Spark's own file systems.

Listing goes through Hadoop's FileSystem, so any store Spark is set up for
(``s3a://``, ``gs://``, ``abfss://``, ``hdfs://``, ``file://``) works the same.
Files are told apart by name, as opening each one remotely would cost a
request apiece: the event log's segments (``.jsonl``, ``.jsonl.gz``) and
compacted Parquet, with the same rules as a local folder (store/sources.py):
a ``.jsonl`` beside its ``.gz`` is skipped, Parquet counts once its manifest
exists, and the segments a manifest names are not read again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from waza.store.compacted import COMPACTED, MANIFEST_SUFFIX
from waza.store.sources import Format, Problem, Source


def list_prefix(spark: Any, url: str) -> tuple[list[Source], list[Problem], set[str]]:
    """The sources under ``url``, what was left out and why, and every file name listed."""
    hadoop = spark.sparkContext._jvm.org.apache.hadoop.fs
    root = hadoop.Path(url.rstrip("/"))
    system = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not system.exists(root):
        return [], [Problem(url, None, "no such prefix")], set()
    listing = _listing(system, root)
    held, committed = _compaction_state(spark, system, listing)
    sources: list[Source] = []
    problems: list[Problem] = []
    for name, size in sorted(listing.items()):
        leaf = name.rsplit("/", 1)[-1]
        if (
            f"{name}.gz" in listing
            or name in held
            or leaf.endswith(MANIFEST_SUFFIX)
            or (leaf.startswith("sessions-") and f"/{COMPACTED}/" in name)
        ):
            continue
        path = Path(urlparse(name).path)
        if leaf.endswith(".parquet") and f"/{COMPACTED}/" in name:
            if name in committed:
                sources.append(Source(path, Format.PARQUET, False, size, url=name))
        elif leaf.endswith((".jsonl", ".jsonl.gz")):
            sources.append(Source(path, Format.EVENTS, leaf.endswith(".gz"), size, url=name))
        else:
            problems.append(
                Problem(name, None, "not read: a prefix holds *.jsonl[.gz] and compacted Parquet")
            )
    return sources, problems, set(listing)


def _listing(system: Any, root: Any) -> dict[str, int]:
    """Every file under ``root`` and its size, names starting with . or _ left out."""
    base = system.makeQualified(root).toString().rstrip("/")
    files: dict[str, int] = {}
    found = system.listFiles(root, True)
    while found.hasNext():
        status = found.next()
        name = status.getPath().toString()
        if not any(part.startswith((".", "_")) for part in name[len(base) :].split("/") if part):
            files[name] = status.getLen()
    return files


def _compaction_state(spark: Any, system: Any, listing: dict[str, int]) -> tuple[set[str], set[str]]:
    """The segments compacted stores hold, and their committed Parquet files."""
    jvm = spark.sparkContext._jvm
    held: set[str] = set()
    committed: set[str] = set()
    for manifest in (name for name in listing if name.endswith(MANIFEST_SUFFIX)):
        root = manifest[: manifest.index(f"/{COMPACTED}/")]
        committed.add(manifest[: -len(MANIFEST_SUFFIX)] + ".parquet")
        stream = system.open(jvm.org.apache.hadoop.fs.Path(manifest))
        try:
            text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        try:
            for segment in json.loads(text)["segments"]:  # and each one's crash twin (compaction.py)
                held.update((f"{root}/{segment}", f"{root}/{segment.removesuffix('.gz')}"))
        except (ValueError, KeyError, TypeError):
            continue  # an unreadable manifest commits nothing more than its Parquet
    return held, committed
