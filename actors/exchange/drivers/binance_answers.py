"""binance's FULL answer to a spot create, read as ccxt's `parse_order` reads it.

ccxt's `parse_order` runs every answer through `safe_order`, generic bookkeeping for
every exchange and market type: about 48 µs on this machine for a create that filled
at once, on the worker thread of every order. The answer to a spot create has one shape
(its `fills` tell it apart), and the fields the daemon reads are taken here as ccxt
takes them, its numbers through a float included
(tests/unit/exchange/test_binance_answers.py holds the two readings equal). Any other
answer goes to ccxt.
"""

from __future__ import annotations

from typing import Any

from ccxt.base.precise import Precise

SPOT_ORDER_TYPES = {"limit_maker": "limit", "stop_loss_limit": "limit",
                    "stop_loss": "market", "take_profit_limit": "limit",
                    "take_profit": "market"}
"""binance's spot order types as ccxt names them (`parse_order_type_by_market`)."""


TIME_KEYS = ("time", "createTime", "workingTime", "transactTime", "updateTime", "createdAt")
"""Where ccxt finds an order's time, in its order."""


FULL_KEYS = ("orderId", "status", "executedQty", "cummulativeQuoteQty")
"""Fields every FULL answer has; one without them is left to ccxt."""


def is_full_spot_answer(order: Any, market: Any) -> bool:
    """Whether `order` is a spot create's FULL answer, which `full_answer` reads."""
    return (isinstance(order, dict) and isinstance(order.get("fills"), list)
            and all(order.get(key) is not None for key in FULL_KEYS)
            and "code" not in order and "cumQuote" not in order
            and "positionSide" not in order
            and (market is None or market.get("spot") is True))


def full_answer(client: Any, order: dict[str, Any], market: Any) -> dict[str, Any]:
    """The ccxt order structure of a spot create's FULL answer (what the daemon reads of
    it: ids, terms, status, amounts, average, fee and the fills as trades)."""
    market = client.safe_market(order.get("symbol"), market, None, "spot")
    symbol = market["symbol"]
    status = client.parse_order_status(order.get("status"))
    filled = order.get("executedQty") or "0"
    cost = order.get("cummulativeQuoteQty")
    average = average_of(cost, filled)
    kind = str(order.get("type") or "").lower()
    # ccxt sorts an answer's trades by time (none here), then by id as text
    trades = client.sort_by_2([_fill(client, fill, symbol) for fill in order["fills"]],
                              "timestamp", "id")
    fees = client.reduce_fees_by_currency([
        {"cost": fill.get("commission"),
         "currency": client.safe_currency_code(fill.get("commissionAsset"))}
        for fill in order["fills"] if "commission" in fill])
    fee = None
    if len(fees) == 1:
        fee = {**fees[0], "cost": number(fees[0].get("cost"))}
    price = nonzero(order.get("price"))
    if price is None and kind == "market":
        price = average
    amount = nonzero(order.get("origQty"))
    if amount is None and status == "closed":
        amount = filled
    return {
        "info": order, "id": _text(order.get("orderId")),
        "clientOrderId": order.get("clientOrderId"),
        "timestamp": _first_int(order, TIME_KEYS),
        "symbol": symbol, "type": SPOT_ORDER_TYPES.get(kind, kind) or None,
        "side": str(order.get("side") or "").lower() or None,
        "price": number(price), "amount": number(amount), "filled": number(filled),
        "cost": number(cost), "average": number(average), "status": status,
        "fee": fee, "trades": trades,
    }


def _fill(client: Any, fill: dict[str, Any], symbol: str) -> dict[str, Any]:
    """One of the answer's fills as ccxt's trade structure (the part the daemon reads)."""
    fee = None
    if "commission" in fill:
        fee = {"cost": number(fill.get("commission")),
               "currency": client.safe_currency_code(fill.get("commissionAsset"))}
    return {"info": fill, "id": _text(fill.get("tradeId")), "order": None,
            "timestamp": None, "symbol": symbol,
            "price": number(fill.get("price")), "amount": number(fill.get("qty")),
            "fee": fee}


def _first_int(order: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = order.get(key)
        if value is not None:
            return int(value)
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def number(text: Any) -> float | None:
    """ccxt's number of a decimal string (a float)."""
    return None if text is None or text == "" else float(text)


def nonzero(text: Any) -> Any:
    """A decimal string, None when it is zero (ccxt's `omit_zero`)."""
    return None if text is None or Precise.string_eq(str(text), "0") else text


def average_of(cost: Any, filled: Any) -> str | None:
    """ccxt's average price: cost / filled, to 18 places, once something filled."""
    if cost is None or filled is None or not Precise.string_gt(str(filled), "0"):
        return None
    return str(Precise.string_div(str(cost), str(filled)))
