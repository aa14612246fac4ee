"""The request-budget scenario: what orders cost in binance's request weight, through the
binance driver against an `orderd paper-venue` process that keeps binance's default
limits (6,000 weight a minute per address, 100 new orders per 10 s per account).

Four figures, each read from the venue's own count (`/_venue/usage`: the weight it
charged, its 429s and 418s):
- weight per market order that fills at once, and per limit order over its life
  (placed, resting while tracked, canceled);
- resting capacity: N limit orders held with tracking on, the weight used per minute
  and the 429s and 418s (none is the goal);
- a burst of 500 creates: how many were placed, how many the daemon answered
  `rate_limited`, and how many the venue refused (none is the goal).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.driver import Request, drive
from bench.scenarios import Options, Report
from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import KEY, SECRET, DaemonProcess, VenueProcess, toml_value

BINANCE_LIMITS = ("--weight-limit", "6000", "--orders-per-10s", "100",
                  "--orders-per-day", "200000")
SYMBOLS = (("BTC/USD", "0.01", "1000"), ("ETH/USD", "0.1", "100"), ("SOL/USD", "1", "10"))
"""Resting buys far below the market, 10 USD each, spread over three markets."""
TERMINAL = ("filled", "canceled", "rejected", "expired")


def resting(tag: str) -> Any:
    def make(i: int) -> Request:
        symbol, amount, price = SYMBOLS[i % len(SYMBOLS)]
        return "submit", {"order": {"symbol": symbol, "side": "buy", "type": "limit",
                                    "amount": amount, "price": price,
                                    "client_order_id": f"{tag}-{i}"}, "wait": "durable"}
    return make


def market(tag: str) -> Any:
    def make(i: int) -> Request:
        side = "buy" if i % 2 == 0 else "sell"
        return "submit", {"order": {"symbol": "SOL/USD", "side": side, "type": "market",
                                    "amount": "0.1", "client_order_id": f"{tag}-{i}"},
                          "wait": "accepted"}
    return make


class Venue:
    """The venue's counts for the daemon's address."""

    def __init__(self, venue: VenueProcess) -> None:
        self.venue = venue

    def totals(self) -> tuple[int, int, int]:
        """(weight charged so far, 429s, 418s) over every address."""
        usage = self.venue.usage()
        weight = sum(a.get("weight_total", 0) for a in usage["addresses"].values())
        return weight, int(usage["http_429"]), int(usage["http_418"])


@contextmanager
def trading(workdir: Path, *venue_flags: str, tracking: dict[str, Any] | None = None,
            exchange: dict[str, Any] | None = None) -> Iterator[tuple[DaemonProcess, Venue]]:
    """A venue process started with `venue_flags` (none: no request limits) and a daemon
    trading on it through the binance driver: the default tracking intervals (the tests'
    are shorter) unless `tracking` sets [tracking] keys, more keys of the exchange entry
    from `exchange`, and no reconciliation during the measurements (its weight is not an
    order's)."""
    for part in ("venue", "orderd"):
        (workdir / part).mkdir(parents=True, exist_ok=True)
    venue = VenueProcess(workdir / "venue", *venue_flags)
    daemon = DaemonProcess(workdir / "orderd")
    daemon.config.write_text(
        f'state_dir = "state"\nlog_level = "WARNING"\n'
        f'[control]\nendpoint = "{daemon.control}"\n[events]\nendpoint = "{daemon.events}"\n'
        f'[schedule]\ninterval = "weekly"\n{_table("tracking", tracking)}'
        f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
        f'api_key = "{KEY}"\nsecret = "{SECRET}"\n{_table(None, exchange)}')
    try:
        daemon.start()
        yield daemon, Venue(venue)
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            try:
                daemon.stop()
            except subprocess.TimeoutExpired:
                daemon.stop(signal.SIGKILL)
        venue.stop()


def _table(name: str | None, keys: dict[str, Any] | None) -> str:
    """TOML lines of `keys`, under a `[name]` header when named and there are keys."""
    if not keys:
        return ""
    header = f"[{name}]\n" if name else ""
    return header + "".join(f"{key} = {toml_value(value)}\n" for key, value in keys.items())


def settle(client: OrderdClient, ids: list[str], timeout_s: float = 600.0,
           ignore_missing: bool = False) -> None:
    """Wait until every order in `ids` is final (those never recorded skipped when
    `ignore_missing`: a refused submit leaves none)."""
    deadline = time.monotonic() + timeout_s
    waiting = list(ids)
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} orders not final after {timeout_s} s")
        waiting = [cid for cid in waiting if not final(client, cid, ignore_missing)]
        if waiting:
            time.sleep(0.2)


def final(client: OrderdClient, cid: str, ignore_missing: bool) -> bool:
    try:
        return client.status(client_order_id=cid)["status"] in TERMINAL
    except ProtocolError as error:
        if ignore_missing and error.code == "not_found":
            return True
        raise


def place(client: OrderdClient, make: Any, count: int, tag: str) -> list[str]:
    """`count` orders accepted, the daemon's backpressure honoured (a refused submit is
    followed by one with the next id), then every one of them final or resting."""
    run = drive(client, make, in_flight=16, count=count, retry_refused=True,
                reply_timeout_s=120.0)
    return [f"{tag}-{i}" for i in range(run.sent)]


def weight_per_order(opts: Options, daemon: DaemonProcess, venue: Venue,
                     report: Report) -> None:
    client = daemon.client(timeout_s=60.0)
    count = 10 if opts.quick else 50
    before = venue.totals()
    settle(client, place(client, market("m"), count, "m"), ignore_missing=True)
    report.figures["weight_per_market_order"] = round((venue.totals()[0] - before[0]) / count,
                                                      2)
    count, hold_s = (10, 5.0) if opts.quick else (30, 60.0)
    before = venue.totals()
    ids = place(client, resting("l"), count, "l")
    time.sleep(hold_s)  # resting and tracked: the time is what is measured
    client.cancel_all(exchange="bx")
    settle(client, ids, ignore_missing=True)
    report.figures["weight_per_limit_order"] = round((venue.totals()[0] - before[0]) / count, 2)
    report.notes.append(f"limit orders rested {hold_s:g} s each before their cancel")


def resting_capacity(opts: Options, daemon: DaemonProcess, venue: Venue, report: Report,
                     count: int, hold_s: float) -> None:
    client = daemon.client(timeout_s=60.0)
    tag = f"r{count}"
    start = venue.totals()
    began = time.monotonic()
    ids = place(client, resting(tag), count, tag)
    placing_s = time.monotonic() - began
    held = venue.totals()
    time.sleep(hold_s)
    end = venue.totals()
    per_min = (end[0] - held[0]) / hold_s * 60
    report.figures[f"resting_{count}"] = {
        "placed_in_s": round(placing_s, 1), "weight_per_min": round(per_min),
        "http_429": end[1] - start[1], "http_418": end[2] - start[2]}
    client.cancel_all(exchange="bx")
    settle(client, ids, ignore_missing=True)


def burst(daemon: DaemonProcess, venue: Venue, report: Report) -> None:
    client = daemon.client(timeout_s=60.0)
    before = venue.totals()
    run = drive(client, resting("b"), in_flight=64, count=500, reply_timeout_s=120.0)
    after = venue.totals()
    refused = run.outcomes.get("error:rate_limited", 0)
    report.figures["burst_500"] = {
        "accepted": run.accepted, "rate_limited": refused,
        "other": run.replies - run.accepted - refused,
        "venue_429": after[1] - before[1], "venue_418": after[2] - before[2]}
    report.notes.append(f"burst replies: {dict(run.outcomes)}")
    client.cancel_all(exchange="bx")
    settle(client, [f"b-{i}" for i in range(500)], ignore_missing=True)


def budget(opts: Options) -> Report:
    """Weight per order, resting capacity and a burst against binance's limits."""
    report = Report("budget")
    counts, hold_s = ((30,), 20.0) if opts.quick else ((100, 1000, 2000), 300.0)
    with trading(opts.workdir / "budget", *BINANCE_LIMITS) as (daemon, venue):
        weight_per_order(opts, daemon, venue, report)
        for count in counts:
            resting_capacity(opts, daemon, venue, report, count, hold_s)
        burst(daemon, venue, report)
        total = venue.totals()
    report.notes.append(f"venue totals: weight {total[0]}, 429s {total[1]}, 418s {total[2]}")
    fig = report.figures
    report.targets["weight per market order <= 1.2"] = fig["weight_per_market_order"] <= 1.2
    report.targets["no 429 or 418 while resting"] = all(
        fig[f"resting_{n}"]["http_429"] == 0 == fig[f"resting_{n}"]["http_418"]
        for n in counts)
    report.targets["burst: none refused by the venue"] = (
        fig["burst_500"]["venue_429"] == 0 == fig["burst_500"]["venue_418"])
    return report
