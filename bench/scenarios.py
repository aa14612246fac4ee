"""The scenarios of the performance issue, each against a real daemon process.

A scenario returns a `Report`: its figures (medians over repeats, with min and
max), the targets and whether they were met. Throughput scenarios drive the raw
ceiling server in the same run, alternating with the daemon, so both see the
same machine load.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.driver import RunResult, drive, orders_per_burst, sol_market
from bench.harness import (
    Usage,
    loadavg,
    orderd,
    raw_ceiling,
    read_daemon,
    rss_mb,
    spent_since,
    usage,
    wait_settled,
)
from protocol.client import OrderdClient

ALL_AGES = {"min_age_s": 0}
"""[reconciliation] that checks every trade, however young."""

Profiler = Callable[[int, str, float], AbstractContextManager[Any]]
"""(daemon pid, label, seconds) -> a context that profiles the daemon meanwhile."""


@dataclass
class Options:
    """How long and how often to measure."""

    workdir: Path
    repeat: int = 5
    duration_s: float = 3.0
    quick: bool = False
    profiler: Profiler | None = None
    memory_orders: int = 200_000
    profiled: dict[str, int] = field(default_factory=dict)
    """Orders accepted during each profiled run, by label (to cost the samples per order)."""


@dataclass
class Report:
    """One scenario's figures; `figures` values are numbers or {min, median, max}."""

    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "skipped": self.skipped, "figures": self.figures,
                "targets": self.targets, "met": all(self.targets.values()) and not self.skipped,
                "notes": self.notes, "loadavg": loadavg()}


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max, rounded for reading."""
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def median(figure: dict[str, float]) -> float:
    return figure["median"]


def per_kind(prefix: str, runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """The daemon's CPU microseconds per order by kind of thread, over runs of
    `spent_since` (a kind missing from a run spent nothing in it; one that spent
    nothing in any run is left out)."""
    kinds = sorted({kind for run in runs for kind, spent in run.items() if spent > 0})
    return {f"{prefix}cpu_us_{kind}": spread([run.get(kind, 0.0) for run in runs])
            for kind in kinds}


def per_order(prefix: str, runs: list[tuple[Usage, int]]) -> dict[str, dict[str, float]]:
    """CPU microseconds and context switches per order over runs of (usage, orders)."""
    return {f"{prefix}cpu_us_per_order": spread([u.cpu_s / max(1, n) * 1e6 for u, n in runs]),
            f"{prefix}switches_per_order": spread([u.switches / max(1, n) for u, n in runs])}


def _profiling(opts: Options, pid: int, label: str) -> AbstractContextManager[Any]:
    if opts.profiler is None:
        return nullcontext()
    return opts.profiler(pid, label, opts.duration_s)


# --- submit: throughput and latency against the raw ceiling -----------------------------

@dataclass
class SubmitRun:
    """One repeat: the daemon's run and the raw ceiling's, and what they cost."""

    run: RunResult
    raw: RunResult
    settle_s: float
    """Seconds after the last reply until no order waited for its exchange."""
    used: Usage
    """What the daemon's run cost, its exchange side included."""
    raw_used: Usage
    by_kind: dict[str, float]
    """The daemon's CPU µs per order by kind of thread (`spent_since`)."""


def _submit(opts: Options, name: str, in_flight: int) -> Iterator[SubmitRun]:
    with raw_ceiling(opts.workdir / f"{name}-raw") as (raw_endpoint, raw_pid), \
            orderd(opts.workdir / name) as daemon, \
            OrderdClient(raw_endpoint, timeout_s=30) as raw, \
            OrderdClient(daemon.control, timeout_s=30) as client:
        warm = 0.5 if opts.quick else 1.0
        drive(raw, sol_market, in_flight=in_flight, duration_s=warm)
        drive(client, sol_market, in_flight=in_flight, duration_s=warm)
        wait_settled(client)
        assert daemon.process is not None
        pid = daemon.process.pid
        for _ in range(opts.repeat):
            raw_before = usage(raw_pid)
            raw_run = drive(raw, sol_market, in_flight=in_flight, duration_s=opts.duration_s)
            raw_used = usage(raw_pid) - raw_before
            before = read_daemon(client, pid)
            # a client that honours rate_limited's retry_after_s, as clients should
            run = drive(client, sol_market, in_flight=in_flight, duration_s=opts.duration_s,
                        retry_refused=True)
            settle = wait_settled(client)
            used, by_kind = spent_since(before, client, pid, run.accepted)
            yield SubmitRun(run, raw_run, settle, used, raw_used, by_kind)
        if opts.profiler is not None:
            with _profiling(opts, pid, name):
                profiled = drive(client, sol_market, in_flight=in_flight,
                                 duration_s=opts.duration_s, retry_refused=True)
                # the exchange side of these orders runs within the sampled window too
                wait_settled(client)
            opts.profiled[name] = profiled.accepted


def submit(opts: Options, name: str, in_flight: int) -> Report:
    runs = list(_submit(opts, name, in_flight))
    report = Report(name)
    fig = report.figures
    fig["in_flight"] = in_flight
    fig["orders_per_s"] = spread([r.run.rate for r in runs])
    fig["p50_ms"] = spread([r.run.percentile_ms(50) or 0 for r in runs])
    fig["p99_ms"] = spread([r.run.percentile_ms(99) or 0 for r in runs])
    fig["raw_per_s"] = spread([r.raw.rate for r in runs])
    fig["raw_p50_ms"] = spread([r.raw.percentile_ms(50) or 0 for r in runs])
    fig["raw_p99_ms"] = spread([r.raw.percentile_ms(99) or 0 for r in runs])
    fig["ratio"] = spread([r.run.rate / r.raw.rate for r in runs])
    # durable replies run ahead of the exchange: this counts until every order is settled
    fig["settled_per_s"] = spread([r.run.accepted / (r.run.elapsed_s + r.settle_s)
                                   for r in runs])
    # until the exchange's backlog filled up and submits were refused (if it did)
    bursts = [r.run.burst for r in runs if r.run.burst is not None]
    if bursts:
        fig["burst_orders"] = spread([float(n) for n, _ in bursts])
        fig["burst_per_s"] = spread([n / s for n, s in bursts])
    fig.update(per_order("", [(r.used, r.run.accepted) for r in runs]))
    fig.update(per_order("raw_", [(r.raw_used, r.raw.accepted) for r in runs]))
    fig.update(per_kind("", [r.by_kind for r in runs]))
    report.notes.append(f"replies: {dict(sum((r.run.outcomes for r in runs), Counter()))}")
    if in_flight > 1:
        report.targets["orders_per_s >= 8000"] = median(fig["orders_per_s"]) >= 8000
        report.targets["ratio >= 0.25"] = median(fig["ratio"]) >= 0.25
        report.targets["p99_ms <= 15"] = median(fig["p99_ms"]) <= 15
    else:
        report.targets["p50_ms <= 1"] = median(fig["p50_ms"]) <= 1
        report.targets["p99_ms <= 3"] = median(fig["p99_ms"]) <= 3
    return report


def submit64(opts: Options) -> Report:
    """Durable submits, 64 in flight, paper venue without latency."""
    return submit(opts, "submit64", 64)


def submit1(opts: Options) -> Report:
    """Durable submits, one at a time."""
    return submit(opts, "submit1", 1)


# --- venue latency -------------------------------------------------------------------------

LATENCY_MS = 50
RATE_LIMIT_PER_S: float | None = None
"""The configured exchange rate limit (`[[exchanges]] rate_limit_per_s`): none."""
WORKERS = 192
"""`[[exchanges]] concurrency`: a market order now takes one request (its create, whose
full answer settles it), but the scenario keeps the three workers per order in flight
it was first measured with, so its figures stay comparable across versions."""


def latency50(opts: Options) -> Report:
    """wait=accepted submits, 64 in flight, against a venue answering in 50 ms."""
    report = Report("latency50")
    ceiling = min(64 / (LATENCY_MS / 1000), RATE_LIMIT_PER_S or math.inf)
    accepted = partial(sol_market, wait="accepted")
    runs: list[RunResult] = []
    used: list[tuple[Usage, int]] = []
    by_kind: list[dict[str, float]] = []
    with orderd(opts.workdir / "latency50", orders={"accept_timeout_s": 30.0},
                faults={"latency_ms": LATENCY_MS}, exchange={"concurrency": WORKERS}
                ) as daemon, \
            OrderdClient(daemon.control, timeout_s=60) as client:
        assert daemon.process is not None
        for _ in range(opts.repeat):
            before = read_daemon(client, daemon.process.pid)
            runs.append(drive(client, accepted, in_flight=64, duration_s=opts.duration_s))
            wait_settled(client)
            spent, kinds = spent_since(before, client, daemon.process.pid, runs[-1].accepted)
            used.append((spent, runs[-1].accepted))
            by_kind.append(kinds)
        if opts.profiler is not None:
            with _profiling(opts, daemon.process.pid, "latency50"):
                profiled = drive(client, accepted, in_flight=64, duration_s=opts.duration_s)
            opts.profiled["latency50"] = profiled.accepted
    fig = report.figures
    fig["orders_per_s"] = spread([r.rate for r in runs])
    fig["p50_ms"] = spread([r.percentile_ms(50) or 0 for r in runs])
    fig["p99_ms"] = spread([r.percentile_ms(99) or 0 for r in runs])
    fig["ceiling_per_s"] = ceiling
    fig["ratio"] = spread([r.rate / ceiling for r in runs])
    fig["orders_per_burst"] = spread([orders_per_burst(r.sent_at_s) for r in runs])
    fig.update(per_order("", used))
    fig.update(per_kind("", by_kind))
    report.notes.append(f"replies: {dict(sum((r.outcomes for r in runs), Counter()))}")
    report.notes.append(f"ceiling = 64 / 0.05 s (no rate limit configured); "
                        f"{WORKERS} exchange workers")
    report.targets["ratio >= 0.8"] = median(fig["ratio"]) >= 0.8
    return report


# --- circuit open ------------------------------------------------------------------------------

OUTAGE_AFTER_S = 2.0


def circuit_open(opts: Options) -> Report:
    """Submit latency while the venue is down and the breaker should be open."""
    report = Report("circuit_open")
    accepted = partial(sol_market, wait="accepted")
    runs: list[RunResult] = []
    with orderd(opts.workdir / "circuit_open", orders={"accept_timeout_s": 1.0},
                faults={"outage_after_s": OUTAGE_AFTER_S, "outage_duration_s": 3600.0}
                ) as daemon, OrderdClient(daemon.control, timeout_s=30) as client:
        while client.ping()["uptime_s"] < OUTAGE_AFTER_S + 0.2:
            time.sleep(0.05)
        # failures the breaker counts before it opens
        trip = drive(client, accepted, in_flight=64, duration_s=1.0)
        report.notes.append(f"while tripping: {dict(trip.outcomes)}")
        for _ in range(opts.repeat):
            runs.append(drive(client, accepted, in_flight=1, duration_s=opts.duration_s))
    outcomes = sum((r.outcomes for r in runs), Counter())
    report.notes.append(f"replies: {dict(outcomes)}")
    fig = report.figures
    fig["replies"] = sum(r.replies for r in runs)
    for outcome in sorted(outcomes):
        p99 = [r.percentile_ms(99, outcome) for r in runs]
        fig[f"{outcome} p50_ms"] = spread(
            [v for v in (r.percentile_ms(50, outcome) for r in runs) if v is not None])
        fig[f"{outcome} p99_ms"] = spread([v for v in p99 if v is not None])
    key = "error:circuit_open p99_ms"
    report.targets["circuit_open p99_ms <= 1"] = key in fig and median(fig[key]) <= 1
    if key not in fig:
        report.notes.append("no circuit_open reply: the daemon has no circuit breaker yet")
    return report


# --- reconciliation ------------------------------------------------------------------------------

def reconcile(opts: Options) -> Report:
    """Time of one full `reconcile` against ledgers of 10,000 and 100,000 orders.

    Every run must do the same work per order: `min_age_s = 0`, so no trade is
    too young to check, and each repeat starts from a copy of the seeded state
    (a run moves the trades cursor forward, so a second run on the same ledger
    would check nothing)."""
    report = Report("reconcile")
    sizes = (1_000, 10_000) if opts.quick else (10_000, 100_000)
    times: dict[int, dict[str, float]] = {}
    for size in sizes:
        seed = opts.workdir / f"reconcile-{size}"
        with orderd(seed, reconciliation=ALL_AGES) as daemon, \
                OrderdClient(daemon.control, timeout_s=600) as client:
            probe = client.request("reconcile")  # the ledger is empty: it moves no cursor
            if (probe.get("error") or {}).get("code") == "unknown_command":
                report.skipped = "the daemon does not serve `reconcile` yet (unknown_command)"
                return report
            drive(client, sol_market, in_flight=64, count=size, retry_refused=True)
            wait_settled(client, timeout_s=600)
        runs = [_reconcile_once(opts, seed, i) for i in range(opts.repeat)]
        if opts.profiler is not None:  # one more, not timed: sampling slows the process
            _reconcile_once(opts, seed, opts.repeat, f"reconcile{size}")
        seconds = [s for s, _ in runs]
        checked = [float(n) for _, n in runs]
        times[size] = spread(seconds)
        report.figures[f"{size} orders s"] = times[size]
        report.figures[f"{size} orders trades checked"] = spread(checked)
    small, big = sizes
    exponent = math.log(median(times[big]) / median(times[small])) / math.log(big / small)
    report.figures["growth_exponent"] = round(exponent, 3)
    report.targets["linear (exponent <= 1.2)"] = exponent <= 1.2
    if not opts.quick:
        report.targets["100000 orders <= 10 s"] = median(times[big]) <= 10
    return report


def _reconcile_once(opts: Options, seed: Path, i: int,
                    profile: str | None = None) -> tuple[float, int]:
    """One full reconcile on a copy of the seeded state: its seconds and trades checked."""
    workdir = opts.workdir / f"{seed.name}-{i}"
    shutil.copytree(seed, workdir)
    with orderd(workdir, reconciliation=ALL_AGES) as daemon, \
            OrderdClient(daemon.control, timeout_s=600) as client:
        assert daemon.process is not None
        profiling = nullcontext() if profile is None else _profiling(
            opts, daemon.process.pid, profile)
        with profiling:
            begin = time.perf_counter()
            counts = client.reconcile()["report"]["exchanges"]["paper"]["counts"]
            seconds = time.perf_counter() - begin
    shutil.rmtree(workdir)
    return seconds, int(counts["trades"])


# --- memory ---------------------------------------------------------------------------------

def memory(opts: Options) -> Report:
    """Daemon RSS while 200,000 orders go through (sampled 20 times)."""
    report = Report("memory")
    total = 20_000 if opts.quick else opts.memory_orders
    every = max(1, total // 20)
    samples: list[tuple[int, float]] = []
    with orderd(opts.workdir / "memory") as daemon, \
            OrderdClient(daemon.control, timeout_s=60) as client:
        assert daemon.process is not None
        pid = daemon.process.pid
        samples.append((0, rss_mb(pid)))
        run = drive(client, sol_market, in_flight=64, count=total, progress_every=every,
                    progress=lambda n: samples.append((n, rss_mb(pid))), retry_refused=True)
        wait_settled(client, timeout_s=600)
        samples.append((total, rss_mb(pid)))
    fig = report.figures
    fig["orders"] = total
    fig["orders_per_s"] = round(run.rate, 1)
    report.notes.append(f"replies: {dict(run.outcomes)}")
    fig["rss_mb_start"] = round(samples[0][1], 1)
    fig["rss_mb_end"] = round(samples[-1][1], 1)
    fig["rss_mb_samples"] = [[n, round(mb, 1)] for n, mb in samples]
    # growth after the first quarter, so start-up allocation does not count
    first = next(s for s in samples if s[0] >= total // 4)
    slope = (samples[-1][1] - first[1]) / (samples[-1][0] - first[0]) * 100_000
    fig["mb_per_100k_orders"] = round(slope, 2)
    report.targets["rss_mb_end <= 200"] = fig["rss_mb_end"] <= 200
    report.targets["not growing (<= 5 MB per 100k)"] = slope <= 5
    report.notes.append("run once whatever --repeat says: it is one long run")
    return report


SCENARIOS: dict[str, Callable[[Options], Report]] = {
    "submit64": submit64, "submit1": submit1, "latency50": latency50,
    "circuit_open": circuit_open, "reconcile": reconcile, "memory": memory,
}
