"""How fast `waza convert` picks and writes tasks from a large store, next to the in-memory path.

For each size, the sample event log bench/analyze.py caches in bench/.cache is
converted with ``--select interesting --limit 200`` (the default of the
command otherwise), side by side in one process:

  waza        what `waza convert` runs: DuckDB ranks the sessions, Python reads
              the ranked rows only as far as the limit, and only the picked
              sessions are read whole (tasks/catalog.py)
  in-memory   every session loaded by the Python reader, then ranked, as
              `waza convert` did before (and still does for exports, session
              lists and OTLP files), up to --python-max sessions

Each line gives the best wall time of the rounds, sessions per second, the
highest peak RSS of this process while a run lasted, and the ratio to waza;
waza's rounds run first, as memory the in-memory path held stays with the
process.
Usage:

  python -m bench.convert [--sizes 100000,1000000] [--python-max 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
from pathlib import Path

from bench.analyze import event_log, measure, report_line
from waza.capture.redact import Redactor
from waza.store.reader import load_sessions
from waza.tasks.catalog import pick_sessions
from waza.tasks.files import write_suite
from waza.tasks.from_session import session_task
from waza.tasks.selection import select

LIMIT = 200


def run_waza(folder: Path, out: Path) -> int:
    selection, _ = pick_sessions(
        [folder], skill=None, outcome=None, since=None, mode="interesting", limit=LIMIT, seed=0
    )
    return _write(selection.picked, out)


def run_in_memory(folder: Path, out: Path) -> int:
    sessions, _ = load_sessions([folder])
    selection = select([s for s in sessions if s.completed], "interesting", LIMIT, 0)
    return _write(selection.picked, out)


def _write(picked: list, out: Path) -> int:
    shutil.rmtree(out, ignore_errors=True)
    redactor = Redactor()
    write_suite([session_task(pick.session, redactor) for pick in picked], out, name="bench", force=True)
    return len(picked)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--python-max", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{'sessions':>10} {'run':<13} {'wall s':>8} {'sessions/s':>12} {'peak RSS':>10} {'vs waza':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes.split(",")):
            folder = event_log(size)
            runs = {"waza": run_waza}
            if size <= args.python_max:
                runs["in-memory"] = run_in_memory
            best: dict[str, tuple[float, int]] = {}
            picks: dict[str, int] = {}
            # waza's rounds first: memory the in-memory path held stays with the process afterwards.
            for name, run in runs.items():
                for _ in range(args.rounds):
                    action = functools.partial(run, folder, Path(scratch) / "out")
                    wall, peak, picked = measure(action)
                    picks[name] = picked
                    previous = best.get(name, (float("inf"), 0))
                    best[name] = (min(previous[0], wall), max(previous[1], peak))
            for name, (wall, peak) in best.items():
                report_line(size, name, wall, peak, best["waza"][0] if name != "waza" else None)
            # The sample's prompts repeat a few templates: near-duplicates leave few tasks, and the
            # whole ranking is read, the slowest case.
            print(f"{'':>10} tasks written: " + ", ".join(f"{n} {c}" for n, c in picks.items()), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
