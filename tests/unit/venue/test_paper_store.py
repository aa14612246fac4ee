"""The paper venue keeps only open and recent orders in memory; the rest is read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from tests.venue_support import FakeClock
from venue.index import RECENT_FINISHED
from venue.store import PaperStore, PendingWrites

SOL = "SOL/USD"
BEYOND = RECENT_FINISHED + 200
"""Enough finished orders that the first ones have left memory."""


def fill_many(ex: PaperExchange, count: int, prefix: str = "m") -> list[dict[str, object]]:
    return [ex.create_order(SOL, "market", "buy" if i % 2 else "sell", "0.1", None,
                            {"clientOrderId": f"{prefix}{i}"}) for i in range(count)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize("persistent", [True, False])
def test_evicted_orders_and_their_trades_are_still_found(
    tmp_path: Path, clock: FakeClock, persistent: bool
) -> None:
    venue = PaperVenue(tmp_path / "paper.db" if persistent else None, clock=clock)
    ex = PaperExchange(venue, clock=clock)
    resting = ex.create_order(SOL, "limit", "buy", "1", "100", {"clientOrderId": "rest"})
    orders = fill_many(ex, BEYOND)
    assert venue.resident_orders() <= 1 + RECENT_FINISHED  # the first ones left memory
    # the create's answer carries the fills it got at once; a fetch shows none (as ccxt's)
    first, carried = {**orders[0], "trades": []}, orders[0]["trades"]
    assert ex.fetch_order(str(first["id"])) == first
    assert ex.fetch_order(None, params={"clientOrderId": "m0"}) == first
    [trade] = ex.fetch_order_trades(str(first["id"]))
    assert trade["order"] == first["id"] and carried == [trade]
    assert [o["id"] for o in ex.fetch_orders(limit=2)] == [o["id"] for o in orders[-2:]]
    assert len(ex.fetch_orders()) == BEYOND + 1
    assert len(ex.fetch_my_trades(since=int(str(first["timestamp"])))) == BEYOND
    assert [o["id"] for o in ex.fetch_open_orders()] == [resting["id"]]
    assert len(venue.all_orders()) == BEYOND + 1
    with pytest.raises(Exception, match="not open"):
        ex.cancel_order(str(first["id"]))


def test_lookup_by_client_id_gives_the_latest_order_that_used_it(clock: FakeClock) -> None:
    ex = PaperExchange(PaperVenue(None, clock=clock), clock=clock)
    old = ex.create_order(SOL, "market", "buy", "0.1", None, {"clientOrderId": "again"})
    fill_many(ex, BEYOND)
    new = ex.create_order(SOL, "market", "sell", "0.1", None, {"clientOrderId": "again"})
    fill_many(ex, BEYOND, prefix="n")
    assert ex.fetch_order(None, params={"clientOrderId": "again"})["id"] == new["id"] != old["id"]
    other = PaperExchange(ex.venue, account="other", clock=clock)
    assert other.fetch_orders() == []
    with pytest.raises(Exception, match="not found"):
        other.fetch_order(str(old["id"]))


def test_restart_reads_evicted_orders_and_keeps_open_ones(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "paper.db"
    venue = PaperVenue(path, clock=clock)
    ex = PaperExchange(venue, clock=clock)
    resting = ex.create_order(SOL, "limit", "buy", "1", "100", {"clientOrderId": "rest"})
    orders = fill_many(ex, BEYOND)
    venue.close()
    again = PaperVenue(path, clock=clock)
    ex2 = PaperExchange(again, clock=clock)
    assert again.resident_orders() == 1  # only the open order is loaded
    # as the create's answers were, less the fills they carried
    assert ex2.fetch_order(None, params={"clientOrderId": "m0"}) == {**orders[0], "trades": []}
    assert ex2.fetch_order(str(orders[-1]["id"])) == {**orders[-1], "trades": []}
    assert ex2.cancel_order(str(resting["id"]))["status"] == "canceled"
    assert ex2.create_order(SOL, "market", "buy", "0.1")["id"] == str(BEYOND + 2)
    assert len(ex2.fetch_my_trades()) == BEYOND + 1
    again.close()


def test_memory_holds_open_orders_and_a_bounded_cache_whatever_the_fills(
    tmp_path: Path, clock: FakeClock
) -> None:
    venue = PaperVenue(tmp_path / "paper.db", clock=clock)
    ex = PaperExchange(venue, clock=clock)
    for i in range(5):
        ex.create_order(SOL, "limit", "buy", "1", "100", {"clientOrderId": f"rest{i}"})
    fill_many(ex, 3 * RECENT_FINISHED)
    assert venue.resident_orders() <= 5 + RECENT_FINISHED
    assert len(venue.all_orders()) == 5 + 3 * RECENT_FINISHED
    venue.close()


def test_queued_writes_commit_in_order_and_lookups_see_them(tmp_path: Path) -> None:
    store = PaperStore(tmp_path / "paper.db")
    store.queue(PendingWrites(orders={1: {"id": 1, "status": "open"}}))
    store.queue(PendingWrites(orders={1: {"id": 1, "status": "closed"}},
                              trades=[(7, {"id": 7, "orderId": "1"})]))
    # a lookup commits what is queued first; of two writes of one order, the later holds
    assert store.order(1) == {"id": 1, "status": "closed"}
    assert store.order_trades(1) == [{"id": 7, "orderId": "1"}]
    store.queue(PendingWrites(orders={2: {"id": 2, "status": "open"}}))
    store.sync(store.queued)
    other = PaperStore(tmp_path / "paper.db")  # another connection: only what is committed
    assert other.order(2) == {"id": 2, "status": "open"}
    other.close()
    store.close()
