"""Everything at once against one folder; every acknowledged event counts exactly once (bench/chaos.py)."""

from __future__ import annotations

import os

import pytest

from bench.chaos import chaos, check, small_disk


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting the small tmpfs that fills up needs root (CI has it)")
def test_writers_server_compaction_prune_analysis_kills_and_a_full_disk_together() -> None:
    """Threads, forked writers (one killed), HttpSink through a proxy losing answers to a server that is
    killed and restarted, compact, prune and analyze loops, and a disk that fills up: nothing lost or
    doubled that a writer acknowledged, no analysis fails or overcounts."""
    with small_disk(64) as disk:
        result = chaos(disk, seconds=6)
    assert check(result) == []
    # Analyses start as processes: on a loaded 2-core machine a few seconds hold only a couple.
    assert len(result["must"]) > 1000 and len(result["analysis_counts"]) >= 2 and result["proxy_answers"] > 10
