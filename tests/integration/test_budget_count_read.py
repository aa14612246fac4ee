"""binance's order count is of unfilled orders: once it holds new orders, a first fill
of a resting order makes room before the window ends. A real daemon (binance driver) on
`orderd paper-venue` reads the venue's counts (`GET /api/v3/rateLimit/order`) after it
sees such a fill, and only then, and takes the next submit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import (
    KEY,
    SECRET,
    VenueProcess,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.integration.test_budget_daemon import (
    NO_STREAM,
    budget,
    entry,
    limited_venue,
    no_refusals,
    placed_once,
    rest,
)
from tests.stream_support import operator

TEN_A_DAY = ("--orders-per-10s", "0", "--orders-per-day", "10")
"""The day's count: no window ends during the test (the 10 s one would, at random)."""
READ = ("GET", "/api/v3/rateLimit/order")


def reads(venue: VenueProcess) -> int:
    return venue.requests().count(READ)


def full_day(client: OrderdClient) -> None:
    """Ten resting orders fill the day's count; the eleventh submit is refused."""
    wait_until(lambda: 86400 - time.time() % 86400 > 60, "a UTC day with a minute left",
               attempts=7000)
    rest(client, "rest", 10)
    with pytest.raises(ProtocolError) as refused:
        client.submit(resting_limit_buy(client_order_id="refused"))
    assert refused.value.code == "rate_limited"
    assert budget(client)["orders_1d"] == 10


def tracked_twice(venue: VenueProcess) -> None:
    """Tracking has read the resting orders' symbol twice more since now."""
    before = venue.requests().count(("GET", "/api/v3/openOrders"))
    wait_until(lambda: venue.requests().count(("GET", "/api/v3/openOrders")) >= before + 2,
               "two more tracking reads")


def test_a_first_fill_seen_makes_room_for_the_next_submit(tmp_path: Path) -> None:
    with limited_venue(tmp_path, *TEN_A_DAY) as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM) as daemon:
        client = daemon.client()
        full_day(client)
        tracked_twice(venue)
        assert reads(venue) == 0  # nothing filled: the count is right as it is
        operator(venue.url, "/_venue/trade", {"symbol": "BTC/USD", "price": "1000",
                                              "amount": "0.004"})  # one order's first fill
        wait_until(lambda: client.status(client_order_id="rest-0")["status"]
                   == "partially_filled", "the fill seen by tracking")
        wait_until(lambda: budget(client)["orders_1d"] == 9, "the counts read")
        order = client.submit(resting_limit_buy(client_order_id="after-fill"))
        assert order["status"] == "open"
        placed_once(venue, "after-fill")
        assert "refused" not in [o["clientOrderId"] for o in venue.orders()]
        assert reads(venue) == 1
        no_refusals(venue)


def test_with_no_fill_seen_no_read_is_sent(tmp_path: Path) -> None:
    with limited_venue(tmp_path, *TEN_A_DAY) as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM) as daemon:
        client = daemon.client()
        full_day(client)
        for _ in range(3):  # submits refused for the count, ticks, tracking reads
            tracked_twice(venue)
            with pytest.raises(ProtocolError) as refused:
                client.submit(resting_limit_buy(client_order_id="refused"))
            assert refused.value.code == "rate_limited"
        assert reads(venue) == 0
        assert venue.usage()["accounts"]["default"]["orders_1d"] == 10


def test_a_read_that_failed_on_its_way_is_made_again(tmp_path: Path) -> None:
    """A read that went out and brought no counts back (a 503, not retried here) did not
    read the fill: another goes a second later, with no new fill, and the next submit
    gets in (else it would wait for the day's end, or for another fill)."""
    with limited_venue(tmp_path, *TEN_A_DAY) as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM,
                           extra="[retry]\nmax_retries = 0\n") as daemon:
        client = daemon.client()
        full_day(client)
        venue.script({"fault": "http_503", "method": "GET", "path": READ[1]})
        operator(venue.url, "/_venue/trade", {"symbol": "BTC/USD", "price": "1000",
                                              "amount": "0.004"})  # one order's first fill
        wait_until(lambda: budget(client)["orders_1d"] == 9, "the counts read again")
        assert reads(venue) == 2
        order = client.submit(resting_limit_buy(client_order_id="after-fill"))
        assert order["status"] == "open"
        no_refusals(venue)


def test_a_create_held_for_the_count_goes_once_a_read_finds_room(tmp_path: Path) -> None:
    """A create accepted while the day's count had room, then kept back for it (the
    answer before it showed another program's orders), is sent once a read after a fill
    finds room: not at the end of the day's window, past its send deadline. One worker,
    so the second create waits behind the first, whose answer the venue holds."""
    with limited_venue(tmp_path, *TEN_A_DAY) as venue, \
            running_daemon(tmp_path, exchanges=entry(venue) + "concurrency = 1\n",
                           tracking=NO_STREAM) as daemon:
        client = daemon.client()
        wait_until(lambda: 86400 - time.time() % 86400 > 60, "a UTC day with a minute left",
                   attempts=7000)
        rest(client, "rest", 7)
        other = build_binance(DriverSettings(KEY, SECRET, venue.url))
        other.load_markets()
        for _ in range(2):  # another program on the account: 9 of 10 at the venue
            other.create_order("BTC/USD", "limit", "buy", 0.01, 1000)
        venue.script({"path": "/api/v3/order", "method": "POST", "fault": "hold_answer"})
        client.submit(resting_limit_buy(client_order_id="first"), wait="durable")
        wait_until(lambda: venue.held() == 1, "the first create's answer held")
        # 8 of 10 by our count: accepted, and queued behind the first
        client.submit(resting_limit_buy(client_order_id="held"), wait="durable")
        assert venue.release() == 1  # its answer shows the day's 10
        wait_until(lambda: (client.status(client_order_id="held")["last_error"]
                            or {}).get("code") == "rate_limited", "the create held")
        assert client.status(client_order_id="held")["status"] == "pending_submit"
        operator(venue.url, "/_venue/trade", {"symbol": "BTC/USD", "price": "1000",
                                              "amount": "0.004"})  # rest-0's first fill
        wait_until(lambda: reads(venue) == 1, "the counts read")
        wait_until(lambda: client.status(client_order_id="held")["status"] == "open",
                   "the held create sent after the read", attempts=1000)
        placed_once(venue, "first", "held")
        assert reads(venue) == 1
        no_refusals(venue)
