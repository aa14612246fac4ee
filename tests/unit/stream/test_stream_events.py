"""The stream reads binance's executionReport events itself: every report must equal the
one ccxt.pro's own parsing gave (`parse_ws_order` and `parse_ws_trade`), which the daemon
used before and which stays the reference here, but for the order's fee (see
`through_ccxt`)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.exchange.client import trade_of, view_of
from actors.exchange.drivers.ccxt_driver import DriverSettings
from actors.exchange.messages import TradeView
from actors.order.messages import ExchangeReport
from actors.stream.events import SOURCE, EventReader, market_of
from actors.stream.pro_driver import build_binance_pro
from venue.model import MARKETS

PRO: Any = build_binance_pro(DriverSettings("key", "secret", "http://127.0.0.1:1"),
                             lambda _event: None).pro
PRO.set_markets([spec.to_ccxt() for spec in MARKETS.values()])
READER = EventReader(PRO)


def through_ccxt(client: Any, event: dict[str, Any]) -> ExchangeReport | None:
    """The report as ccxt.pro's parsing made it (the daemon's reading until it read the
    fields itself)."""
    market = market_of(client, event.get("s"))
    raw = client.parse_ws_order(event, market)
    client_order_id = event.get("C") or event.get("c")
    if not client_order_id or raw.get("id") in (None, ""):
        return None
    # but for the fee: ccxt shows the event's trade's commission (`n`) as the order's
    # fee, which the stream leaves to the sum of the order's trades
    view = replace(view_of(raw, market), client_order_id=client_order_id, trades=(),
                   fee_cost=None, fee_currency=None)
    trades: tuple[TradeView, ...] = ()
    if event.get("x") == "TRADE" and int(event.get("t", -1)) >= 0:
        trade = trade_of(client.parse_ws_trade(event, market))
        trades = (replace(trade, client_order_id=client_order_id),)
    return ExchangeReport(client_order_id, "fetch", "ok", view, trades=trades,
                          source=SOURCE, trades_source=SOURCE)


def decimal_text(places: int = 8) -> st.SearchStrategy[str]:
    return st.decimals(min_value=0, max_value=100_000, places=places).map(
        lambda value: f"{value:.{places}f}")


@st.composite
def execution_reports(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["NEW", "TRADE", "CANCELED", "EXPIRED", "REJECTED"]))
    status = draw(st.sampled_from(["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED",
                                   "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED",
                                   "PENDING_CANCEL"]))
    canceled_cid = draw(st.sampled_from(["", "orig-1"]))
    event: dict[str, Any] = {
        "e": "executionReport", "E": 1_700_000_000_123,
        "s": draw(st.sampled_from(["SOLUSD", "BTCUSD", "NOSUCH"])),
        "c": draw(st.sampled_from(["od-1", "web_x"])), "C": canceled_cid,
        "S": draw(st.sampled_from(["BUY", "SELL"])),
        "o": draw(st.sampled_from(["LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT"])),
        "f": draw(st.sampled_from(["GTC", "IOC", "FOK"])),
        "q": draw(decimal_text()), "p": draw(st.sampled_from(["0.00000000"])
                                             | decimal_text(2)),
        "P": "0.00000000", "x": kind, "X": status, "r": "NONE",
        "i": draw(st.integers(0, 10**9)), "l": draw(decimal_text()),
        "z": draw(decimal_text()), "L": draw(decimal_text(2)),
        "n": draw(st.sampled_from(["0", "0.00000000"]) | decimal_text()),
        "N": draw(st.sampled_from([None, "USD", "SOL", "BNB"])),
        "T": 1_700_000_000_100, "t": draw(st.integers(-1, 10**9)), "I": 77,
        "w": False, "m": draw(st.booleans()), "M": True, "O": 1_700_000_000_000,
        "Z": draw(decimal_text()), "Y": "0.00000000", "Q": "0.00000000",
        "W": 1_700_000_000_000, "V": "NONE"}
    for key in draw(st.lists(st.sampled_from(["n", "N", "L", "Z"]), max_size=2, unique=True)):
        del event[key]
    return event


@settings(max_examples=400, deadline=None)
@given(execution_reports())
def test_a_report_reads_as_ccxt_pro_read_it(event: dict[str, Any]) -> None:
    assert READER.report(event) == through_ccxt(PRO, event)


def test_a_fill_keeps_its_trade_and_the_order_its_average() -> None:
    event = {"e": "executionReport", "s": "SOLUSD", "c": "od-1", "C": "", "S": "BUY",
             "o": "MARKET", "q": "0.30000000", "p": "0.00000000", "x": "TRADE",
             "X": "FILLED", "i": 12, "l": "0.10000000", "z": "0.30000000",
             "L": "181.00000000", "n": "0.01810000", "N": "USD", "T": 1_700_000_000_100,
             "t": 33, "Z": "54.20000000"}
    report = READER.report(event)
    assert report is not None and report.view is not None
    assert (report.view.status, str(report.view.filled)) == ("filled", "0.3")
    assert str(report.view.average_price) == "180.66666666666666"  # a float, as ccxt had it
    (trade,) = report.trades
    assert (trade.trade_id, trade.order_id, str(trade.amount), str(trade.price)) == (
        "33", "12", "0.1", "181.0")
    assert report == through_ccxt(PRO, event)


def test_a_market_loaded_again_is_read_anew() -> None:
    pro: Any = build_binance_pro(DriverSettings("key", "secret", "http://127.0.0.1:1"),
                                 lambda _event: None).pro
    markets = [spec.to_ccxt() for spec in MARKETS.values()]
    pro.set_markets(markets)
    reader = EventReader(pro)
    event = {"e": "executionReport", "s": "SOLUSD", "c": "od-1", "C": "", "S": "BUY",
             "o": "LIMIT", "q": "0.30000000", "p": "180.00000000", "x": "NEW", "X": "NEW",
             "i": 12, "z": "0.00000000", "t": -1}
    first = reader.report(event)
    assert first is not None and first.view is not None
    sol = next(market for market in markets if market["id"] == "SOLUSD")
    coarser = {**sol, "precision": {**sol["precision"], "amount": 0.1}}
    pro.set_markets([coarser if market is sol else market for market in markets])
    again = reader.report(event)
    assert again is not None and again.view is not None
    assert first.view.amount_step != again.view.amount_step == Decimal("0.1")
    assert again == through_ccxt(pro, event)


@pytest.mark.parametrize("field, value", [("n", "Infinity"), ("p", "abc"), ("Z", "abc")])
def test_an_event_ccxt_cannot_read_is_not_read(field: str, value: str) -> None:
    event = {"e": "executionReport", "s": "SOLUSD", "c": "od-1", "C": "", "S": "BUY",
             "o": "MARKET", "q": "0.30000000", "p": "0.00000000", "x": "TRADE",
             "X": "FILLED", "i": 12, "l": "0.10000000", "z": "0.30000000",
             "L": "181.00000000", "n": "0.01810000", "N": "USD", "T": 1_700_000_000_100,
             "t": 33, "Z": "54.20000000", field: value}
    with pytest.raises(Exception):  # noqa: B017 - whichever ccxt's reading raises
        through_ccxt(PRO, event)
    with pytest.raises(Exception):  # noqa: B017 - the event is then skipped
        READER.report(event)
