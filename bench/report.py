"""How long `waza report` takes and how large its page is, next to the analysis it shows.

For each size, the sample event log bench/analyze.py caches in bench/.cache is
read, side by side in one process:

  report      what `waza report` runs: the analysis, the duration
              bins, the latest failed sessions, the timelines of the listed
              sessions, the charts, and the page written to a file
  analysis    the yardstick: `waza analyze` on the same files (the
              figures the page shows, without charts or timelines)

Each line gives the best wall time of the rounds, sessions per second, the
highest peak RSS of this process while a run lasted, the ratio to the report,
and for the report the size of the page.
Usage:

  python -m bench.report [--sizes 100000,1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

from bench.analyze import event_log, measure, report_line
from waza.dashboard.build import html_report
from waza.telemetry import TelemetryAnalyzer


def run_report(folder: Path, out: Path) -> int:
    page, _ = html_report([folder])
    out.write_text(page, encoding="utf-8")
    return out.stat().st_size


def run_analysis(folder: Path, out: Path) -> int:
    return TelemetryAnalyzer().analyze_paths([folder])["total_sessions"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{'sessions':>10} {'run':<13} {'wall s':>8} {'sessions/s':>12} {'peak RSS':>10} {'vs report':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "report.html"
        for size in (int(s) for s in args.sizes.split(",")):
            folder = event_log(size)
            best: dict[str, tuple[float, int]] = {}
            size_bytes = 0
            for name, run in (("report", run_report), ("analysis", run_analysis)):
                for _ in range(args.rounds):
                    wall, peak, result = measure(functools.partial(run, folder, out))
                    if name == "report":
                        size_bytes = result
                    previous = best.get(name, (float("inf"), 0))
                    best[name] = (min(previous[0], wall), max(previous[1], peak))
            for name, (wall, peak) in best.items():
                report_line(size, name, wall, peak, best["report"][0] if name != "report" else None)
            print(f"{'':>10} page: {size_bytes / 1e6:.2f} MB", flush=True)


if __name__ == "__main__":
    main()
