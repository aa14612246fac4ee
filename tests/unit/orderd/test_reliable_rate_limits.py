"""ReliableOrderExecutor's request budget across configure(): each configure() builds the
actors anew, but a 429 under way at the exchange is not forgotten (binance bans an
address that sends before a Retry-After is up, for longer each time) and the orders
counted in the exchange's windows still count."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from orderd import ReliableOrderExecutor
from protocol.errors import ProtocolError
from tests.library_support import (
    MARKET,
    QUICK_RESOLUTION,
    outcomes,
    paper_config,
    run,
    venue_orders,
)
from tests.unit.orderd.test_library_rate_limits import (
    ORDER,
    binance_config,
    held_across_configure,
    refusals_around_configure,
    usage,
)
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits

QUICK_LANDING = {"recv_window_ms": 1000, "timeout_ms": 2000}
"""A create can land until 3 s after it was signed: the order a 429 left pending is
proven absent, and recovery ends, soon after configure()."""


def reliable_config(tmp_path: Path, server: PaperVenueServer) -> dict[str, Any]:
    config = binance_config(tmp_path, server)
    return {**config, "exchange": {**config["exchange"], **QUICK_LANDING},
            "tracking": {"stream": False},  # only REST, counted by the venue
            "resolution": {**QUICK_RESOLUTION, "clock_skew_s": 0}}


async def refused_by_venue(executor: ReliableOrderExecutor, cid: str) -> dict[str, Any]:
    """The order once the exchange refused its create for the order count."""
    for _ in range(1000):
        order = await executor.get_order_status(cid)
        if (order["last_error"] or {}).get("code") == "rate_limited":
            return order
        await asyncio.sleep(0.01)
    raise AssertionError(f"{cid} was not refused: {order}")


def test_an_order_count_429_under_way_outlives_configure(tmp_path: Path) -> None:
    """The account's order count for the day is full (another program's orders): the
    venue answers the next create 429, Retry-After until the day ends. configure() again
    (to take new retry settings, say) keeps the account's budget: the order the 429 left
    pending is not sent again in that time, and a new order is refused `rate_limited`
    with what is left of the wait, without a request, as before configure()."""
    limiter = VenueLimiter(VenueLimits(orders_per_day=0))  # counted, not limited
    server = PaperVenueServer(PaperVenue(None), api_key="k", secret="s",
                              limiter=limiter).start()
    config = reliable_config(tmp_path, server)

    async def scenario() -> tuple[list[ProtocolError], dict[str, Any]]:
        async with ReliableOrderExecutor(config) as executor:
            await executor.execute_order(ORDER)
            limiter.configure({"orders_per_day": 1})
            await executor.place({**ORDER, "client_order_id": "held"}, wait="durable")
            await refused_by_venue(executor, "held")
            refusals = await refusals_around_configure(executor, config)
            held = await executor.get_order_status("held")
        return refusals, held

    try:
        refusals, held = run(scenario)
        seen = usage(server)
    finally:
        server.stop()
    held_across_configure(seen, refusals, wait_s=None)  # the rest of the day, real time
    assert held["status"] == "pending_submit"


def test_a_new_budget_section_applies_at_configure_and_the_counts_stay(
        tmp_path: Path) -> None:
    """configure() with other `[exchanges.budget]` shares takes them, and the orders
    already counted in the day still count: the day is the exchange's."""
    async def scenario() -> list[str]:
        async with ReliableOrderExecutor(paper_config(
                tmp_path, budget={"orders_per_day": 1})) as executor:
            await executor.execute_order(MARKET)
            await executor.configure(paper_config(tmp_path, budget={"orders_per_day": 2}))
            return await outcomes(executor, MARKET, 2)

    assert run(scenario) == ["filled", "rate_limited"]
    assert len(venue_orders(tmp_path)) == 2
