"""Data model of the paper venue: markets, balances, orders, trades.

Everything is Decimal inside; `record()` gives the JSON-able raw form that is
persisted and shown as `info`, `to_ccxt()` the unified ccxt structure (floats,
as ccxt returns them).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
QUOTE = "USD"
PRICE_STEP = Decimal("0.01")
MIN_COST = Decimal(5)
TAKER_FEE = Decimal("0.001")
MAKER_FEE = Decimal("0.001")

# Every new account starts with these free balances.
STARTING_BALANCES: dict[str, Decimal] = {
    "USD": Decimal(100000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "SOL": Decimal(1000),
}


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One spot market and its trading rules."""

    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    start_price: Decimal
    price_step: Decimal = PRICE_STEP
    min_cost: Decimal = MIN_COST

    def to_ccxt(self) -> dict[str, Any]:
        """The ccxt market structure (TICK_SIZE precision mode)."""
        return {
            "id": self.base + self.quote,
            "symbol": self.symbol,
            "base": self.base,
            "quote": self.quote,
            "baseId": self.base,
            "quoteId": self.quote,
            "settle": None,
            "active": True,
            "type": "spot",
            "spot": True,
            "margin": False,
            "swap": False,
            "future": False,
            "option": False,
            "contract": False,
            "linear": None,
            "inverse": None,
            "contractSize": None,
            "taker": float(TAKER_FEE),
            "maker": float(MAKER_FEE),
            "precision": {
                "amount": float(self.amount_step),
                "price": float(self.price_step),
            },
            "limits": {
                "amount": {"min": float(self.amount_step), "max": None},
                "price": {"min": float(self.price_step), "max": None},
                "cost": {"min": float(self.min_cost), "max": None},
                "leverage": {"min": None, "max": None},
            },
            "info": {},
        }


MARKETS: dict[str, MarketSpec] = {
    spec.symbol: spec
    for spec in (
        MarketSpec("BTC/USD", "BTC", QUOTE, Decimal("0.00001"), Decimal(95000)),
        MarketSpec("ETH/USD", "ETH", QUOTE, Decimal("0.0001"), Decimal(3300)),
        MarketSpec("SOL/USD", "SOL", QUOTE, Decimal("0.01"), Decimal(180)),
    )
}


@functools.lru_cache(maxsize=1024)
def _iso_seconds(seconds: int) -> str:
    # Cached: formatting dominates building an order structure, and calls
    # cluster in the same few seconds.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso8601(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ccxt formats them: ISO 8601, ms, Z."""
    if ms is None:
        return None
    return f"{_iso_seconds(ms // 1000)}.{ms % 1000:03d}Z"


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass(slots=True)
class Balance:
    """One currency of an account; `used` is held by resting orders."""

    free: Decimal
    used: Decimal = ZERO


Account = dict[str, Balance]


def new_account() -> Account:
    return {cur: Balance(amount) for cur, amount in STARTING_BALANCES.items()}


def account_record(account: Account) -> dict[str, list[str]]:
    return {cur: [str(b.free), str(b.used)] for cur, b in account.items()}


def account_from_record(record: dict[str, list[str]]) -> Account:
    return {cur: Balance(Decimal(free), Decimal(used)) for cur, (free, used) in record.items()}


def balance_to_ccxt(account: Account, ms: int) -> dict[str, Any]:
    """The ccxt balance structure: per-currency entries plus free/used/total maps."""
    result: dict[str, Any] = {
        "info": account_record(account),
        "timestamp": ms,
        "datetime": iso8601(ms),
        "free": {},
        "used": {},
        "total": {},
    }
    for cur, bal in account.items():
        free, used, total = float(bal.free), float(bal.used), float(bal.free + bal.used)
        result[cur] = {"free": free, "used": used, "total": total}
        result["free"][cur] = free
        result["used"][cur] = used
        result["total"][cur] = total
    return result


@dataclass(slots=True)
class Order:
    """An order on the venue. A price crossing its limit fills what remains of it at
    once; an operator's trade (`PaperVenue.trade`) may fill part of it, the rest staying
    open, `filled`, `cost` and `fee_cost` adding up its trades."""

    id: int
    account: str
    client_order_id: str
    symbol: str
    type: str
    side: str
    time_in_force: str
    price: Decimal | None
    amount: Decimal
    timestamp: int
    status: str = "open"
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee_cost: Decimal | None = None
    fee_currency: str | None = None
    last_trade_timestamp: int | None = None
    # What a resting order holds out of `free` (quote for buys, base for sells).
    reserved: Decimal = ZERO
    reserved_currency: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "account": self.account,
            "clientOrderId": self.client_order_id,
            "symbol": self.symbol,
            "type": self.type,
            "side": self.side,
            "timeInForce": self.time_in_force,
            "price": _str(self.price),
            "amount": str(self.amount),
            "timestamp": self.timestamp,
            "status": self.status,
            "filled": str(self.filled),
            "cost": str(self.cost),
            "feeCost": _str(self.fee_cost),
            "feeCurrency": self.fee_currency,
            "lastTradeTimestamp": self.last_trade_timestamp,
            "reserved": str(self.reserved),
            "reservedCurrency": self.reserved_currency,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Order:
        return cls(
            id=int(rec["id"]),
            account=rec["account"],
            client_order_id=rec["clientOrderId"],
            symbol=rec["symbol"],
            type=rec["type"],
            side=rec["side"],
            time_in_force=rec["timeInForce"],
            price=_dec(rec["price"]),
            amount=Decimal(rec["amount"]),
            timestamp=int(rec["timestamp"]),
            status=rec["status"],
            filled=Decimal(rec["filled"]),
            cost=Decimal(rec["cost"]),
            fee_cost=_dec(rec["feeCost"]),
            fee_currency=rec["feeCurrency"],
            last_trade_timestamp=rec["lastTradeTimestamp"],
            reserved=Decimal(rec["reserved"]),
            reserved_currency=rec["reservedCurrency"],
        )

    def to_ccxt(self) -> dict[str, Any]:
        average = self.cost / self.filled if self.filled else None
        fee = None
        if self.fee_cost is not None:
            fee = {"currency": self.fee_currency, "cost": float(self.fee_cost)}
        # ccxt reports a market order's price as its average fill price.
        price = self.price if self.price is not None else average
        return {
            "id": str(self.id),
            "clientOrderId": self.client_order_id,
            "timestamp": self.timestamp,
            "datetime": iso8601(self.timestamp),
            "lastTradeTimestamp": self.last_trade_timestamp,
            "lastUpdateTimestamp": self.last_trade_timestamp,
            "symbol": self.symbol,
            "type": self.type,
            "timeInForce": self.time_in_force,
            "postOnly": False,
            "reduceOnly": None,
            "side": self.side,
            "price": _float(price),
            "triggerPrice": None,
            "stopPrice": None,
            "average": _float(average),
            "amount": float(self.amount),
            "filled": float(self.filled),
            "remaining": float(self.amount - self.filled),
            "cost": float(self.cost),
            "status": self.status,
            "fee": fee,
            "fees": [] if fee is None else [dict(fee)],
            "trades": [],
            "info": self.record(),
        }


@dataclass(slots=True)
class Trade:
    """One fill of an order."""

    id: int
    order_id: int
    account: str
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee_cost: Decimal
    fee_currency: str
    timestamp: int
    taker_or_maker: str
    order_type: str

    def record(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "orderId": str(self.order_id),
            "account": self.account,
            "clientOrderId": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "price": str(self.price),
            "amount": str(self.amount),
            "cost": str(self.cost),
            "feeCost": str(self.fee_cost),
            "feeCurrency": self.fee_currency,
            "timestamp": self.timestamp,
            "takerOrMaker": self.taker_or_maker,
            "orderType": self.order_type,
        }

    def to_ccxt(self) -> dict[str, Any]:
        return trade_to_ccxt(self.record())


def trade_to_ccxt(rec: dict[str, Any]) -> dict[str, Any]:
    """The ccxt structure of a trade, straight from its record: a page of stored trades
    is shown without building a Trade for each (the float of a decimal's text is the
    float of the decimal, so the answer is the same)."""
    fee = {"currency": rec["feeCurrency"], "cost": float(rec["feeCost"])}
    return {
        "id": rec["id"],
        "order": rec["orderId"],
        "clientOrderId": rec["clientOrderId"],
        "timestamp": rec["timestamp"],
        "datetime": iso8601(rec["timestamp"]),
        "symbol": rec["symbol"],
        "type": rec["orderType"],
        "side": rec["side"],
        "takerOrMaker": rec["takerOrMaker"],
        "price": float(rec["price"]),
        "amount": float(rec["amount"]),
        "cost": float(rec["cost"]),
        "fee": fee,
        "fees": [dict(fee)],
        "info": rec,
    }


@dataclass(frozen=True, slots=True)
class VenueEvent:
    """A change to one order, as the venue's listeners (user-data streams) see it."""

    kind: str
    """One of EVENT_KINDS."""
    seq: int
    """Increases by one with every event of this venue process: a gap is a lost event."""
    at_ms: int
    """When it happened (the venue's clock)."""
    order: dict[str, Any]
    """The order's record right after the change (a refused order: id -1, never stored)."""
    trade: dict[str, Any] | None = None
    """kind trade: the trade's record."""
    reason: str | None = None
    """kind rejected: one of REJECT_REASONS."""
    answered: bool = False
    """The answer to the request that made the change shows it: the change is to the
    order a create or a cancel was about (not another order its price step filled, and
    not an operator's cancel)."""

    @property
    def account(self) -> str:
        return str(self.order["account"])


EVENT_KINDS = ("new", "trade", "canceled", "expired", "rejected")
EVENTS_NUMBERED = "eventsNumbered"
"""The subscribe answer's key saying the venue numbers an account's events one by one in
`I` (binance does not: its `I` is an execution id across all accounts)."""
REJECT_REASONS = ("insufficient_balance", "would_take")
"""Why the matching engine refused a create (filter failures are refused before it)."""
