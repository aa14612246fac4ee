"""Run the benchmark scenarios: `python -m bench.run [--scenario NAME ...] [--repeat N]
[--quick] [--profile DIR]`.

Prints a table per scenario and one JSON line per scenario (prefixed `BENCH `).
With `--profile DIR`, one extra (unmeasured) run per scenario is sampled with
py-spy attached to the daemon process; the collapsed stacks go to DIR.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.budget import budget
from bench.exchange_client import exchange_client
from bench.fill_latency import fill_latency
from bench.harness import loadavg
from bench.scenarios import SCENARIOS, Options, Report
from bench.vs_ccxt import vs_ccxt

ALL = {**SCENARIOS, "budget": budget, "fill_latency": fill_latency, "vs_ccxt": vs_ccxt,
       "exchange_client": exchange_client}
"""Every scenario; budget, fill_latency, vs_ccxt and exchange_client run venue processes
of their own (see bench/budget.py)."""

def py_spy_profiler(out_dir: Path, mode: str) -> Any:
    """A profiler that attaches py-spy to the daemon for the length of a run.

    `gil` samples only the thread holding the GIL: Python CPU time, the resource the
    daemon's threads share. `wall` samples every thread, waiting ones included."""
    executable = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def profile(pid: int, label: str, seconds: float) -> Iterator[None]:
        out = out_dir / f"{label}-{mode}.txt"
        process = subprocess.Popen(
            [executable, "record", "--pid", str(pid),
             "--rate", "200", "--threads", "--format", "raw", "--output", str(out),
             "--gil" if mode == "gil" else "--idle"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)  # py-spy attaches
            yield
        finally:
            process.send_signal(signal.SIGINT)  # py-spy writes its output and exits
            process.wait(timeout=60)

    return profile


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "median" in value:
        return f"{value['median']:g} ({value['min']:g}..{value['max']:g})"
    return str(value)


def print_table(report: Report) -> None:
    print(f"\n== {report.scenario}  (median (min..max) over repeats; loadavg {loadavg()})")
    if report.skipped:
        print(f"   skipped: {report.skipped}")
        return
    width = max(len(k) for k in report.figures) if report.figures else 10
    for key, value in report.figures.items():
        print(f"   {key:<{width}}  {_cell(value)}")
    for target, met in report.targets.items():
        print(f"   target {target}: {'met' if met else 'MISSED'}")
    for note in report.notes:
        print(f"   note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=sorted(ALL),
                        help="scenario to run (repeatable; default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per run (default 3, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="short runs and small ledgers: a smoke test of the bench")
    parser.add_argument("--memory-orders", type=int, default=200_000,
                        help="orders of the memory scenario (default 200000)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also profile one run per scenario with py-spy into DIR")
    parser.add_argument("--profile-mode", choices=("gil", "wall"), default="gil",
                        help="gil: who holds the GIL (default); wall: every thread")
    args = parser.parse_args(argv)
    names = args.scenario or list(ALL)
    print(f"machine: {platform.processor() or platform.machine()}, cores: "
          f"{len(__import__('os').sched_getaffinity(0))}, python {platform.python_version()}, "
          f"loadavg {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="orderd-bench-") as workdir:
        opts = Options(workdir=Path(workdir), repeat=args.repeat, quick=args.quick,
                       memory_orders=args.memory_orders,
                       duration_s=args.duration or (1.0 if args.quick else 3.0),
                       profiler=(py_spy_profiler(args.profile, args.profile_mode)
                                 if args.profile else None))
        for name in names:
            report = ALL[name](opts)
            print_table(report)
            print("BENCH " + json.dumps(report.as_json()), flush=True)
        for label, orders in opts.profiled.items():
            print(f"profiled {label}: {orders} accepted orders; summary: python -m "
                  f"bench.profile_summary {args.profile}/{label}-{args.profile_mode}.txt "
                  f"--orders {orders}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
