"""The paper venue's order events: what its listeners (the user-data streams) get."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from ccxt.base.errors import InsufficientFunds, InvalidOrder, OrderImmediatelyFillable

from tests.venue_support import FakeClock
from venue.book import PaperVenue
from venue.model import VenueEvent

BTC = "BTC/USD"
ACCOUNT = "acct"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def venue(tmp_path: Path, clock: FakeClock) -> PaperVenue:
    return PaperVenue(tmp_path / "paper.db", seed=7, clock=clock)


@pytest.fixture
def events(venue: PaperVenue) -> list[VenueEvent]:
    heard: list[VenueEvent] = []
    venue.add_listener(heard.append)
    return heard


def kinds(events: list[VenueEvent]) -> list[tuple[str, str]]:
    return [(event.kind, event.order["status"]) for event in events]


def resting(venue: PaperVenue, client_order_id: str | None = None,
            time_in_force: str = "GTC") -> str:
    """A limit buy far below the price (it rests, unless IOC); its id."""
    order = venue.create_order(ACCOUNT, BTC, "limit", "buy", Decimal("0.01"), Decimal(1000),
                               client_order_id=client_order_id, time_in_force=time_in_force)
    return str(order["id"])


def test_each_change_is_one_event_with_the_order_as_it_then_was(
        venue: PaperVenue, events: list[VenueEvent], clock: FakeClock) -> None:
    order_id = resting(venue, client_order_id="mine")
    taken = venue.create_order(ACCOUNT, BTC, "market", "buy", Decimal("0.01"))
    venue.cancel_order(ACCOUNT, order_id)
    assert kinds(events) == [("new", "open"), ("new", "open"), ("trade", "closed"),
                             ("canceled", "canceled")]
    new, _, trade, canceled = events
    assert new.order["id"] == order_id and new.order["clientOrderId"] == "mine"
    assert new.account == ACCOUNT and new.at_ms == int(clock.now * 1000)
    assert new.order["reservedCurrency"] == "USD"  # on the book
    [booked] = venue.order_trades(ACCOUNT, int(taken["id"]))
    assert trade.trade is not None and trade.trade["id"] == booked["id"]
    assert trade.order["filled"] == "0.01" and canceled.order["id"] == order_id
    assert [event.seq for event in events] == [1, 2, 3, 4]


def test_a_price_move_fills_a_resting_order(venue: PaperVenue, events: list[VenueEvent]) -> None:
    order_id = resting(venue)
    venue.set_price(BTC, Decimal("999"))
    assert kinds(events)[-1] == ("trade", "closed") and events[-1].order["id"] == order_id
    assert events[-1].trade is not None and events[-1].trade["takerOrMaker"] == "maker"


def test_an_unfillable_ioc_order_expires(venue: PaperVenue, events: list[VenueEvent]) -> None:
    resting(venue, time_in_force="IOC")
    assert kinds(events) == [("new", "open"), ("expired", "expired")]
    assert events[0].order["reservedCurrency"] is None  # never on the book


def test_engine_refusals_are_rejected_events(venue: PaperVenue,
                                             events: list[VenueEvent]) -> None:
    with pytest.raises(OrderImmediatelyFillable):
        venue.create_order(ACCOUNT, BTC, "limit", "buy", Decimal("0.01"), Decimal(200000),
                           client_order_id="maker", post_only=True)
    with pytest.raises(InsufficientFunds):
        venue.create_order(ACCOUNT, BTC, "market", "buy", Decimal(1000),
                           client_order_id="broke")
    with pytest.raises(InvalidOrder):  # refused by a filter, before the engine: no event
        venue.create_order(ACCOUNT, BTC, "limit", "buy", Decimal("0.000001"), Decimal(1000))
    assert [(e.kind, e.reason, e.order["clientOrderId"], e.order["id"]) for e in events] == [
        ("rejected", "would_take", "maker", "-1"),
        ("rejected", "insufficient_balance", "broke", "-1")]
    assert venue.open_orders(ACCOUNT) == [] and venue.orders(ACCOUNT) == []


def test_nothing_is_noted_without_listeners(venue: PaperVenue, events: list[VenueEvent]) -> None:
    venue.remove_listener(events.append)
    resting(venue)
    assert events == []


def test_a_failing_listener_fails_nothing_else(venue: PaperVenue,
                                               events: list[VenueEvent]) -> None:
    def broken(_event: VenueEvent) -> None:
        raise RuntimeError("listener bug")

    venue.add_listener(broken)
    order_id = resting(venue)
    assert venue.fetch_order(ACCOUNT, order_id)["status"] == "open"
    assert kinds(events) == [("new", "open")]


def test_an_event_is_heard_only_once_its_change_is_committed(
        tmp_path: Path, clock: FakeClock) -> None:
    venue = PaperVenue(tmp_path / "paper.db", clock=clock)
    on_disk: list[str] = []

    def check(event: VenueEvent) -> None:
        # what another connection reads now is what a crash now would leave
        with contextlib.closing(sqlite3.connect(tmp_path / "paper.db")) as db:
            row = db.execute("SELECT data FROM orders WHERE id = ?",
                             (int(event.order["id"]),)).fetchone()
        on_disk.append(json.loads(row[0])["status"] if row else "missing")

    venue.add_listener(check)
    venue.cancel_order(ACCOUNT, resting(venue))
    assert on_disk == ["open", "canceled"]


def test_an_event_says_whether_its_requests_answer_showed_it(
        venue: PaperVenue, events: list[VenueEvent]) -> None:
    """The order a create or a cancel was about: its events are `answered`; another order
    the price filled, or one an operator canceled, no answer showed. A listener that does
    not ask for answered events gets only the others."""
    between: list[VenueEvent] = []
    venue.add_listener(between.append, answered=False)
    venue.cancel_order(ACCOUNT, resting(venue, client_order_id="asked"))
    venue.create_order(ACCOUNT, BTC, "market", "buy", Decimal("0.01"),
                       client_order_id="takes")
    venue.cancel_on_venue(resting(venue, client_order_id="operator"))
    resting(venue, client_order_id="filled-by-price")
    venue.set_price(BTC, Decimal(1000))
    assert [(e.order["clientOrderId"], e.kind, e.answered) for e in events] == [
        ("asked", "new", True), ("asked", "canceled", True),
        ("takes", "new", True), ("takes", "trade", True),
        ("operator", "new", True), ("operator", "canceled", False),
        ("filled-by-price", "new", True), ("filled-by-price", "trade", False)]
    assert between == [e for e in events if not e.answered]
    assert [e.seq for e in between] == [events[5].seq, events[7].seq]


def test_answered_events_are_noted_only_while_a_listener_asks_for_them(
        venue: PaperVenue, events: list[VenueEvent]) -> None:
    between: list[VenueEvent] = []
    venue.add_listener(between.append, answered=False)
    venue.remove_listener(events.append)
    resting(venue)
    venue.set_price(BTC, Decimal(1000))
    assert [e.kind for e in between] == ["trade"]
    assert between[0].seq == 1  # nothing was noted for the create
