"""Stream events as reports for OrderActor (its StreamEvents message): each
`executionReport` becomes the report an order lookup would give (its view, and the trade
it carries), so the stream's news is applied on the same idempotent path as tracking's
reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actors.exchange.client import trade_of, view_of
from actors.exchange.messages import TradeView
from actors.order.messages import ExchangeReport

SOURCE = "stream"
"""The confirmation trail's source of what the stream showed."""


def report_of(client: Any, event: dict[str, Any]) -> ExchangeReport | None:
    """The report of one raw executionReport, through ccxt.pro's own parsing; None for
    an event naming no order. A cancel's event names the canceled order in `C`."""
    market = _market(client, event.get("s"))
    raw = client.parse_ws_order(event, market)
    client_order_id = event.get("C") or event.get("c")
    if not client_order_id or raw.get("id") in (None, ""):
        return None
    view = replace(view_of(raw, market), client_order_id=client_order_id, trades=())
    trades: tuple[TradeView, ...] = ()
    if event.get("x") == "TRADE" and int(event.get("t", -1)) >= 0:
        trade = trade_of(client.parse_ws_trade(event, market))
        trades = (replace(trade, client_order_id=client_order_id),)
    return ExchangeReport(client_order_id, "fetch", "ok", view, trades=trades,
                          source=SOURCE, trades_source=SOURCE)


def _market(client: Any, exchange_symbol: Any) -> dict[str, Any] | None:
    by_id = getattr(client, "markets_by_id", None) or {}
    found = by_id.get(exchange_symbol)
    if isinstance(found, list):
        found = found[0] if found else None
    return found if isinstance(found, dict) else None


class Sequence:
    """The venue numbers its events one by one (`I`): a jump is a lost event, a number
    seen before a duplicate. An exchange that does not number them (binance's `I` is
    not a sequence) shows neither."""

    def __init__(self) -> None:
        self.last: int | None = None

    def see(self, number: int | None) -> str:
        """"ok", "gap" or "duplicate" for the event numbered `number` (None: unnumbered)."""
        if number is None:
            return "ok"
        last, self.last = self.last, number if self.last is None else max(self.last, number)
        if last is None or number == last + 1:
            return "ok"
        return "duplicate" if number <= last else "gap"
