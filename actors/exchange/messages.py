"""ExchangeActor's messages, and the records of what an exchange says (OrderView,
TradeView, ErrorInfo): a worker makes them from the exchange's answers, and OrderActor,
the reconciler and the ledger read them, so they live where they are made."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.exchange.errors import Action
from actors.orders import Order
from actors.runtime import Reply
from protocol.messages import OrderStatus

# --- what an exchange says, in our terms --------------------------------------

@dataclass(frozen=True, slots=True)
class OrderView:
    """What the exchange says about an order, in our terms."""

    order_id: str
    """The exchange's id."""
    status: OrderStatus
    """One of our statuses (open, partially_filled, filled, canceled, expired, rejected)."""
    filled: Decimal
    """Filled base amount."""
    average_price: Decimal | None
    """Average fill price."""
    fee_currency: str | None
    """Currency of the fee."""
    fee_cost: Decimal | None
    """Total fee so far."""
    symbol: str | None = None
    """Market, when the exchange's answer carried the order's terms (then all five are set)."""
    side: str | None = None
    """buy or sell, in the exchange's words: compared with the order's, so a word outside
    our vocabulary is kept to be shown as a mismatch."""
    type: str | None = None
    """limit or market, in the exchange's words (as `side`)."""
    amount: Decimal | None = None
    """Ordered base amount."""
    price: Decimal | None = None
    """Limit price (None for a market order)."""
    client_order_id: str | None = None
    """The client order id the exchange holds."""
    amount_step: Decimal | None = None
    """The market's amount precision: terms within one step agree."""
    price_step: Decimal | None = None
    """The market's price precision."""
    trades: tuple[TradeView, ...] = ()
    """Trade records the answer carried (a create's immediate fills, as binance's)."""


@dataclass(frozen=True, slots=True)
class TradeView:
    """One fill as the exchange's trade records show it."""

    trade_id: str
    """The exchange's trade id: fills are counted by it, never twice."""
    order_id: str
    """The exchange's id of the order it filled."""
    client_order_id: str | None
    """The order's client id, when the exchange reports it."""
    amount: Decimal
    """Filled base amount."""
    price: Decimal
    """Fill price."""
    fee_cost: Decimal
    """Fee charged for this fill."""
    fee_currency: str | None
    """Currency of the fee."""
    timestamp: int
    """Exchange time in milliseconds."""
    symbol: str | None = None
    """Market, when known."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exchange error as stored on the order."""

    code: str
    """Error code, e.g. insufficient_funds, timeout, circuit_open."""
    message: str
    """Human-readable, free of secrets."""
    action: Action = Action.REJECT
    """What the error table says to do: retry, resolve, reject or halt."""
    retry_after_s: float | None = None
    """When the exchange (or the circuit) said to come back."""

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- orders ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OrderTicket:
    """An immutable copy of what the exchange needs to know about an order."""

    client_order_id: str
    """Our idempotency key, sent to the exchange."""
    order_id: str | None
    """The exchange's id when known."""
    symbol: str
    """Market."""
    side: str
    """buy or sell (empty in a lookup of an order only the trades named: not a Side)."""
    type: str
    """limit or market (empty as `side`)."""
    amount: Decimal
    """Quantity."""
    price: Decimal | None
    """Limit price."""
    time_in_force: str | None
    """GTC, IOC or FOK."""
    params: dict[str, Any]
    """Extra exchange parameters."""
    counted: Decimal = Decimal(0)
    """Base amount already counted from trade records; more filled fetches the trades."""

    @classmethod
    def of(cls, order: Order, counted: Decimal = Decimal(0)) -> OrderTicket:
        return cls(order.client_order_id, order.order_id, order.symbol, order.side,
                   order.type, order.amount, order.price, order.time_in_force,
                   dict(order.params), counted)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Create the order on the exchange."""

    ticket: OrderTicket
    """The order."""
    not_after: float = float("inf")
    """Monotonic time after which the create must not be sent (it expires instead)."""
    signed_at: float | None = None
    """Wall time the request is signed with where the exchange checks a timestamp (binance),
    as the ledger recorded it before the send; None: the client's own clock."""


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel the order on the exchange."""

    ticket: OrderTicket
    """The order."""


@dataclass(frozen=True, slots=True)
class FetchOrder:
    """Look the order up on the exchange."""

    ticket: OrderTicket
    """The order."""
    carried: tuple[TradeView, ...] = ()
    """Trades an earlier answer brought (the create's fills): enough of them make the
    request for the order's trades unneeded."""


# --- reads of the side worker (answered to OrderActor, or with data when asked) ---

@dataclass(frozen=True, slots=True)
class TrackSymbol:
    """To an exchange's side worker: read one symbol's open orders, once for all the
    orders tracked in it; answered with SymbolTracked to OrderActor."""

    exchange: str
    """Exchange name."""
    symbol: str
    """Market."""
    tickets: tuple[OrderTicket, ...]
    """The orders OrderActor holds open or partially filled in it."""


@dataclass(frozen=True, slots=True)
class RefreshPrices:
    """Fetch last prices and tell OrderActor (`Prices`); answers with them when asked."""

    exchange: str
    """This actor's exchange name, for the Prices message."""
    symbols: tuple[str, ...] | None = None
    """Which markets; None for all of them."""


@dataclass(frozen=True, slots=True)
class FetchBalance:
    """To an exchange's side worker (the `balance` command): its balances, through the
    shared rate limit and circuit like any other read."""

    reply: Reply
    """Receives `{"balances": {currency: {"free", "used", "total"}}}` or an error."""


class LoadMarkets:
    """Ask: the exchange's markets (symbol -> ccxt market structure)."""


@dataclass(frozen=True, slots=True)
class FetchOpenOrders:
    """Ask: every open order of the account, as OrderViews."""


@dataclass(frozen=True, slots=True)
class FetchTrades:
    """Ask: one symbol's trades, oldest first, as a TradePage: from the trade id
    `from_id` on where the exchange pages by id, else from `since`."""

    symbol: str
    """Market (binance lists trades one symbol at a time)."""
    since: int | None
    """Exchange time in milliseconds (inclusive), used when `from_id` is not."""
    from_id: str | None
    """The first trade id to list, where the exchange pages by id."""
    limit: int
    """Page size."""


@dataclass(frozen=True, slots=True)
class TradePage:
    """The answer to FetchTrades."""

    trades: tuple[TradeView, ...]
    """The trades listed."""
    by_id: bool
    """The exchange pages by trade id: the next page can start at an id."""


@dataclass(frozen=True, slots=True)
class LookupOrder:
    """Ask: one order by id (or client id), as an OrderView."""

    ticket: OrderTicket
    """Which order."""
