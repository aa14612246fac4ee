"""binance numbers the orders (and trades) of each symbol on their own: one account's
BTC and ETH orders can have the same order id. Reconciliation tells them apart by
symbol, so neither's trades are compared with, or counted into, the other."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.exchange.messages import OrderTicket, OrderView, TradePage, TradeView
from actors.ledger.reader import LedgerReader
from actors.orders import Order
from actors.reconcile.compare import ExchangeCheck, ExchangeQueries, ReconcileSettings, Section
from protocol.messages import OrderStatus
from tests.recon_support import BTC, ETH, FakeClock, ledger_order, seed_ledger

LATER_S = 120.0


def fill(trade_id: str, symbol: str, amount: str, price: str, fee: str) -> TradeView:
    # binance's myTrades does not name the client order id
    return TradeView(trade_id, "11", None, Decimal(amount), Decimal(price), Decimal(fee),
                     "USD", 1_700_000_000_000, symbol)


TRADES = {BTC: fill("5", BTC, "0.01", "60000", "0.6"), ETH: fill("8", ETH, "0.5", "3000", "1.5")}


def checked(tmp_path: Path, account: ExchangeQueries, settings: ReconcileSettings,
            orders: list[Order], fills: list[tuple[str, TradeView]] | None = None) -> Section:
    """One reconciliation of `account` against a ledger of `orders` (and their fills),
    once the orders are old enough to be checked."""
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    seed_ledger(path, orders, fills)
    clock.advance(LATER_S)
    reader = LedgerReader(path)
    try:
        return ExchangeCheck("paper", reader, account, settings, clock.clock()).run()
    finally:
        reader.close()


class Account:
    """The exchange as reconciliation asks it: nothing open, one trade per symbol."""

    def open_orders(self) -> list[OrderView]:
        return []

    def trades(self, symbol: str, since: int | None, from_id: str | None,
               limit: int) -> TradePage:
        return TradePage((TRADES[symbol],), by_id=True)

    def lookup(self, ticket: OrderTicket) -> OrderView:
        raise AssertionError(f"no lookup expected: {ticket}")


def test_two_symbols_orders_with_one_order_id_are_each_compared_with_their_own_trades(
        tmp_path: Path) -> None:
    btc = ledger_order("od-btc", order_id="11", status="filled", amount="0.01",
                       price="60000", filled="0.01", fee="0.6", symbol=BTC)
    eth = ledger_order("od-eth", order_id="11", status="filled", amount="0.5",
                       price="3000", filled="0.5", fee="1.5", symbol=ETH)
    section = checked(tmp_path, Account(), ReconcileSettings(min_age_s=0.0),
                      [btc, eth], [("od-btc", TRADES[BTC]), ("od-eth", TRADES[ETH])])
    assert section.errors == []
    assert section.counts["trades"] == 2
    # every fill is counted as the exchange shows it: nothing to report or repair
    assert section.discrepancies == []
    assert section.repairs == []


def test_a_trade_missing_from_one_of_them_is_counted_for_that_order(tmp_path: Path) -> None:
    """The BTC order is known filled (its view said so) but its trade record was never
    read: reconciliation counts it for the BTC order, and the ETH order is as it was."""
    btc = ledger_order("od-btc", order_id="11", status="filled", amount="0.01",
                       price="60000", filled="0.01", fee="0.6", symbol=BTC)
    eth = ledger_order("od-eth", order_id="11", status="filled", amount="0.5",
                       price="3000", filled="0.5", fee="1.5", symbol=ETH)
    section = checked(tmp_path, Account(), ReconcileSettings(min_age_s=0.0),
                      [btc, eth], [("od-eth", TRADES[ETH])])
    assert section.errors == [] and section.discrepancies == []
    [repair] = section.repairs
    assert (repair.client_order_id, repair.trades) == ("od-btc", (TRADES[BTC],))


class Shared(Account):
    """The account as another program left it: an open order under the client id of an
    order of ours that was canceled."""

    def open_orders(self) -> list[OrderView]:
        return [OrderView("12", OrderStatus.OPEN, Decimal(0), None, None, None, symbol=BTC,
                          side="buy", type="limit", amount=Decimal("0.02"),
                          price=Decimal("50000"), client_order_id="od-btc")]

    def trades(self, symbol: str, since: int | None, from_id: str | None,
               limit: int) -> TradePage:
        return TradePage((), by_id=True)

    def lookup(self, ticket: OrderTicket) -> OrderView:
        assert ticket.order_id == "11", ticket
        return OrderView("11", OrderStatus.CANCELED, Decimal(0), None, None, None, symbol=BTC,
                         side="buy", type="limit", amount=Decimal("0.01"),
                         price=Decimal("60000"), client_order_id="od-btc")


def test_another_order_under_our_client_id_is_not_taken_for_ours(tmp_path: Path) -> None:
    section = checked(tmp_path, Shared(), ReconcileSettings(min_age_s=0.0, lookup_spacing_ms=0),
                      [ledger_order("od-btc", order_id="11", amount="0.01", price="60000")])
    assert section.errors == []
    # ours, looked up by its order id: canceled; the other is reported, not adopted (the
    # ledger holds its client id already)
    assert [(d["kind"], d["order_id"], d["repair"]) for d in section.discrepancies] == [
        ("status_mismatch", "11", True), ("unknown_on_exchange", "12", False)]
    [repair] = section.repairs
    assert repair.client_order_id == "od-btc" and repair.view is not None
    assert (repair.view.order_id, repair.view.status) == ("11", OrderStatus.CANCELED)


class Refilled(Account):
    """Trades of another order under the client id of our canceled one, listed with
    the client id (as the paper venue, okx and bybit list it)."""

    def trades(self, symbol: str, since: int | None, from_id: str | None,
               limit: int) -> TradePage:
        listed = TradeView("9", "12", "od-btc", Decimal("0.02"), Decimal("50000"),
                           Decimal("1"), "USD", 1_700_000_000_000, BTC)
        return TradePage((listed,) if symbol == BTC else (), by_id=True)

    def lookup(self, ticket: OrderTicket) -> OrderView:
        assert ticket.order_id == "12", ticket
        return OrderView("12", OrderStatus.FILLED, Decimal("0.02"), Decimal("50000"), "USD",
                         Decimal("1"), symbol=BTC, side="buy", type="limit",
                         amount=Decimal("0.02"), price=Decimal("50000"),
                         client_order_id="od-btc")


def test_another_orders_trades_under_our_client_id_are_not_compared_with_ours(
        tmp_path: Path) -> None:
    """Not an overfill of ours (0.02 traded against an order of 0.01 that filled
    nothing) but an order the ledger lacks."""
    section = checked(tmp_path, Refilled(), ReconcileSettings(min_age_s=0.0, lookup_spacing_ms=0),
                      [ledger_order("od-btc", order_id="11", status="canceled",
                                    amount="0.01", price="60000")])
    assert section.errors == []
    assert [(d["kind"], d["order_id"], d["repair"]) for d in section.discrepancies] == [
        ("unknown_on_exchange", "12", False)]
    assert section.repairs == []
