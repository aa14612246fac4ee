"""Reconciliation reads trades one symbol at a time, paging from a cursor per symbol.

Against the paper venue through a real side worker (ExchangeActor): by trade id where
the client takes binance's `fromId`, by time where it does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.ledger.reader import LedgerReader
from actors.ledger.store import Ledger
from actors.reconcile.actor import ActorQueries
from actors.reconcile.compare import ExchangeCheck, ReconcileSettings, Section
from actors.reconcile.trades import SYMBOL_KEY
from tests.recon_support import BTC, ETH, WAIT_S, FakeClock, ledger_order, order_actors

LATER_S = 120.0


class CountingTrades(PaperExchange):
    """The paper venue, recording each trades request; `id` picks its paging (a client
    id without a `fromId` param pages by time)."""

    def __init__(self, venue: PaperVenue, clock: FakeClock, calls: list[dict[str, Any]],
                 exchange_id: str = "paper") -> None:
        super().__init__(venue, clock=clock.now, sleep=clock.sleep)
        self.id, self.calls = exchange_id, calls

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None,
                        limit: int | None = None,
                        params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls.append({"symbol": symbol, "since": since, **(params or {})})
        return super().fetch_my_trades(symbol, since, limit, params)


def trade_on_venue(state: Path, clock: FakeClock, orders: list[tuple[str, str]]) -> None:
    """Market orders (client id, symbol) that fill at once, alternately bought and sold;
    the ledger gets each as filled, without its fills."""
    venue = PaperVenue(state / "paper-paper.sqlite", clock=clock.now)
    ledger = Ledger(state / "ledger.sqlite")
    try:
        for n, (cid, symbol) in enumerate(orders):
            side = "sell" if n % 2 else "buy"
            raw = venue.create_order("default", symbol, "market", side, Decimal("0.01"),
                                     client_order_id=cid)
            ledger.stage(ledger_order(cid, order_id=str(raw["id"]), status="filled",
                                      price=None, filled="0.01", side=side, symbol=symbol))
        ledger.commit()
    finally:
        ledger.close()
        venue.close()


@contextmanager
def checking(state: Path, clock: FakeClock, calls: list[dict[str, Any]], page: int,
             exchange_id: str = "paper") -> Iterator[ExchangeCheck]:
    """One run's check of the paper exchange, its queries through the side worker."""
    with order_actors(state, clock, client=lambda venue: CountingTrades(
            venue, clock, calls, exchange_id)) as actors:
        reader = LedgerReader(state / "ledger.sqlite")
        try:
            yield ExchangeCheck("paper", reader, ActorQueries(actors.registry, "paper", WAIT_S),
                                ReconcileSettings(trades_page=page, min_age_s=0.0), clock.clock())
        finally:
            reader.close()


def store(state: Path, cursors: list[tuple[str, str]]) -> None:
    ledger = Ledger(state / "ledger.sqlite")
    try:
        for key, value in cursors:
            ledger.stage_meta(key, value)
        ledger.commit()
    finally:
        ledger.close()


def repaired(section: Section) -> set[str]:
    return {repair.client_order_id for repair in section.repairs}


def test_trades_are_paged_by_trade_id_per_symbol_from_the_stored_cursor(
        tmp_path: Path) -> None:
    clock, calls = FakeClock(), list[dict[str, Any]]()
    orders = [(f"od-b{n}", BTC) for n in range(5)] + [("od-e0", ETH)]
    trade_on_venue(tmp_path, clock, orders)
    clock.advance(LATER_S)
    with checking(tmp_path, clock, calls, page=2) as check:
        section = check.run()
    assert section.errors == [] and section.counts["trades"] == 6
    assert repaired(section) == {cid for cid, _ in orders}  # every trade read and compared
    # a page of two at a time: BTC's first by time, then from the next trade id
    by_symbol = [(c["symbol"], "fromId" in c) for c in calls]
    assert by_symbol == [(BTC, False), (BTC, True), (BTC, True), (ETH, False)]
    assert [c["fromId"] for c in calls if "fromId" in c] == ["3", "5"]
    cursors = dict(section.cursors)
    assert json.loads(cursors[SYMBOL_KEY.format(exchange="paper", symbol=BTC)])["from_id"] == "6"
    store(tmp_path, section.cursors)
    trade_on_venue(tmp_path, clock, [("od-b5", BTC)])
    clock.advance(LATER_S)
    calls.clear()
    with checking(tmp_path, clock, calls, page=2) as check:
        again = check.run()
    assert again.errors == [] and again.counts["trades"] == 1 and repaired(again) == {"od-b5"}
    assert [(c["symbol"], c.get("fromId")) for c in calls] == [(BTC, "6"), (ETH, "7")]


def test_an_exchange_without_trade_ids_to_page_by_is_paged_by_time(tmp_path: Path) -> None:
    clock, calls = FakeClock(), list[dict[str, Any]]()
    orders = [(f"od-t{n}", BTC) for n in range(3)]
    trade_on_venue(tmp_path, clock, orders)  # all in the same millisecond
    clock.advance(LATER_S)
    with checking(tmp_path, clock, calls, page=10, exchange_id="timeonly") as check:
        section = check.run()
    assert section.errors == [] and repaired(section) == {cid for cid, _ in orders}
    assert all("fromId" not in c and c["since"] is not None for c in calls)
    calls.clear()
    with checking(tmp_path, clock, calls, page=2, exchange_id="timeonly") as check:
        stalled = check.run()
    # three trades in one millisecond, two a page: paging by time cannot get past it
    assert [(e["query"], e["code"], e["symbol"]) for e in stalled.errors] == [
        ("trades", "paging", BTC)]
