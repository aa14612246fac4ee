"""This checkout against another, the two daemons taking turns: `python -m bench.ab
OTHER [--venue paper|binance] [--in-flight N] [--seconds S] [--rounds R]`.

This machine's speed drifts by a third within an hour, more than most changes move a
figure, so two commits benchmarked one after the other are two machines compared. Here
both daemons run side by side, each with its own venue, and take turns: a short run of
one, then of the other, the order swapped every round, so a drift reaches both alike.

OTHER is a checkout of the commit to compare with (`git worktree add ../base REV`),
run with this interpreter and its packages; its own `bench` drives it, so it needs
`bench.harness.spent_since` (commit 5c98be8 on). `--venue paper`: the in-process paper
venue and `wait=durable` submits, as `submit1` and `submit64`; `--venue binance`: the
binance driver against an `orderd paper-venue` process and `wait=accepted`, as
`vs_ccxt`. Each run sends small SOL/USD market orders with N in flight for S seconds,
then waits until every order has settled, so a run's CPU includes its exchange side.

Prints, per checkout, the median over the rounds of orders/s, the client's p50 in ms,
and the daemon's CPU µs and context switches per order; then in how many rounds this
checkout was the faster and the cheaper, and one JSON line prefixed `AB `.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

FIGURES = ("orders_per_s", "p50_ms", "cpu_us_per_order", "switches_per_order")
USAGE = "python -m bench.ab OTHER [--venue paper|binance] [--in-flight N] [--seconds S] " \
    "[--rounds R]"


def serve(venue: str, commands: TextIO, answers: TextIO) -> None:
    """In a checkout: start its daemon, then for each `N SECONDS` line read, drive it and
    answer one JSON line of figures. Imports this checkout's modules (the working
    directory), not those beside this file."""
    import tempfile
    from contextlib import ExitStack
    from functools import partial

    from bench.budget import trading
    from bench.driver import drive, sol_market
    from bench.harness import orderd, read_daemon, spent_since, wait_settled
    from protocol.client import OrderdClient

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if venue == "binance":
            daemon, _ = stack.enter_context(trading(workdir, exchange={"concurrency": 64}))
            client = daemon.client(timeout_s=60)
            make: Any = partial(sol_market, wait="accepted")
        else:
            daemon = stack.enter_context(orderd(workdir))
            client = stack.enter_context(OrderdClient(daemon.control, timeout_s=60))
            make = sol_market
        assert daemon.process is not None
        pid = daemon.process.pid
        drive(client, make, in_flight=1, duration_s=1.0)
        wait_settled(client)
        print("ready", file=answers, flush=True)
        for line in commands:
            in_flight, seconds = line.split()
            before = read_daemon(client, pid)
            run = drive(client, make, in_flight=int(in_flight), duration_s=float(seconds),
                        retry_refused=True)
            wait_settled(client)
            used, _ = spent_since(before, client, pid, run.accepted)
            orders = max(1, run.accepted)
            figures = dict(zip(FIGURES, (run.rate, run.percentile_ms(50) or 0.0,
                                         used.cpu_s / orders * 1e6, used.switches / orders),
                               strict=True))
            print(json.dumps(figures), file=answers, flush=True)


class Side:
    """One checkout's serving process."""

    def __init__(self, checkout: Path, venue: str) -> None:
        self.checkout = checkout
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", venue],
            cwd=checkout, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.runs: list[dict[str, float]] = []
        if self._answer() != "ready":
            raise RuntimeError(f"the daemon of {checkout} did not start")

    def run(self, in_flight: int, seconds: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{in_flight} {seconds}\n")
        self.process.stdin.flush()
        self.runs.append(json.loads(self._answer()))

    def medians(self) -> dict[str, float]:
        return {name: round(statistics.median(run[name] for run in self.runs), 3)
                for name in FIGURES}

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)

    def _answer(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the bench process of {self.checkout} ended")
        return line.strip()


def compare(this: Side, other: Side, rounds: int, in_flight: int, seconds: float) -> None:
    for turn in range(rounds):
        for side in (this, other) if turn % 2 == 0 else (other, this):
            side.run(in_flight, seconds)
    pairs = list(zip(this.runs, other.runs, strict=True))
    faster = sum(a["orders_per_s"] > b["orders_per_s"] for a, b in pairs)
    cheaper = sum(a["cpu_us_per_order"] < b["cpu_us_per_order"] for a, b in pairs)
    for name, side in (("this", this), ("other", other)):
        print(f"{name:6} {side.checkout}")
        for figure, value in side.medians().items():
            print(f"   {figure:20} {value:,}")
    print(f"this checkout faster in {faster} of {rounds} rounds, cheaper in CPU in {cheaper}")
    print("AB " + json.dumps({
        "in_flight": in_flight, "rounds": rounds, "seconds": seconds,
        "this": this.medians(), "other": other.medians(),
        "this_faster_rounds": faster, "this_cheaper_rounds": cheaper}))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab", usage=USAGE,
        description="This checkout against another, the two daemons taking turns "
        "(see bench/ab.py).")
    parser.add_argument("other", nargs="?", type=Path, help="a checkout of the other commit")
    parser.add_argument("--venue", choices=("paper", "binance"), default="paper")
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.5, help="of each run")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--serve", choices=("paper", "binance"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, os.getcwd())
        serve(args.serve, sys.stdin, sys.stdout)
        return
    if args.other is None or not (args.other / "bench" / "harness.py").is_file():
        parser.error("give the path of another checkout of orderd")
    if args.in_flight < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--in-flight, --seconds and --rounds must be positive")
    this = Side(Path.cwd(), args.venue)
    try:
        other = Side(args.other.resolve(), args.venue)
        try:
            compare(this, other, args.rounds, args.in_flight, args.seconds)
        finally:
            other.close()
    finally:
        this.close()


if __name__ == "__main__":
    main()
