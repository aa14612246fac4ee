"""A bare client: real ccxt doing nothing but `create_order`, against a venue's REST API.

The reference of the vs_ccxt scenario, in two forms at N in flight: N threads, each with
its own sync `ccxt.binance` (ccxt's sync clients are not thread-safe), and one
`ccxt.async_support.binance` with N tasks on one event loop. Each keeps creating small
SOL/USD market orders (buys and sells in turn) until the run's time is up; nothing is
recorded, confirmed or retried. ccxt's own throttle is off, as the daemon has it: the
venue keeps no request limits here, so it would only slow the reference down.

The CPU counted is this process's (all threads), over the timed window only: building
clients and loading markets come before it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support

from tests.helpers import KEY, SECRET

SYMBOL, AMOUNT = "SOL/USD", 0.1
WARM_ORDERS = 2
"""Orders each thread or task sends before the timed window (connections made)."""


@dataclass(frozen=True)
class BareRun:
    """One timed run of the bare client."""

    orders: int
    errors: int
    elapsed_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.orders / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_us_per_order(self) -> float:
        return self.cpu_s / max(1, self.orders) * 1e6


def config() -> dict[str, Any]:
    return {"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
            "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                        "fetchCurrencies": False, "fetchMargins": False}}


def at_venue(client: Any, api_url: str) -> Any:
    """Every REST host of a ccxt binance client moved to the venue (paths kept)."""
    base = api_url.rstrip("/")
    for name, real in list(client.urls["api"].items()):
        if isinstance(real, str):
            client.urls["api"][name] = base + urlsplit(real).path
    return client


class SyncClients:
    """Sync ccxt clients at the venue, one per thread, made (and their markets loaded)
    as a run first needs them and kept for the next runs."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.clients: list[Any] = []

    def run(self, threads: int, duration_s: float) -> BareRun:
        while len(self.clients) < threads:
            client = at_venue(ccxt.binance(config()), self.api_url)
            client.load_markets()
            self.clients.append(client)
        return timed_threads(self.clients[:threads], duration_s)

    def close(self) -> None:
        for client in self.clients:
            client.session.close()
        self.clients.clear()


def timed_threads(clients: list[Any], duration_s: float) -> BareRun:
    """A thread per client creating orders for `duration_s`, after each has warmed up."""
    counts = [[0, 0] for _ in clients]  # per thread: orders, errors
    start = threading.Barrier(len(clients) + 1)
    deadline = [math.inf]  # set once every thread is ready

    def work(i: int, client: Any) -> None:
        for k in range(WARM_ORDERS):
            _create_sync(client, k)
        start.wait()
        k = 0
        while time.perf_counter() < deadline[0]:
            counts[i][0 if _create_sync(client, k) else 1] += 1
            k += 1

    threads = [threading.Thread(target=work, args=(i, c), daemon=True)
               for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    start.wait()  # every thread has warmed up
    cpu, begin = time.process_time(), time.perf_counter()
    deadline[0] = begin + duration_s
    for thread in threads:
        thread.join()
    return BareRun(sum(c[0] for c in counts), sum(c[1] for c in counts),
                   time.perf_counter() - begin, time.process_time() - cpu)


def _create_sync(client: Any, k: int) -> bool:
    try:
        client.create_order(SYMBOL, "market", "buy" if k % 2 == 0 else "sell", AMOUNT)
        return True
    except ccxt.BaseError:
        return False


def run_tasks(api_url: str, tasks: int, duration_s: float,
              client_class: Any = ccxt.async_support.binance) -> BareRun:
    """One async ccxt client (of `client_class`) with `tasks` tasks creating orders (a
    fresh event loop)."""
    return asyncio.run(_timed_tasks(client_class, api_url, tasks, duration_s))


async def _timed_tasks(client_class: Any, api_url: str, tasks: int,
                       duration_s: float) -> BareRun:
    client = at_venue(client_class(config()), api_url)
    try:
        await client.load_markets()
        await asyncio.gather(*(_create_async(client, k) for k in range(tasks * WARM_ORDERS)))
        counts = [0, 0]  # orders, errors
        cpu, begin = time.process_time(), time.perf_counter()
        deadline = begin + duration_s

        async def work() -> None:
            k = 0
            while time.perf_counter() < deadline:
                counts[0 if await _create_async(client, k) else 1] += 1
                k += 1

        await asyncio.gather(*(work() for _ in range(tasks)))
        return BareRun(counts[0], counts[1], time.perf_counter() - begin,
                       time.process_time() - cpu)
    finally:
        await client.close()


async def _create_async(client: Any, k: int) -> bool:
    try:
        await client.create_order(SYMBOL, "market", "buy" if k % 2 == 0 else "sell", AMOUNT)
        return True
    except ccxt.BaseError:
        return False
