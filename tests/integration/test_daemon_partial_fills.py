"""Partial fills at the process boundary: a daemon with the binance driver and its
user-data stream against `orderd paper-venue`, whose operator trades fill its orders
part by part. However the trades reach the daemon (pushed, found by the catch-up after
a stream fault or a kill -9, read over several pages), each one is counted exactly
once, and the order's filled amount, average price and fee are the venue's."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    DaemonProcess,
    VenueProcess,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.integration.test_daemon_stream import (
    TRACKING,
    exchanges,
    live,
    open_orders_reads,
    price,
    stream_of,
)
from tests.stream_support import operator

SYMBOL = "SOL/USD"
LIVE = ("open", "partially_filled")
VENUE_LIVE = ("NEW", "PARTIALLY_FILLED")
FINAL = {"filled": "FILLED", "canceled": "CANCELED"}
"""The daemon's terminal status -> the venue's."""


class Levels:
    """A price level of its own for each test's orders, rising: a trade at a level
    crosses only the buys at or above it, so an order a failed test left resting at a
    lower level is never filled by a later test's trade."""

    def __init__(self) -> None:
        self.next = 100

    def take(self) -> str:
        level, self.next = self.next, self.next + 2
        return str(level)


LEVELS = Levels()


@pytest.fixture(autouse=True)
def quiet_market(venue: VenueProcess) -> Iterator[None]:
    """SOL well above every level (the walk never reaches them), no fault left over."""
    price(venue, "150")
    yield
    venue.script()
    price(venue, "150")


class Order:
    """One of our orders: its client id, its level, and the venue's trades of it."""

    def __init__(self, client: Any, level: str, amount: str = "0.1") -> None:
        self.client_order_id = f"pf-{uuid.uuid4().hex[:16]}"
        self.level = level
        self.trades: list[dict[str, Any]] = []
        """The venue's trades of this order, as its trade route answered them."""
        client.submit(resting_limit_buy(amount, price=level, symbol=SYMBOL,
                                        client_order_id=self.client_order_id),
                      wait="accepted")

    def trade(self, venue: VenueProcess, amount: str) -> None:
        """A taker's sell at the order's level: fills `amount` of it (and of nothing
        else: older tests' orders rest lower)."""
        answer = operator(venue.url, "/_venue/trade",
                          {"symbol": SYMBOL, "price": self.level, "amount": amount})
        made = answer["trades"]
        assert [Decimal(t["qty"]) for t in made] == [Decimal(amount)], made
        self.trades.extend(made)

    def traded(self) -> Decimal:
        return sum((Decimal(t["qty"]) for t in self.trades), Decimal(0))


def status(client: Any, order: Order) -> dict[str, Any]:
    found: dict[str, Any] = client.status(client_order_id=order.client_order_id)
    return found


def fill_steps(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in state["confirmation"] if step["step"] == "fill"]


def counted(client: Any, order: Order, state: str) -> dict[str, Any] | None:
    """The daemon's order once it is in `state` with every venue trade counted."""
    seen = status(client, order)
    ids = {step["trade_id"] for step in fill_steps(seen)}
    if seen["status"] == state and ids >= {str(t["id"]) for t in order.trades}:
        return seen
    return None


def wait_counted(client: Any, order: Order, state: str) -> dict[str, Any]:
    try:
        return wait_until(partial(counted, client, order, state),
                          f"{order.client_order_id} {state} with {order.traded()} counted")
    except AssertionError as exc:  # what the daemon holds instead, to tell what went wrong
        seen = status(client, order)
        raise AssertionError(f"{exc}; the daemon has it {seen['status']}, filled "
                             f"{seen['filled']}, fills {fill_steps(seen)}") from None


def on_venue(venue: VenueProcess, order: Order) -> dict[str, Any]:
    [booked] = [o for o in venue.orders() if o["clientOrderId"] == order.client_order_id]
    return booked


def assert_as_venue(client: Any, venue: VenueProcess, order: Order, state: str) -> None:
    """Each of the venue's trades counted once and nothing else; filled, average price,
    fee and status the venue's."""
    seen = wait_counted(client, order, state)
    steps = fill_steps(seen)
    assert sorted(step["trade_id"] for step in steps) == sorted(
        str(t["id"]) for t in order.trades), seen["confirmation"]
    booked = on_venue(venue, order)
    assert Decimal(seen["filled"]) == Decimal(booked["executedQty"]) == order.traded()
    average = Decimal(booked["cummulativeQuoteQty"]) / Decimal(booked["executedQty"])
    assert Decimal(seen["average_price"]) == average
    fee = sum((Decimal(t["commission"]) for t in order.trades), Decimal(0))
    assert seen["fee"] is not None and Decimal(seen["fee"]["cost"]) == fee
    assert seen["fee"]["currency"] == "USD"
    expected = FINAL.get(state, "PARTIALLY_FILLED")
    assert booked["status"] == expected, booked


def assert_nothing_left_open(client: Any, venue: VenueProcess) -> None:
    """Every order the daemon holds live is live on the venue too."""
    live_on_venue = {o["clientOrderId"] for o in venue.orders() if o["status"] in VENUE_LIVE}
    for state in LIVE:
        for order in client.list(status=state)["orders"]:
            assert order["client_order_id"] in live_on_venue, order


def grown(client: Any, before: dict[str, Any], count: str, by: int = 1) -> bool:
    return bool(stream_of(client)[count] >= before[count] + by)


def placed(client: Any, venue: VenueProcess) -> Order:
    """A resting buy at a fresh level, open on the daemon and past tracking's first
    read of its symbol: fills from now on reach the daemon by the stream (or, when the
    stream fails, by its catch-up), not by a tracking read racing the stream."""
    reads = open_orders_reads(venue)
    order = Order(client, LEVELS.take())
    wait_until(lambda: status(client, order)["status"] == "open", "the order open")
    wait_until(lambda: open_orders_reads(venue) > reads, "tracking's first read")
    return order


def test_partial_fills_pushed_then_the_rest_canceled(venue: VenueProcess,
                                                     tmp_path: Path) -> None:
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        order = placed(client, venue)
        for amount in ("0.03", "0.02"):
            order.trade(venue, amount)
            wait_counted(client, order, "partially_filled")
        assert_as_venue(client, venue, order, "partially_filled")
        # both pushed: tracking waits out its safety interval while the stream is live
        assert [s["source"] for s in fill_steps(status(client, order))] == ["stream"] * 2

        client.cancel(client_order_id=order.client_order_id)
        assert_as_venue(client, venue, order, "canceled")
        assert stream_of(client)["gaps"] == 0
        assert_nothing_left_open(client, venue)
        assert daemon.stop() == 0


OUTAGES: dict[str, tuple[dict[str, Any], str]] = {
    "dropped": ({"fault": "stream_drop"}, "reconnects"),
    "stalled": ({"fault": "stream_stall", "delay_s": 3.0}, "reconnects")}
"""Each outage of the stream, and the count of the stream's health that shows it."""


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_a_fill_during_a_stream_outage_is_caught_up_once(venue: VenueProcess,
                                                         tmp_path: Path, outage: str) -> None:
    fault, shown_by = OUTAGES[outage]
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        order = placed(client, venue)
        order.trade(venue, "0.03")
        wait_counted(client, order, "partially_filled")  # pushed

        before = stream_of(client)
        venue.script(fault)  # meets the next event: the second fill's
        order.trade(venue, "0.04")
        wait_until(partial(grown, client, before, shown_by), f"the stream {outage}")
        assert_as_venue(client, venue, order, "partially_filled")  # the catch-up's

        wait_until(lambda: live(client), "the stream live again")
        order.trade(venue, "0.03")
        assert_as_venue(client, venue, order, "filled")
        assert_nothing_left_open(client, venue)
        assert daemon.stop() == 0


def test_repeated_and_lost_events_between_partial_fills(venue: VenueProcess,
                                                        tmp_path: Path) -> None:
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        order = placed(client, venue)
        before = stream_of(client)

        venue.script({"fault": "stream_duplicate_event"})
        order.trade(venue, "0.03")  # pushed twice
        wait_until(partial(grown, client, before, "duplicates"), "the repeat seen")
        assert_as_venue(client, venue, order, "partially_filled")

        venue.script({"fault": "stream_drop_event"})
        order.trade(venue, "0.02")  # never pushed
        order.trade(venue, "0.01")  # pushed: shows the gap before it
        wait_until(partial(grown, client, before, "gaps"), "the gap seen")
        assert_as_venue(client, venue, order, "partially_filled")

        venue.script({"fault": "stream_duplicate_event"}, {"fault": "stream_drop_event"})
        order.trade(venue, "0.02")  # pushed twice
        order.trade(venue, "0.01")  # never pushed
        order.trade(venue, "0.01")  # the order filled; shows the gap
        wait_until(partial(grown, client, before, "gaps", 2), "the second gap seen")
        assert_as_venue(client, venue, order, "filled")
        assert_nothing_left_open(client, venue)
        assert daemon.stop() == 0


def killed_after_a_fill(venue: VenueProcess, tmp_path: Path, amount: str) -> Order:
    """A daemon whose order's first fill (`amount`) came by the stream, then killed -9."""
    daemon = DaemonProcess(tmp_path, exchanges=exchanges(venue), tracking=TRACKING).start()
    client = daemon.client()
    wait_until(lambda: live(client), "the stream live")
    order = placed(client, venue)
    order.trade(venue, amount)
    wait_counted(client, order, "partially_filled")
    daemon.stop(signal.SIGKILL)
    return order


def test_after_a_kill_between_partial_fills_the_catch_up_finds_them(
        venue: VenueProcess, tmp_path: Path) -> None:
    order = killed_after_a_fill(venue, tmp_path, "0.03")

    order.trade(venue, "0.02")  # while the daemon is dead
    order.trade(venue, "0.01")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as again:
        client = again.client()
        assert_as_venue(client, venue, order, "partially_filled")
        wait_until(lambda: live(client), "the stream live")
        order.trade(venue, "0.04")  # the rest, pushed
        assert_as_venue(client, venue, order, "filled")
        assert_nothing_left_open(client, venue)
        assert again.stop() == 0


PAGE = 2
"""The paged venue's myTrades page: a catch-up of five trades needs three pages."""


@pytest.fixture
def paged_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    running = VenueProcess(tmp_path_factory.mktemp("paged"), "--trades-page", str(PAGE))
    yield running
    running.stop()


def test_a_catch_up_reads_every_page_of_trades(paged_venue: VenueProcess,
                                               tmp_path: Path) -> None:
    venue = paged_venue
    price(venue, "150")
    order = killed_after_a_fill(venue, tmp_path, "0.01")

    for _ in range(2 * PAGE + 1):  # while the daemon is dead: more than a page
        order.trade(venue, "0.01")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as again:
        client = again.client()
        assert_as_venue(client, venue, order, "partially_filled")
        wait_until(lambda: live(client), "the stream live")
        order.trade(venue, "0.04")
        assert_as_venue(client, venue, order, "filled")
        assert_nothing_left_open(client, venue)
        assert again.stop() == 0


def test_a_fill_only_the_cancels_answer_shows_is_counted(venue: VenueProcess,
                                                         tmp_path: Path) -> None:
    """No stream, and no tracking read between a fill and the cancel: the cancel's
    answer is the first to show the order partly filled, and the order is finished
    with it (tracking reads it no more). Its trades are read then."""
    polled = "interval_s = 60\nyoung_interval_s = 60\nstream = false\n"
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=polled) as daemon:
        client = daemon.client()
        order = Order(client, LEVELS.take())
        wait_until(lambda: status(client, order)["status"] == "open", "the order open")
        order.trade(venue, "0.03")
        client.cancel(client_order_id=order.client_order_id)
        assert_as_venue(client, venue, order, "canceled")
        assert daemon.stop() == 0
