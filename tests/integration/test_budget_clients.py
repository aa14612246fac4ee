"""A worker's client through its request budget: real ccxt.binance against the HTTP
paper venue (weights from ccxt's cost tables, the venue's headers and limits), and
the in-process paper client (the venue's own weight table)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ccxt.base.errors import DDoSProtection

from actors.circuit.breakers import CircuitBoard
from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.drivers.paper import PaperExchange
from actors.exchange.failure import CallFailed
from actors.exchange.limits import BINANCE_LIMITS, BudgetConfig, Limits
from actors.exchange.link import Attempts, Caller, ExchangeLink, header_retry_after
from actors.exchange.metering import Meter, attach
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.runtime import Clock
from actors.supervisor import Registry
from tests.helpers import KEY, SECRET
from tests.integration.test_venue_limits import BTC, MINUTE, serve, venue_call
from tests.venue_support import FakeClock
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MINUTE + 1)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[PaperVenueServer]:
    running = serve(clock, weight_per_minute=200, orders_per_10s=3)
    yield running
    running.stop()


def metered(budget: RequestBudget, url: str) -> tuple[Any, Callable[..., Any]]:
    """A binance client whose requests go through `budget`, and how to call it as a
    worker does (the kind of call first, the unanswered settled after)."""
    client = build_binance(DriverSettings(KEY, SECRET, url))
    meter = Meter(budget)
    assert attach(client, meter)

    def call(op: str, request: Callable[[], Any]) -> Any:
        meter.start(op)
        try:
            return request()
        finally:
            meter.finish()

    return client, call


def venue_weight(server: PaperVenueServer) -> int:
    used: int = venue_call(server.url, "/_venue/usage")[1]["addresses"]["127.0.0.1"]["weight_1m"]
    return used


def test_each_request_costs_its_endpoints_weight_and_the_venues_count_is_ours(
        server: PaperVenueServer, clock: FakeClock) -> None:
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS, clock)
    client, call = metered(budget, server.url)
    call("read", client.load_markets)
    assert budget.limits == Limits(200, 60, ((10, 3), (86400, 200_000)))  # its exchangeInfo
    order = call("create", lambda: client.create_order(BTC, "limit", "buy", 0.01, 1000))
    call("fetch", lambda: client.fetch_order(order["id"], BTC))
    call("read", lambda: client.fetch_open_orders(BTC))
    call("read", lambda: client.fetch_my_trades(BTC))
    call("cancel", lambda: client.cancel_order(order["id"], BTC))
    assert budget.counts.requests == {
        "GET /api/v3/exchangeInfo": 1, "POST /api/v3/order": 1, "GET /api/v3/order": 1,
        "GET /api/v3/openOrders": 1, "GET /api/v3/myTrades": 1, "DELETE /api/v3/order": 1}
    assert budget.counts.weight_spent == 20 + 1 + 4 + 6 + 20 + 1
    assert budget.view()["weight_used"] == venue_weight(server) == 52
    assert budget.view()["orders_10s"] == 1
    # another process on the address spends weight: our next answer tells us
    build_binance(DriverSettings(KEY, SECRET, server.url)).fetch_balance()  # markets too: 40
    call("read", lambda: client.fetch_open_orders(BTC))
    assert budget.view()["weight_used"] == venue_weight(server) == 52 + 40 + 6


def test_a_429_pauses_the_client_and_nothing_goes_out_until_retry_after(
        server: PaperVenueServer, clock: FakeClock) -> None:
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS, clock)
    client, call = metered(budget, server.url)
    call("read", client.load_markets)  # 20
    # the venue's limit falls below what is used: our next request is over it
    venue_call(server.url, "/_venue/limits", {"weight_per_minute": 21})
    with pytest.raises(DDoSProtection, match=" 429 "):
        call("read", client.fetch_balance)
    assert budget.paused_for() == pytest.approx(59)  # Retry-After: the minute's end
    clock.advance(58)
    for op, request in (("create", lambda: client.create_order(BTC, "market", "buy", 0.01)),
                        ("fetch", lambda: client.fetch_order("1", BTC))):
        with pytest.raises(NotSent) as held:
            call(op, request)
        assert held.value.retry_after_s == pytest.approx(1)
    usage = venue_call(server.url, "/_venue/usage")[1]
    assert (usage["http_429"], usage["http_418"]) == (1, 0)  # the held ones never left
    clock.advance(1)
    venue_call(server.url, "/_venue/limits", {"weight_per_minute": 200})
    call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))
    assert budget.view()["http_429"] == 1
    assert venue_call(server.url, "/_venue/usage")[1]["http_418"] == 0


def test_a_new_order_beyond_the_order_count_is_not_sent(
        server: PaperVenueServer, clock: FakeClock) -> None:
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS, clock)
    client, call = metered(budget, server.url)
    call("read", client.load_markets)
    for _ in range(3):  # resting: binance's count is of unfilled orders
        call("create", lambda: client.create_order(BTC, "limit", "buy", 0.01, 1000))
    with pytest.raises(NotSent) as held:
        call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))
    assert (held.value.reason, held.value.retry_after_s) == ("order_count", 9)
    usage = venue_call(server.url, "/_venue/usage")[1]
    assert usage["http_429"] == 0 and usage["accounts"]["default"]["orders_10s"] == 3


def test_orders_that_fill_at_once_are_not_held_resting_ones_fill_the_count(
        server: PaperVenueServer, clock: FakeClock) -> None:
    """binance's order count is of unfilled orders: a market order's fill gives its place
    back. The budget follows the venue's count down, so creates that fill at once go on
    beyond 3 in the 10 s and none is held while the venue takes them; orders that rest
    fill the count, and the budget holds the next one before the venue must refuse it."""
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS, clock)
    client, call = metered(budget, server.url)
    call("read", client.load_markets)
    for i in range(12):
        try:
            call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))
        except NotSent as not_sent:
            pytest.fail(f"market order {i + 1} held {not_sent.retry_after_s:g} s: {not_sent}; the "
                        f"venue counts {venue_call(server.url, '/_venue/usage')[1]['accounts']}")
    assert budget.view()["orders_10s"] == 1  # the last one's answer: before its own fill
    for _ in range(3):
        call("create", lambda: client.create_order(BTC, "limit", "buy", 0.01, 1000))
    with pytest.raises(NotSent) as held:
        call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))
    assert (held.value.reason, held.value.retry_after_s) == ("order_count", 9)
    usage = venue_call(server.url, "/_venue/usage")[1]
    assert usage["http_429"] == 0 and usage["accounts"]["default"]["orders_10s"] == 3


def test_a_create_overtaken_on_its_way_still_counts(
        server: PaperVenueServer, clock: FakeClock) -> None:
    """Two workers share the budget. Worker A's create was taken but is slow to go out
    (its thread not scheduled, a slow connection); worker B's creates overtake it, and
    their answers' counts do not have A's in them. The budget still counts A's, so it
    holds B's third and the venue, which gets A's last, never refuses it."""
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS, clock)
    slow, call_slow = metered(budget, server.url)
    fast, call_fast = metered(budget, server.url)
    call_slow("read", slow.load_markets)
    call_fast("read", fast.load_markets)
    held: list[NotSent] = []
    send = slow.fetch

    def overtaken(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        for _ in range(3):  # while A's create is on its way
            try:
                call_fast("create", lambda: fast.create_order(BTC, "limit", "buy", 0.01, 1000))
            except NotSent as not_sent:
                held.append(not_sent)
        return send(url, method, headers, body)

    slow.fetch = overtaken
    call_slow("create", lambda: slow.create_order(BTC, "limit", "buy", 0.01, 1000))
    usage = venue_call(server.url, "/_venue/usage")[1]
    assert usage["http_429"] == 0 and usage["accounts"]["default"]["orders_10s"] == 3
    assert [h.reason for h in held] == ["order_count"]
    assert budget.view()["orders_10s"] == 3


def test_an_order_count_429_holds_new_orders_only_and_is_not_sent_again(
        server: PaperVenueServer, clock: FakeClock) -> None:
    """The venue's order count falls below what the budget knows (another process on
    the account placed orders): the create sent is refused, -1015 with Retry-After.
    A worker does not send it again and new orders wait for the window's end; the
    lookup and the cancel of the order already placed go out at once, and earn no ban."""
    budget = RequestBudget("bx", BudgetConfig(), BINANCE_LIMITS, clock)
    client = build_binance(DriverSettings(KEY, SECRET, server.url))
    meter = Meter(budget)
    assert attach(client, meter)
    link = ExchangeLink("bx", RetryPolicy(), RetryBudget(20, 2, clock),
                        RateLimiter(None, clock, clock.advance), CircuitBoard(["bx"], clock),
                        Clock(clock, clock, clock.advance), requests=budget)
    caller = Caller(link, Registry(), 0, header_retry_after(client), meter)

    def call(op: str, request: Callable[[], Any]) -> Any:
        return caller.call(op, request, Attempts())

    call("read", client.load_markets)
    order = call("create", lambda: client.create_order(BTC, "limit", "buy", 0.01, 1000))
    venue_call(server.url, "/_venue/limits", {"orders_per_10s": 1})
    with pytest.raises(CallFailed) as refused:
        call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))
    assert (refused.value.sends, refused.value.retry_after_s) == (1, 9)
    assert budget.paused_for() is None and budget.paused_for(new_orders=True) == 9
    with pytest.raises(CallFailed) as held:
        call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))
    assert held.value.sends == 0 and held.value.retry_after_s == 9
    call("fetch", lambda: client.fetch_order(order["id"], BTC))
    call("cancel", lambda: client.cancel_order(order["id"], BTC))
    usage = venue_call(server.url, "/_venue/usage")[1]
    assert (usage["http_429"], usage["http_418"]) == (1, 0)
    clock.advance(9)
    call("create", lambda: client.create_order(BTC, "market", "buy", 0.01))


def test_the_paper_client_charges_the_venues_weights_and_follows_its_headers(
        clock: FakeClock) -> None:
    venue = PaperVenue(None)
    limiter = VenueLimiter(VenueLimits(weight_per_minute=100), clock)
    budget = RequestBudget("paper", BudgetConfig(), Limits(100, 60, ()), clock)
    client = PaperExchange(venue, clock=clock, limiter=limiter)
    other = PaperExchange(venue, clock=clock, limiter=limiter)
    meter = Meter(budget)
    assert attach(client, meter)
    for op, request in (("read", client.load_markets),
                        ("create", lambda: client.create_order(BTC, "limit", "buy", 0.01, 1000)),
                        ("read", lambda: client.fetch_open_orders(BTC))):
        meter.start(op)
        request()
        meter.finish()
    assert budget.counts.weight_spent == 20 + 1 + 6
    other.fetch_balance()  # 20, by another client of the address
    meter.start("read")
    client.fetch_open_orders(BTC)
    meter.finish()
    assert budget.view()["weight_used"] == limiter.usage()["addresses"]["in-process"][
        "weight_1m"] == 53
    meter.start("read")
    with pytest.raises(NotSent):  # 53 + 80 is over the lookups' 75
        client.fetch_open_orders()
    meter.finish()
    venue.close()
