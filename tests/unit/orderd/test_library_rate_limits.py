"""BasicOrderExecutor on the binance driver at binance's limits (the HTTP paper venue
keeps them: a request before a 429's Retry-After is up earns a ban, 418)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.runtime import Clock
from daemon.wiring import ClientFactory
from orderd import BasicOrderExecutor
from protocol.errors import ProtocolError
from tests.library_support import MARKET, outcomes, paper_config, run, venue_orders
from tests.venue_support import FakeClock
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits

ORDER = {"symbol": "BTC/USD", "side": "buy", "type": "limit", "amount": "0.01",
         "price": "1000"}
ORDER_WINDOW_S = 10
WINDOW_START = 1_700_000_040.0
"""The first second of a 10 s order window (and of a minute)."""


def usage(server: PaperVenueServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/_venue/usage", timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def early_in_an_order_window() -> FakeClock:
    """A wall clock standing 1 s into a 10 s order window, for the venue's limits or the
    budget of an executor on the in-process paper venue: the orders of a test fall in one
    window, and the honest wait after a refusal is 9 s, however long the test takes. (On
    the binance driver the executor's clock signs requests: it keeps real time there, and
    a venue that decides the refusal on this clock says when it ends.)"""
    return FakeClock(WINDOW_START + 1)


WAIT_LEFT_S = ORDER_WINDOW_S - 1
"""The wait a refusal in the window of `early_in_an_order_window` leaves, in binance's
whole seconds (Retry-After) or the budget's own count of that window."""


def executor_clock(wall: FakeClock) -> Clock:
    return Clock(now=wall)


async def early_in_a_real_order_window() -> None:
    """Wait until at least 3 s of the 10 s order window are left, by real time, for a
    test whose executor's budget counts the venue's window itself."""
    left = ORDER_WINDOW_S - time.time() % ORDER_WINDOW_S
    if left < 3 + 0.05:
        await asyncio.sleep(left + 0.05)


async def refusals_around_configure(executor: Any,
                                    config: dict[str, Any]) -> list[ProtocolError]:
    """The refusals of ORDER submitted, then again after configure() with the same entry
    and new retry settings."""
    refusals = []
    for reconfigure in (False, True):
        if reconfigure:
            await executor.configure({**config, "retry": {"max_retries": 1}})
        try:
            await executor.execute_order(ORDER)
        except ProtocolError as refused:
            refusals.append(refused)
    return refusals


def held_across_configure(seen: dict[str, Any], refusals: list[ProtocolError],
                          wait_s: float | None = WAIT_LEFT_S) -> None:
    """The venue saw one 429 and no ban: nothing went out during its Retry-After, before
    configure() or after; both orders were refused `rate_limited`, the first with the
    venue's Retry-After (`wait_s`, where the test's clock makes it known), the second
    with what was left of the wait."""
    assert (seen["http_429"], seen["http_418"]) == (1, 0), (
        "an order went out during the 429's Retry-After")
    assert [r.code for r in refusals] == ["rate_limited", "rate_limited"]
    first, second = (r.retry_after_s or 0 for r in refusals)
    assert wait_s is None or first == wait_s  # the venue's Retry-After
    assert 0 < second <= first


def binance_config(tmp_path: Path, server: PaperVenueServer) -> dict[str, Any]:
    return {"state_dir": str(tmp_path), "exchange": {
        "name": "bx", "driver": "binance", "api_key": "k", "secret": "s",
        "api_url": server.url}}


def test_a_429_is_waited_out_not_retried_into_a_ban(tmp_path: Path) -> None:
    """One new order over the 10 s order count, a limit the executor read at start: it
    refuses the order itself, or, sent, binance answers 429 with Retry-After. Either way
    nothing goes out before that time (binance bans the address, 418, for 2 minutes and
    longer for each ban after) and the caller is not told to come back in 1 s. (The
    venue's 429 on a fake clock is `test_a_429_the_budget_did_not_foresee_...`; here the
    executor's budget counts on the real clock, which also signs its requests.)"""
    server = PaperVenueServer(PaperVenue(None), api_key="k", secret="s",
                              limiter=VenueLimiter(VenueLimits(orders_per_10s=1))).start()

    async def scenario() -> tuple[ProtocolError | None, float]:
        async with BasicOrderExecutor(binance_config(tmp_path, server), seed=1) as executor:
            await early_in_a_real_order_window()
            await executor.execute_order(ORDER)
            started = time.monotonic()
            try:
                await executor.execute_order(ORDER)
            except ProtocolError as refused:
                return refused, time.monotonic() - started
            return None, time.monotonic() - started

    try:
        refused, took = run(scenario)
        seen = usage(server)
    finally:
        server.stop()
    assert seen["http_418"] == 0, (
        f"banned: {seen['http_429']} 429 then {seen['http_418']} requests answered 418 "
        f"within {took:.1f} s; the caller was told {refused!r}")
    assert refused is None or (refused.retry_after_s or 0) > 1.0


def test_a_429_the_budget_did_not_foresee_holds_new_orders_until_its_end(
        tmp_path: Path) -> None:
    """The venue's order count shrinks after the executor read its limits, so the
    second order is sent and refused with 429: it is not sent again, the caller is told
    the Retry-After, and a third order within that time is refused without a request."""
    clock = early_in_an_order_window()
    limiter = VenueLimiter(VenueLimits(orders_per_10s=0), clock)  # counted, not limited
    server = PaperVenueServer(PaperVenue(None), api_key="k", secret="s",
                              limiter=limiter).start()

    async def scenario() -> list[ProtocolError]:
        refusals = []
        async with BasicOrderExecutor(binance_config(tmp_path, server), seed=1) as executor:
            await executor.execute_order(ORDER)
            limiter.configure({"orders_per_10s": 1})
            for _ in range(2):
                try:
                    await executor.execute_order(ORDER)
                except ProtocolError as refused:
                    refusals.append(refused)
        return refusals

    try:
        refusals = run(scenario)
        seen = usage(server)
    finally:
        server.stop()
    assert (seen["http_429"], seen["http_418"]) == (1, 0)
    assert [r.code for r in refusals] == ["rate_limited", "rate_limited"]
    first, second = (r.retry_after_s or 0 for r in refusals)
    assert first == WAIT_LEFT_S and 0 < second <= first  # the venue's Retry-After


def test_the_budget_section_caps_the_direct_path(tmp_path: Path) -> None:
    """`[exchanges.budget]` shares out the limits for the direct path as for the daemon:
    an order over its order count is refused, `rate_limited`, and never sent."""
    config = paper_config(tmp_path, budget={"orders_per_10s": 1})
    clock = executor_clock(early_in_an_order_window())

    async def scenario() -> ProtocolError:
        async with BasicOrderExecutor(config, seed=1, clock=clock) as executor:
            await executor.execute_order(MARKET)
            try:
                await executor.execute_order(MARKET)
            except ProtocolError as refused:
                return refused
            raise AssertionError("the second order was sent")

    refused = run(scenario)
    assert refused.code == "rate_limited" and refused.retry_after_s == WAIT_LEFT_S
    assert len(venue_orders(tmp_path)) == 1


def test_a_client_reused_across_configure_goes_through_one_budget(tmp_path: Path) -> None:
    """An embedder's factory that returns its one ccxt client: each configure() hooks it
    again, so the discarded budget of the last configuration (of the account the entry
    named before) still takes (and can refuse, with a stale op kind) every request."""
    client = ccxt.binance({"apiKey": "k", "secret": "s"})
    def config_of(api_key: str) -> dict[str, Any]:
        return {"state_dir": str(tmp_path), "exchange": {
            "name": "bx", "driver": "binance", "api_key": api_key, "secret": "s"}}
    config, other = config_of("k"), config_of("k2")

    async def scenario() -> tuple[float, float]:
        executor = BasicOrderExecutor(config, clients={"bx": lambda: client})
        await executor.configure()
        old = executor._exchanges["bx"].requests
        await executor.configure(other)
        new = executor._exchanges["bx"].requests
        client.calculate_rate_limiter_cost("private", "GET", "order", {})  # one request
        await executor.close()
        return old.counts.weight_spent, new.counts.weight_spent

    old, new = asyncio.run(scenario())
    assert new > 0
    assert old == 0, f"the discarded budget took {old} of weight too"


def test_a_429_under_way_outlives_configure(tmp_path: Path) -> None:
    """configure() again with the same entry (to take new retry settings, say) keeps the
    entry's budget: the order count's 429 still holds new orders until its Retry-After,
    and the next order is refused without a request, as before configure()."""
    held_by_a_429_across_configure(lambda server: (binance_config(tmp_path, server),) * 2)


Configs = Callable[[PaperVenueServer], tuple[dict[str, Any], dict[str, Any]]]
"""The executor's config, then the one configure() takes, for a venue."""


def held_by_a_429_across_configure(
        configs: Configs,
        clients: Callable[[PaperVenueServer], dict[str, ClientFactory]] | None = None) -> None:
    """One order placed, then the venue's order count shrinks to it, so the next is
    refused 429 (Retry-After 9 s on the venue's fake clock); configure() again with the
    second of `configs` (`clients`: the executor's own clients for the venue): see
    `held_across_configure`."""
    limiter = VenueLimiter(VenueLimits(orders_per_10s=0),  # counted, not limited
                           early_in_an_order_window())
    server = PaperVenueServer(PaperVenue(None), api_key="k", secret="s",
                              limiter=limiter).start()
    first, second = configs(server)

    async def scenario() -> list[ProtocolError]:
        async with BasicOrderExecutor(first, clients=clients and clients(server),
                                      seed=1) as executor:
            await executor.execute_order(ORDER)
            limiter.configure({"orders_per_10s": 1})
            return await refusals_around_configure(executor, second)

    try:
        refusals = run(scenario)
        seen = usage(server)
    finally:
        server.stop()
    held_across_configure(seen, refusals)


def test_an_entry_pointed_at_another_venue_gets_its_own_budget(tmp_path: Path) -> None:
    """A budget is kept only for the entry's same account and address: an entry
    configured onto another venue is not held by the first one's 429."""
    clock = early_in_an_order_window()
    limiter = VenueLimiter(VenueLimits(orders_per_10s=0), clock)
    first = PaperVenueServer(PaperVenue(None), api_key="k", secret="s",
                             limiter=limiter).start()
    second = PaperVenueServer(PaperVenue(None), api_key="k", secret="s",
                              limiter=VenueLimiter(clock=clock)).start()

    async def scenario() -> dict[str, Any]:
        async with BasicOrderExecutor(binance_config(tmp_path, first), seed=1) as executor:
            await executor.execute_order(ORDER)
            limiter.configure({"orders_per_10s": 1})
            with pytest.raises(ProtocolError, match="Too many new orders"):
                await executor.execute_order(ORDER)
            await executor.configure(binance_config(tmp_path, second))
            return await executor.execute_order(ORDER, return_order=True)

    try:
        placed = run(scenario)
        seen = usage(first)
    finally:
        first.stop()
        second.stop()
    assert seen["http_429"] == 1
    assert placed["status"] == "open"


def test_a_new_budget_section_applies_at_configure_and_the_counts_stay(
        tmp_path: Path) -> None:
    """configure() with other `[exchanges.budget]` shares takes them, and the orders
    already counted in the window still count: the window is the exchange's."""
    clock = executor_clock(early_in_an_order_window())

    async def scenario() -> list[str]:
        async with BasicOrderExecutor(paper_config(tmp_path, budget={"orders_per_10s": 1}),
                                      seed=1, clock=clock) as executor:
            await executor.execute_order(MARKET)
            await executor.configure(paper_config(tmp_path, budget={"orders_per_10s": 2}))
            return await outcomes(executor, MARKET, 2)

    assert run(scenario) == ["filled", "rate_limited"]
    assert len(venue_orders(tmp_path)) == 2
