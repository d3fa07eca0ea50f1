"""The telemetry files under an object-store prefix, listed through Spark's own file systems.

Listing goes through Hadoop's FileSystem, so any store Spark is set up for
(``s3a://``, ``gs://``, ``abfss://``, ``hdfs://``, ``file://``) works the same.
Files are told apart by name, as opening each one remotely would cost a
request apiece: the event log's segments (``.jsonl``, ``.jsonl.gz``) and
compacted Parquet, with the rule every listing of a store follows
(``store/compacted.each_once``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from waza.store.compacted import COMPACTED, each_once, manifest_segments
from waza.store.sources import Format, Problem, Source


def list_prefix(spark: Any, url: str) -> tuple[list[Source], list[Problem], set[str]]:
    """The sources under ``url``, what was left out and why, and every file name listed."""
    hadoop = spark.sparkContext._jvm.org.apache.hadoop.fs
    root = hadoop.Path(url.rstrip("/"))
    system = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not system.exists(root):
        return [], [Problem(url, None, "no such prefix")], set()
    listing = _listing(system, root)
    jvm = spark.sparkContext._jvm

    def segments_of(manifest: str) -> list[str]:
        stream = system.open(jvm.org.apache.hadoop.fs.Path(manifest))
        try:
            return manifest_segments(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    sources: list[Source] = []
    problems: list[Problem] = []
    for name in each_once(listing, segments_of):
        leaf = name.rsplit("/", 1)[-1]
        path = Path(urlparse(name).path)
        if leaf.endswith(".parquet") and f"/{COMPACTED}/" in name:
            sources.append(Source(path, Format.PARQUET, False, listing[name], url=name))
        elif leaf.endswith((".jsonl", ".jsonl.gz")):
            sources.append(Source(path, Format.EVENTS, leaf.endswith(".gz"), listing[name], url=name))
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
