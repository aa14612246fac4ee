"""Confirmation steps and tracking of open orders, against the paper venue in-process."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.client import trade_of
from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.exchange.messages import OrderView
from actors.exchange.routing import side_worker_name
from actors.ledger.store import Ledger
from actors.order.messages import ExchangeReport, Tick
from actors.supervisor_messages import Ping
from protocol.messages import OrderStatus
from tests.recon_support import (
    BTC,
    ETH,
    WAIT_S,
    Actors,
    FakeClock,
    ledger_order,
    order_actors,
    seed_ledger,
)


def venue_order(state: Path, clock: FakeClock, cid: str, amount: str = "0.01",
                price: str = "1000", symbol: str = BTC) -> str:
    """A resting buy on the venue; returns its exchange id."""
    venue = PaperVenue(state / "paper-paper.sqlite", clock=clock.now)
    try:
        return str(venue.create_order("default", symbol, "limit", "buy", Decimal(amount),
                                      Decimal(price), client_order_id=cid)["id"])
    finally:
        venue.close()


def test_cancel_done_on_the_venue_is_picked_up_and_published(tmp_path: Path) -> None:
    clock = FakeClock()
    order_id = venue_order(tmp_path, clock, "trk-1")
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("trk-1", order_id=order_id)])
    with order_actors(tmp_path, clock) as actors:
        actors.venue.cancel_on_venue(order_id)
        actors.tell(Tick(clock.monotonic()))
        event = actors.events.next()
        assert event["order"]["client_order_id"] == "trk-1"
        assert event["order"]["status"] == "canceled" and event["seq"] == 1
        status = actors.status("trk-1")
        assert status["status"] == "canceled"
        assert [s["step"] for s in status["confirmation"]] == ["ack", "verified"]


def test_symbols_with_young_orders_are_read_more_often(tmp_path: Path) -> None:
    clock = FakeClock()
    young_id = venue_order(tmp_path, clock, "trk-young")
    old_id = venue_order(tmp_path, clock, "trk-old", symbol=ETH)
    seed_ledger(tmp_path / "ledger.sqlite", [
        ledger_order("trk-young", order_id=young_id, created_at=clock.now()),
        ledger_order("trk-old", order_id=old_id, created_at=clock.now() - 3600,
                     symbol=ETH)])
    with order_actors(tmp_path, clock, young_interval_s=0.5, refresh_interval_s=5.0,
                      young_age_s=60.0) as actors:
        actors.tell(Tick(clock.monotonic()))  # both symbols are due the first time
        for cid in ("trk-young", "trk-old"):
            assert [s["step"] for s in wait_steps(actors, cid, 2)] == ["ack", "verified"]
        actors.venue.cancel_on_venue(young_id)
        actors.venue.cancel_on_venue(old_id)
        clock.advance(1.0)
        actors.tell(Tick(clock.monotonic()))  # only the young order's symbol is due again
        event = actors.events.next()
        assert (event["order"]["client_order_id"], event["seq"]) == ("trk-young", 1)
        assert actors.status("trk-old")["status"] == "open"
        clock.advance(4.0)
        actors.tell(Tick(clock.monotonic()))
        event = actors.events.next()
        assert (event["order"]["client_order_id"], event["order"]["status"]) == (
            "trk-old", "canceled")
        assert event["seq"] == 2


def wait_steps(actors: Actors, cid: str, count: int) -> list[dict[str, Any]]:
    """The order's trail once it has `count` steps (asks again while the fetch is under way)."""
    for _ in range(500):
        steps = actors.status(cid)["confirmation"]
        if len(steps) >= count:
            return list(steps)
    raise AssertionError(f"{cid} never reached {count} confirmation steps")


def test_fills_are_counted_once_when_seen_twice(tmp_path: Path) -> None:
    clock = FakeClock()
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("trk-f", order_id="7")])
    trade = trade_of({"id": "t-1", "order": "7", "clientOrderId": "trk-f", "amount": 0.01,
                      "price": 1000.0, "fee": {"currency": "USD", "cost": 0.01},
                      "timestamp": int(clock.now() * 1000)})
    view = OrderView("7", OrderStatus.FILLED, Decimal("0.01"), Decimal(1000), "USD",
                     Decimal("0.01"))
    with order_actors(tmp_path, clock) as actors:
        partial = OrderView("7", OrderStatus.PARTIALLY_FILLED, Decimal("0.01"), Decimal(1000),
                            "USD", Decimal("0.01"))
        actors.tell(ExchangeReport("trk-f", "fetch", "ok", partial, trades=(trade,)))
        actors.tell(ExchangeReport("trk-f", "fetch", "ok", view, trades=(trade, trade)))
        status = actors.status("trk-f")
    assert status["status"] == "filled"
    assert status["filled"] == "0.01" and status["fee"]["cost"] == "0.01"
    assert status["average_price"] == "1000"
    assert [s["trade_id"] for s in status["confirmation"] if s["step"] == "fill"] == ["t-1"]


def test_terms_mismatch_is_flagged_alerted_and_not_overwritten(tmp_path: Path) -> None:
    clock = FakeClock()
    order_id = venue_order(tmp_path, clock, "trk-m", amount="0.01")
    seed_ledger(tmp_path / "ledger.sqlite",
                [ledger_order("trk-m", order_id=order_id, amount="0.02")])
    with order_actors(tmp_path, clock) as actors:
        actors.tell(Tick(clock.monotonic()))
        steps = wait_steps(actors, "trk-m", 2)
        assert steps[1] == {"step": "mismatch", "at": steps[1]["at"], "field": "amount",
                            "ledger": "0.02", "exchange": "0.01", "source": "open_orders"}
        assert actors.status("trk-m")["amount"] == "0.02"
        assert [(a.name, a.labels) for a in actors.alerts.seen] == [
            ("order_mismatch", {"exchange": "paper", "order": "trk-m", "field": "amount"})]


def test_amount_within_precision_is_verified(tmp_path: Path) -> None:
    clock = FakeClock()
    order_id = venue_order(tmp_path, clock, "trk-p", amount="0.01")
    seed_ledger(tmp_path / "ledger.sqlite",
                [ledger_order("trk-p", order_id=order_id, amount="0.010001")])
    with order_actors(tmp_path, clock) as actors:
        actors.tell(Tick(clock.monotonic()))
        assert wait_steps(actors, "trk-p", 2)[1]["step"] == "verified"


class HeldReads(PaperExchange):
    """The paper venue, except that reads of open orders wait for a gate; counts them."""

    def __init__(self, venue: PaperVenue, clock: FakeClock, gate: threading.Event) -> None:
        super().__init__(venue, clock=clock.now, sleep=clock.sleep)
        self.gate, self.reads = gate, 0

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None,
                          limit: int | None = None,
                          params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.reads += 1
        assert self.gate.wait(30), "gate never opened"
        return super().fetch_open_orders(symbol, since, limit, params)


def test_a_symbol_has_one_tracking_read_at_a_time(tmp_path: Path) -> None:
    """A slow exchange does not get a queue of reads of the same symbol, one a tick."""
    clock, gate, clients = FakeClock(), threading.Event(), list[HeldReads]()
    order_id = venue_order(tmp_path, clock, "trk-slow")
    seed_ledger(tmp_path / "ledger.sqlite", [
        ledger_order("trk-slow", order_id=order_id, created_at=clock.now())])

    def held(venue: PaperVenue) -> HeldReads:
        clients.append(HeldReads(venue, clock, gate))
        return clients[-1]

    try:
        with order_actors(tmp_path, clock, client=held, young_interval_s=0.5) as actors:
            for _ in range(4):  # each tick finds the symbol due again
                actors.tell(Tick(clock.monotonic()))
                actors.status("trk-slow")  # the tick is handled
                clock.advance(1.0)
            gate.set()
            actors.registry.ask(side_worker_name("paper"), Ping(), timeout=WAIT_S)
            assert sum(client.reads for client in clients) == 1
    finally:
        gate.set()


def test_a_trade_listed_twice_under_two_ids_never_fills_past_the_amount(
        tmp_path: Path) -> None:
    clock = FakeClock()
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("trk-o", order_id="7")])
    trades = tuple(trade_of({"id": tid, "order": "7", "clientOrderId": "trk-o",
                             "amount": 0.01, "price": 1000.0,
                             "fee": {"currency": "USD", "cost": 0.01},
                             "timestamp": int(clock.now() * 1000)}) for tid in ("t-1", "t-1b"))
    view = OrderView("7", OrderStatus.FILLED, Decimal("0.01"), Decimal(1000), "USD",
                     Decimal("0.01"))
    with order_actors(tmp_path, clock) as actors:
        for _ in range(2):  # seen again: neither counted nor alerted twice
            actors.tell(ExchangeReport("trk-o", "fetch", "ok", view, trades=trades))
        status = actors.status("trk-o")
    assert status["status"] == "filled" and status["filled"] == "0.01"
    steps = [(s["step"], s["trade_id"]) for s in status["confirmation"]
             if s["step"] in ("fill", "overfill")]
    assert steps == [("fill", "t-1"), ("overfill", "t-1b")]
    assert [(a.name, a.severity) for a in actors.alerts.seen] == [("order_overfill", "critical")]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        assert list(ledger.fills_of("paper", "trk-o")) == ["t-1"]
        stored = ledger.get("trk-o")
        assert stored is not None and stored.filled == Decimal("0.01")
    finally:
        ledger.close()


class CountingReads(PaperExchange):
    """The paper venue, counting reads of open orders (by symbol) and order lookups."""

    def __init__(self, venue: PaperVenue, clock: FakeClock, calls: list[str]) -> None:
        super().__init__(venue, clock=clock.now, sleep=clock.sleep)
        self.calls = calls

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None,
                          limit: int | None = None,
                          params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls.append(f"open_orders {symbol}")
        return super().fetch_open_orders(symbol, since, limit, params)

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(f"lookup {id}")
        return super().fetch_order(id, symbol, params)


def tracked_round(actors: Actors, clock: FakeClock, calls: list[str], count: int,
                  cid: str) -> list[str]:
    """Tick; the calls made by then, `count` of them (the side worker's round done)."""
    actors.tell(Tick(clock.monotonic()))
    actors.status(cid)  # the tick is handled
    actors.registry.ask(side_worker_name("paper"), Ping(), timeout=WAIT_S)
    assert len(calls) == count, calls
    return list(calls)


def test_one_read_of_a_symbol_tracks_all_its_orders(tmp_path: Path) -> None:
    """Six resting orders on two symbols: two reads an interval, and a lookup only for
    the orders that left their symbol's list."""
    clock, calls = FakeClock(), list[str]()
    ids = {f"trk-{symbol[:3]}{n}": venue_order(tmp_path, clock, f"trk-{symbol[:3]}{n}",
                                               symbol=symbol)
           for symbol in (BTC, ETH) for n in range(3)}
    seed_ledger(tmp_path / "ledger.sqlite", [
        ledger_order(cid, order_id=order_id, symbol=BTC if "BTC" in cid else ETH)
        for cid, order_id in ids.items()])
    with order_actors(tmp_path, clock, young_interval_s=0.5, refresh_interval_s=0.5,
                      client=lambda venue: CountingReads(venue, clock, calls)) as actors:
        assert sorted(tracked_round(actors, clock, calls, 2, "trk-BTC1")) == [
            f"open_orders {BTC}", f"open_orders {ETH}"]
        for cid in ids:
            assert [s["source"] for s in wait_steps(actors, cid, 2)] == [
                "open_orders", "open_orders"]
        actors.venue.cancel_on_venue(ids["trk-BTC0"])
        actors.venue.cancel_on_venue(ids["trk-ETH2"])
        calls.clear()
        clock.advance(0.5)
        assert sorted(tracked_round(actors, clock, calls, 4, "trk-BTC1")) == sorted([
            f"open_orders {BTC}", f"open_orders {ETH}",
            f"lookup {ids['trk-BTC0']}", f"lookup {ids['trk-ETH2']}"])
        for cid in ids:
            wanted = "canceled" if cid in ("trk-BTC0", "trk-ETH2") else "open"
            assert actors.status(cid)["status"] == wanted


def test_the_pace_factor_stretches_the_tracking_intervals(tmp_path: Path) -> None:
    """A request budget running low slows tracking down through the pace hook."""
    clock, calls, factor = FakeClock(), list[str](), [3.0]
    order_id = venue_order(tmp_path, clock, "trk-pace")
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("trk-pace", order_id=order_id)])
    with order_actors(tmp_path, clock, refresh_interval_s=1.0, young_age_s=0.0,
                      tracking_pace=lambda exchange: factor[0],
                      client=lambda venue: CountingReads(venue, clock, calls)) as actors:
        assert tracked_round(actors, clock, calls, 1, "trk-pace") == [f"open_orders {BTC}"]
        clock.advance(2.0)  # 2 of 3 s: not due yet
        tracked_round(actors, clock, calls, 1, "trk-pace")
        clock.advance(1.0)
        tracked_round(actors, clock, calls, 2, "trk-pace")
        factor[0] = 1.0  # the budget recovered
        clock.advance(1.0)
        tracked_round(actors, clock, calls, 3, "trk-pace")
