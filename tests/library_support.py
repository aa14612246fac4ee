"""What the library's tests share: orders, a paper config and a look at the venue's book."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from actors.exchange.drivers.paper import PaperVenue
from protocol.errors import ProtocolError

T = TypeVar("T")
MARKET = {"symbol": "BTC/USD", "side": "buy", "type": "market", "amount": "0.01"}
LOW_PRICE = "1000"  # far below the venue's BTC price: a limit buy there rests


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coroutine()

    return asyncio.run(main())


def limit(**extra: Any) -> dict[str, Any]:
    """A limit buy that rests (its fields as given in `extra`)."""
    return {**MARKET, "type": "limit", "price": LOW_PRICE, **extra}


def paper_config(state_dir: Path, **exchange: Any) -> dict[str, Any]:
    return {"state_dir": str(state_dir), "exchange": {"name": "paper", **exchange},
            "retry": {"initial_delay": 0.001, "max_delay": 0.01}}


def venue_orders(state_dir: Path) -> list[dict[str, Any]]:
    """Every order the paper venue booked, read once the executor has closed it."""
    venue = PaperVenue(state_dir / "paper-paper.sqlite")
    try:
        return venue.orders("default")
    finally:
        venue.close()


QUICK_RESOLUTION = {"interval_s": 0.01, "window_s": 0.05, "absent_needed": 3}
"""Unknown creates resolved in a fraction of a second."""


async def outcomes(executor: Any, order: dict[str, Any], count: int) -> list[str]:
    """The status each of `count` submits of `order` ended in, or the code refusing it."""
    found = []
    for _ in range(count):
        try:
            found.append((await executor.execute_order(order, return_order=True))["status"])
        except ProtocolError as refused:
            found.append(refused.code)
    return found
