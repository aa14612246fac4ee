"""The race against bare ccxt: orders a second through orderd (binance driver) against an
`orderd paper-venue` process, and through a bare ccxt client that only calls
`create_order` against the same venue at the same concurrency, in the same run.

The bare client trades on a second venue process, started the same way (same flags, a
fresh book, no request limits): the venue serves one account, and the daemon's stream
would otherwise get every bare order's events as orders it does not know, costing it
about as much CPU as the bare client itself spends, on the same two cores.

At each of 1, 16 and 64 in flight, each repeat drives, in turn: orderd (`wait=accepted`
submits of small SOL/USD market orders, which fill at once, so a reply waits for the
exchange's answer as a bare create does), then the bare client as N threads with a sync
ccxt client each, then as one async ccxt client with N tasks (bench/bare_ccxt.py). The
faster bare form is the reference of the ratio. CPU per order is the client side's: the
daemon process's for orderd (its exchange side included; the bench's client excluded),
this process's during a bare run; the venue's is in neither.

At 1 in flight each repeat also drives the raw ceiling (bench/raw_ceiling.py: a
ZeroMQ request, one fsynced SQLite commit, the reply) one request at a time, and the
driver's own sync client (the exchange workers' `build_binance`) one create at a time
against the bare client's venue. A daemon that records an order durably before it
sends it and answers over ZeroMQ does, at 1 in flight, a raw ceiling's round trip and
then a create's, one after the other. Built of these parts, with the fastest of the
three create clients, its rate is at most 1 / (1/raw + 1/create), and its ratio to the
reference at most that over the reference: `1_ratio_bound`, an estimate (from runs
timed one after the other) of the most a ratio at 1 in flight can show in that repeat.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.bare_ccxt import BareRun, SyncClients, run_tasks, timed_threads
from bench.budget import trading
from bench.driver import RunResult, drive, sol_market
from bench.exchange_client import close_sessions, driver_clients
from bench.harness import Usage, raw_ceiling, read_daemon, spent_since, wait_settled
from bench.scenarios import Options, Report, median, per_kind, spread
from protocol.client import OrderdClient
from tests.helpers import VenueProcess

LEVELS = (1, 16, 64)
WORKERS = 64
"""`[[exchanges]] concurrency`: a market order that fills at once takes one request (its
create's FULL answer settles it), so one worker per order in flight."""
GOAL = 0.8
ACCEPTED = partial(sol_market, wait="accepted")


def vs_ccxt(opts: Options) -> Report:
    """orderd against bare ccxt, orders/s and CPU per order at 1, 16 and 64 in flight."""
    report = Report("vs_ccxt")
    rounds = 1 if opts.quick else opts.repeat
    outcomes: Counter[str] = Counter()
    with ExitStack() as stack:
        (opts.workdir / "vs_ccxt-bare").mkdir(parents=True, exist_ok=True)
        bare_venue = VenueProcess(opts.workdir / "vs_ccxt-bare")
        stack.callback(bare_venue.stop)
        sync = SyncClients(bare_venue.url)
        stack.callback(sync.close)
        daemon, _ = stack.enter_context(
            trading(opts.workdir / "vs_ccxt", exchange={"concurrency": WORKERS}))
        client = daemon.client(timeout_s=60.0)
        raw_endpoint, _ = stack.enter_context(raw_ceiling(opts.workdir / "vs_ccxt-raw"))
        raw = stack.enter_context(OrderdClient(raw_endpoint, timeout_s=30))
        drivers = driver_clients(bare_venue.url, 1)
        stack.callback(close_sessions, drivers)
        assert daemon.process is not None
        for n in LEVELS:
            warm = 0.3 if opts.quick else 1.0
            drive(client, ACCEPTED, in_flight=n, duration_s=warm)
            wait_settled(client)
            runs = []
            if n == 1:
                drive(raw, sol_market, in_flight=1, duration_s=warm)
            for _ in range(rounds):
                orderd = through_orderd(client, daemon.process.pid, n, opts.duration_s)
                outcomes += orderd.run.outcomes
                threads = sync.run(n, opts.duration_s)
                tasks = run_tasks(bare_venue.url, n, opts.duration_s)
                durable = (drive(raw, sol_market, in_flight=1, duration_s=opts.duration_s)
                           if n == 1 else None)
                driver = timed_threads(drivers, opts.duration_s) if n == 1 else None
                runs.append(Repeat(orderd, threads, tasks, durable, driver))
            report.figures.update(level_figures(n, runs))
    report.notes.append(f"orderd replies: {dict(outcomes)}")
    report.notes.append(f"{rounds} repeats of {opts.duration_s:g} s per level; ccxt's "
                        "throttle off in the bare client, as in the daemon")
    for n in LEVELS:
        report.targets[f"{n} in flight: ratio >= {GOAL}"] = (
            median(report.figures[f"{n}_ratio"]) >= GOAL)
    return report


@dataclass(frozen=True)
class OrderdRun:
    """One timed run through the daemon."""

    run: RunResult
    used: Usage
    """The daemon's CPU for it."""
    by_kind: dict[str, float]
    """That CPU in µs per order, by kind of the daemon's threads (`spent_since`)."""

    @property
    def cpu_us_per_order(self) -> float:
        return self.used.cpu_s / max(1, self.run.accepted) * 1e6


@dataclass(frozen=True)
class Repeat:
    """One repeat of a level: orderd, then the bare client as threads, then as tasks."""

    orderd: OrderdRun
    threads: BareRun
    tasks: BareRun
    raw: RunResult | None = None
    """The raw ceiling one request at a time (at 1 in flight only)."""
    driver: BareRun | None = None
    """The driver's own sync client, one create at a time (at 1 in flight only)."""

    @property
    def reference_rate(self) -> float:
        return max(self.threads.rate, self.tasks.rate, 1e-9)

    @property
    def ratio(self) -> float:
        return self.orderd.run.rate / self.reference_rate

    @property
    def ratio_bound(self) -> float | None:
        """The ratio of a daemon doing a raw ceiling's round trip, then the fastest
        create measured."""
        if self.raw is None or self.raw.rate <= 0:
            return None
        create = max(self.reference_rate, self.driver.rate if self.driver else 0.0)
        return 1 / (self.reference_rate / self.raw.rate + self.reference_rate / create)


def through_orderd(client: OrderdClient, pid: int, in_flight: int,
                   duration_s: float) -> OrderdRun:
    """One timed run through the daemon, and the daemon's CPU for it."""
    before = read_daemon(client, pid)
    run = drive(client, ACCEPTED, in_flight=in_flight, duration_s=duration_s)
    wait_settled(client)  # what the daemon does after the reply counts too
    return OrderdRun(run, *spent_since(before, client, pid, run.accepted))


def level_figures(n: int, runs: list[Repeat]) -> dict[str, Any]:
    """One concurrency level's figures, min..max over its repeats; the daemon's CPU per
    order also by kind of thread (`{n}_orderd_cpu_us_OrderActor`, ...)."""
    fig: dict[str, Any] = {
        f"{n}_orderd_per_s": spread([r.orderd.run.rate for r in runs]),
        f"{n}_threads_per_s": spread([r.threads.rate for r in runs]),
        f"{n}_async_per_s": spread([r.tasks.rate for r in runs]),
        f"{n}_ratio": spread([r.ratio for r in runs]),
        f"{n}_orderd_cpu_us_per_order": spread([r.orderd.cpu_us_per_order for r in runs]),
        f"{n}_threads_cpu_us_per_order": spread([r.threads.cpu_us_per_order for r in runs]),
        f"{n}_async_cpu_us_per_order": spread([r.tasks.cpu_us_per_order for r in runs]),
        f"{n}_orderd_p50_ms": spread([r.orderd.run.percentile_ms(50) or 0.0 for r in runs]),
    }
    bounds = [b for b in (r.ratio_bound for r in runs) if b is not None]
    if bounds:
        fig[f"{n}_raw_per_s"] = spread([r.raw.rate for r in runs if r.raw is not None])
        fig[f"{n}_driver_per_s"] = spread([r.driver.rate for r in runs if r.driver is not None])
        fig[f"{n}_ratio_bound"] = spread(bounds)
    fig.update(per_kind(f"{n}_orderd_", [r.orderd.by_kind for r in runs]))
    faster = Counter("threads" if r.threads.rate >= r.tasks.rate else "async" for r in runs)
    fig[f"{n}_reference"] = dict(faster)
    errors = sum(r.threads.errors + r.tasks.errors for r in runs)
    if errors:
        fig[f"{n}_bare_errors"] = errors
    return fig
