"""The binance driver reads a spot create's FULL answer itself: what the daemon takes of
it (the order's view, whether it settles the order, its fills) must equal what ccxt's
own `parse_order`, the reference here, gives."""

from __future__ import annotations

from typing import Any

import ccxt
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.exchange.client import settles, view_of
from actors.exchange.drivers.binance_answers import is_full_spot_answer
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from venue.model import MARKETS

CLIENT: Any = build_binance(DriverSettings("key", "secret", "http://127.0.0.1:1"))
CLIENT.set_markets([spec.to_ccxt() for spec in MARKETS.values()])


def read_both(answer: dict[str, Any], symbol: str | None) -> tuple[Any, Any]:
    market = None if symbol is None else CLIENT.markets[symbol]
    ours = CLIENT.parse_order(dict(answer), market)
    reference = ccxt.binance.parse_order(CLIENT, dict(answer), market)
    return ours, reference


def decimal_text(places: int) -> st.SearchStrategy[str]:
    return st.decimals(min_value=0, max_value=10_000, places=places).map(
        lambda value: f"{value:.{places}f}")


@st.composite
def fills(draw: st.DrawFn) -> dict[str, Any]:
    return {"price": draw(decimal_text(2)), "qty": draw(decimal_text(8)),
            "commission": draw(decimal_text(8)),
            "commissionAsset": draw(st.sampled_from(["USD", "SOL", "BNB"])),
            "tradeId": draw(st.integers(0, 10**9))}


@st.composite
def full_answers(draw: st.DrawFn) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "symbol": draw(st.sampled_from(["SOLUSD", "BTCUSD"])),
        "orderId": draw(st.integers(0, 10**9)), "orderListId": -1,
        "clientOrderId": draw(st.sampled_from(["od-1", "x"])),
        "transactTime": 1_700_000_000_000,
        "price": draw(st.sampled_from(["0.00000000"]) | decimal_text(2)),
        "origQty": draw(decimal_text(8)), "executedQty": draw(decimal_text(8)),
        "cummulativeQuoteQty": draw(decimal_text(8)),
        "status": draw(st.sampled_from(["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED",
                                        "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"])),
        "timeInForce": draw(st.sampled_from(["GTC", "IOC", "FOK"])),
        "type": draw(st.sampled_from(["LIMIT", "MARKET", "LIMIT_MAKER"])),
        "side": draw(st.sampled_from(["BUY", "SELL"])),
        "workingTime": draw(st.sampled_from([1_700_000_000_001, -1])),
        "selfTradePreventionMode": "NONE",
        "fills": draw(st.lists(fills(), max_size=3)),
    }
    for key in draw(st.lists(st.sampled_from(["workingTime", "cummulativeQuoteQty"]),
                             max_size=2, unique=True)):
        del answer[key]
    return answer


@settings(max_examples=400, deadline=None)
@given(full_answers(), st.sampled_from(["SOL/USD", None]))
def test_a_full_answer_reads_as_ccxt_read_it(answer: dict[str, Any],
                                             symbol: str | None) -> None:
    ours, reference = read_both(answer, symbol)
    market = CLIENT.markets[ours["symbol"]]
    assert view_of(ours, market) == view_of(reference, market)
    assert settles(ours, view_of(ours, market)) == settles(reference,
                                                           view_of(reference, market))
    assert ours["timestamp"] == reference["timestamp"]


def test_other_answers_are_ccxt_s_to_read() -> None:
    lookup = {"symbol": "SOLUSD", "orderId": 7, "clientOrderId": "od-1", "price": "0",
              "origQty": "0.1", "executedQty": "0.1", "cummulativeQuoteQty": "18",
              "status": "FILLED", "type": "MARKET", "side": "BUY", "time": 1}
    assert not is_full_spot_answer(lookup, CLIENT.markets["SOL/USD"])
    ours, reference = read_both(lookup, "SOL/USD")
    assert ours == reference


def test_a_filled_market_order_settles_with_its_fills() -> None:
    answer = {"symbol": "SOLUSD", "orderId": 12, "clientOrderId": "od-1",
              "transactTime": 1_700_000_000_000, "price": "0.00000000",
              "origQty": "0.30000000", "executedQty": "0.30000000",
              "cummulativeQuoteQty": "54.20000000", "status": "FILLED", "type": "MARKET",
              "side": "BUY", "fills": [
                  {"price": "180.00000000", "qty": "0.20000000", "commission": "0.036",
                   "commissionAsset": "USD", "tradeId": 1},
                  {"price": "182.00000000", "qty": "0.10000000", "commission": "0.0182",
                   "commissionAsset": "USD", "tradeId": 2}]}
    ours, _ = read_both(answer, "SOL/USD")
    view = view_of(ours, CLIENT.markets["SOL/USD"])
    assert settles(ours, view)
    assert [(t.trade_id, str(t.amount), str(t.price)) for t in view.trades] == [
        ("1", "0.2", "180.0"), ("2", "0.1", "182.0")]
    assert (str(view.fee_cost), view.fee_currency) == ("0.0542", "USD")
