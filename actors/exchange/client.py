"""The ccxt-style interface an ExchangeActor talks through, and translation of
ccxt's order structure into our terms."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from actors.exchange.messages import OrderView, TradeView
from protocol.codec import format_decimal
from protocol.messages import OrderStatus, OrderType


class ExchangeClient(Protocol):
    """The subset of the sync `ccxt.Exchange` API orderd uses (the paper venue too)."""

    id: str
    """ccxt's exchange id ("binance", ...): it picks the client order id params."""

    @property
    def markets(self) -> dict[str, Any] | None:
        """Symbol -> market structure, once loaded (empty or None before)."""

    def load_markets(self, reload: bool = False) -> dict[str, Any]: ...

    def set_markets_from_exchange(self, source: Any) -> Any:
        """Share the markets another client of the same exchange loaded: no request, and
        no rebuilding of ccxt's indexes of them (0.2 s for 3,500 markets)."""

    def create_order(self, symbol: str, type: str, side: str, amount: Any,
                     price: Any = None, params: dict[str, Any] | None = None) -> Any: ...

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: dict[str, Any] | None = None) -> Any: ...

    def cancel_order(self, id: str | None, symbol: str | None = None,
                     params: dict[str, Any] | None = None) -> Any: ...

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None,
                          limit: int | None = None,
                          params: dict[str, Any] | None = None) -> Any: ...

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None,
                        limit: int | None = None, params: dict[str, Any] | None = None) -> Any: ...

    def fetch_order_trades(self, id: str, symbol: str | None = None, since: int | None = None,
                           limit: int | None = None,
                           params: dict[str, Any] | None = None) -> Any: ...

    def fetch_balance(self, params: dict[str, Any] | None = None) -> Any: ...

    def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> Any: ...


CCXT_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
               "cancelled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
               "rejected": OrderStatus.REJECTED}


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def view_of(raw: dict[str, Any], market: dict[str, Any] | None = None) -> OrderView:
    """Our view of a ccxt order structure; `market` adds its precision. An answer without
    the exchange's order id (ccxt makes one of an unreadable body) is no view: ValueError."""
    if raw.get("id") in (None, ""):
        raise ValueError("the answer names no order id")
    filled = to_decimal(raw.get("filled")) or Decimal(0)
    fee = raw.get("fee") or {}
    return OrderView(
        order_id=str(raw["id"]),
        status=status_of(raw.get("status"), filled),
        filled=filled,
        average_price=to_decimal(raw.get("average")) if filled > 0 else None,
        fee_currency=fee.get("currency"),
        fee_cost=to_decimal(fee.get("cost")),
        symbol=raw.get("symbol"),
        side=raw.get("side"),
        type=raw.get("type"),
        amount=to_decimal(raw.get("amount")),
        # ccxt shows a market order's average as its price: it has no limit to compare
        price=to_decimal(raw.get("price")) if raw.get("type") == "limit" else None,
        client_order_id=raw.get("clientOrderId"),
        amount_step=market_step(market, "amount"),
        price_step=market_step(market, "price"),
        trades=_carried_trades(raw),
    )


def status_of(ccxt_status: Any, filled: Decimal) -> OrderStatus:
    """Our status of ccxt's word for an order's status: an open order with something
    filled is partially filled."""
    status = CCXT_STATUS.get(str(ccxt_status), OrderStatus.OPEN)
    if status == OrderStatus.OPEN and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def settles(raw: dict[str, Any], view: OrderView) -> bool:
    """Whether an answer tells the order's outcome in full, so no lookup need follow:
    its status and filled amount, all its terms, and, for what filled, trade records
    that add up to it (binance's FULL create answer does; its ACK and RESULT ones, or
    fills that do not add up, leave the outcome open). A resting order, partially
    filled or not, is settled too: tracking follows it from here."""
    if raw.get("status") not in (*CCXT_STATUS, "open") or raw.get("filled") is None:
        return False
    if None in (view.symbol, view.side, view.type, view.amount):
        return False
    if view.type == OrderType.LIMIT and view.price is None:
        return False
    if view.status == OrderStatus.FILLED and view.filled != view.amount:
        return False
    return sum((t.amount for t in view.trades), Decimal(0)) == view.filled


def _carried_trades(raw: dict[str, Any]) -> tuple[TradeView, ...]:
    """The trades an order's answer carries, as the order's: a fill in binance's create
    answer names neither its order nor its time, which are the order's."""
    order_id, timestamp = str(raw["id"]), int(raw.get("timestamp") or 0)
    trades = (trade_of(t) for t in raw.get("trades") or () if t.get("id") is not None)
    return tuple(replace(t, order_id=order_id, timestamp=t.timestamp or timestamp)
                 for t in trades)


def market_step(market: dict[str, Any] | None, which: str) -> Decimal | None:
    """The market's `amount` or `price` step (ccxt's precision in TICK_SIZE mode)."""
    if not market:
        return None
    return to_decimal((market.get("precision") or {}).get(which))


def trade_of(raw: dict[str, Any]) -> TradeView:
    """Our view of a ccxt trade structure."""
    fee = raw.get("fee") or {}
    return TradeView(
        trade_id=str(raw["id"]),
        order_id=str(raw.get("order")),
        client_order_id=raw.get("clientOrderId") or (raw.get("info") or {}).get("clientOrderId"),
        amount=to_decimal(raw.get("amount")) or Decimal(0),
        price=to_decimal(raw.get("price")) or Decimal(0),
        fee_cost=to_decimal(fee.get("cost")) or Decimal(0),
        fee_currency=fee.get("currency"),
        timestamp=int(raw.get("timestamp") or 0),
        symbol=raw.get("symbol"),
    )


BALANCE_KEYS = ("free", "used", "total")
UNIFIED_BALANCE_KEYS = frozenset({"info", "timestamp", "datetime", *BALANCE_KEYS})


def balances_of(raw: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """ccxt's `fetch_balance` answer as `{currency: {"free", "used", "total"}}` in decimal
    strings; currencies holding nothing are left out (binance lists every asset)."""
    balances: dict[str, dict[str, str | None]] = {}
    for currency, entry in raw.items():
        if currency in UNIFIED_BALANCE_KEYS or not isinstance(entry, dict):
            continue
        amounts = {key: to_decimal(entry.get(key)) for key in BALANCE_KEYS}
        if not any(amounts.values()):
            continue
        balances[currency] = {key: None if value is None else format_decimal(value)
                              for key, value in amounts.items()}
    return balances
