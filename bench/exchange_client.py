"""The exchange client alone: what a create costs through the binance driver's sync
client in N threads, against the same reading of the answer on ccxt's asyncio client
with N tasks on one loop, in the same run.

This is the measurement behind "should the exchange side move to asyncio?". The sync
form is what each exchange worker runs (`build_binance`: the kept-alive `http.client`
session, the FULL answer read by `binance_answers`); the async form is
`ccxt.async_support.binance` (aiohttp) with the same answer reading, the candidate. No
daemon runs: only the client's CPU is measured, this process's over the timed window,
against an `orderd paper-venue` process with no request limits. The levels, 1, 16 and 64
in flight, come in turn; at each, every repeat runs both forms one after the other, the
sync form first on even repeats and the async one first on odd ones.
`async_cpu_ratio` is the async form's CPU per create over the sync form's in the same
repeat (below 1: async is cheaper).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import ccxt.async_support

from actors.exchange.drivers.ccxt_driver import DriverSettings, ReadsFullAnswers, build_binance
from bench.bare_ccxt import BareRun, run_tasks, timed_threads
from bench.scenarios import Options, Report, spread
from tests.helpers import KEY, SECRET, VenueProcess

LEVELS = (1, 16, 64)


class AsyncBinance(ReadsFullAnswers, ccxt.async_support.binance):  # type: ignore[misc]
    """ccxt's asyncio binance, reading a spot create's FULL answer as the driver does."""


def exchange_client(opts: Options) -> Report:
    """CPU per create and creates/s of the driver's sync client and of its async form."""
    report = Report("exchange_client")
    rounds = 1 if opts.quick else opts.repeat
    duration_s = 1.0 if opts.quick else opts.duration_s
    with ExitStack() as stack:
        (opts.workdir / "exchange_client").mkdir(parents=True, exist_ok=True)
        venue = VenueProcess(opts.workdir / "exchange_client")
        stack.callback(venue.stop)
        clients = driver_clients(venue.url, max(LEVELS))
        stack.callback(close_sessions, clients)
        for n in LEVELS:
            runs = [both_forms(clients[:n], venue.url, duration_s, sync_first=k % 2 == 0)
                    for k in range(rounds)]
            report.figures.update(level_figures(n, runs))
    report.notes.append(f"{rounds} repeats of {duration_s:g} s per level; the CPU is this "
                        "process's (the venue's is not counted)")
    return report


def driver_clients(api_url: str, count: int) -> list[Any]:
    """`count` sync clients as the exchange workers build them, markets loaded once."""
    clients = [build_binance(DriverSettings(KEY, SECRET, api_url=api_url))
               for _ in range(count)]
    clients[0].load_markets()
    for client in clients[1:]:
        client.set_markets_from_exchange(clients[0])
    return clients


def close_sessions(clients: list[Any]) -> None:
    for client in clients:
        client.session.close()


def both_forms(clients: list[Any], api_url: str, duration_s: float,
               sync_first: bool) -> tuple[BareRun, BareRun]:
    """(sync, async) runs at `len(clients)` in flight, in the order asked: neither form
    always meets the venue with the other's orders on its books."""
    if sync_first:
        sync = timed_threads(clients, duration_s)
        tasks = run_tasks(api_url, len(clients), duration_s, AsyncBinance)
    else:
        tasks = run_tasks(api_url, len(clients), duration_s, AsyncBinance)
        sync = timed_threads(clients, duration_s)
    return sync, tasks


def level_figures(n: int, runs: list[tuple[BareRun, BareRun]]) -> dict[str, Any]:
    """One level's figures, min..max over its repeats of (sync, async) runs."""
    fig: dict[str, Any] = {
        f"{n}_sync_per_s": spread([s.rate for s, _ in runs]),
        f"{n}_async_per_s": spread([a.rate for _, a in runs]),
        f"{n}_sync_cpu_us_per_create": spread([s.cpu_us_per_order for s, _ in runs]),
        f"{n}_async_cpu_us_per_create": spread([a.cpu_us_per_order for _, a in runs]),
        f"{n}_async_cpu_ratio": spread([a.cpu_us_per_order / max(s.cpu_us_per_order, 1e-9)
                                        for s, a in runs]),
    }
    errors = sum(s.errors + a.errors for s, a in runs)
    if errors:
        fig[f"{n}_errors"] = errors
    return fig
