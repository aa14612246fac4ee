"""binance's user-data stream in the paper venue: its messages, no sockets.

The WebSocket API (`/ws-api/v3`) answers a request `{"id", "method", "params"}`
with `{"id", "status", "result"}` or `{"id", "status", "error": {"code", "msg"}}`;
a subscription's events come as `{"subscriptionId", "event": {...}}`, an order's
changes as `executionReport` events in binance's field names
(binance-spot-api-docs: web-socket-api.md, user-data-stream.md).
"""

from __future__ import annotations

from typing import Any

import orjson

from venue.binance.rest import BinanceError, _num, illegal, status_of
from venue.model import MARKETS, VenueEvent

SUBSCRIBE = "userDataStream.subscribe.signature"
UNSUBSCRIBE = "userDataStream.unsubscribe"
EXECUTION = {"new": "NEW", "trade": "TRADE", "canceled": "CANCELED", "expired": "EXPIRED",
             "rejected": "REJECTED"}
"""The execution type (`x`) of each kind of venue event."""
REJECT_REASON = {"insufficient_balance": "INSUFFICIENT_BALANCES",
                 "would_take": "WOULD_MATCH_IMMEDIATELY"}
EXPIRY_REASON = {"IOC": "UNFILLED_IOC_QUANTITY_EXPIRED", "FOK": "UNFILLED_FOK_ORDER_EXPIRED"}
CANCEL_ID_PREFIX = "paper-cancel-"
"""binance names a cancel by a client id of its own (`c`); the order's is then in `C`."""


def execution_report(event: VenueEvent) -> dict[str, Any]:
    """The `executionReport` of one venue event."""
    rec, trade = event.order, event.trade
    spec = MARKETS[rec["symbol"]]
    kind = event.kind
    on_book = rec["status"] == "open" and rec["reservedCurrency"] is not None
    canceled = kind == "canceled"
    body: dict[str, Any] = {
        "e": "executionReport", "E": event.at_ms, "s": spec.base + spec.quote,
        "c": CANCEL_ID_PREFIX + rec["id"] if canceled else rec["clientOrderId"],
        "S": rec["side"].upper(), "o": rec["type"].upper(), "f": rec["timeInForce"],
        "q": _num(rec["amount"]), "p": _num(rec["price"]), "P": "0", "F": "0", "g": -1,
        "C": rec["clientOrderId"] if canceled else "",
        "x": EXECUTION[kind], "X": status_of(rec),
        "r": REJECT_REASON.get(event.reason or "", "NONE"),
        "i": int(rec["id"]),
        "l": _num(trade["amount"] if trade else None), "z": _num(rec["filled"]),
        "L": _num(trade["price"] if trade else None),
        "n": _num(trade["feeCost"] if trade else None),
        "N": trade["feeCurrency"] if trade else None,
        "T": trade["timestamp"] if trade else event.at_ms,
        "t": int(trade["id"]) if trade else -1,
        "I": event.seq, "w": on_book,
        "m": bool(trade and trade["takerOrMaker"] == "maker"), "M": False,
        "O": rec["timestamp"], "Z": _num(rec["cost"]),
        "Y": _num(trade["cost"] if trade else None), "Q": "0", "V": "NONE",
    }
    if on_book:
        body["W"] = rec["timestamp"]
    if kind == "expired":
        body["eR"] = EXPIRY_REASON.get(rec["timeInForce"], "INSUFFICIENT_LIQUIDITY")
    return body


def event_text(subscription_id: int | None, event: dict[str, Any]) -> bytes:
    """An event frame's text: for a subscription, wrapped with its id."""
    wrapped = {"event": event} if subscription_id is None else {
        "subscriptionId": subscription_id, "event": event}
    return orjson.dumps(wrapped)


def reply_text(request_id: Any, result: Any) -> bytes:
    return orjson.dumps({"id": request_id, "status": 200, "result": result})


def error_text(request_id: Any, error: BinanceError, data: dict[str, Any] | None = None
               ) -> bytes:
    body: dict[str, Any] = {"code": error.code, "msg": error.msg}
    if data is not None:
        body["data"] = data
    return orjson.dumps({"id": request_id, "status": error.status, "error": body})


def param_text(name: str, value: Any) -> str:
    """A request param as it is signed: its JSON scalar written out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise illegal(name)


def signed_payload(params: dict[str, Any]) -> tuple[dict[str, str], str, str | None]:
    """(params as text, the payload binance signs, the signature): every param but
    `signature`, sorted by name, as name=value joined by '&'."""
    texts = {name: param_text(name, value) for name, value in params.items()}
    signature = texts.pop("signature", None)
    payload = "&".join(f"{name}={texts[name]}" for name in sorted(texts))
    return texts, payload, signature.lower() if signature is not None else None
