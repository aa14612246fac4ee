"""Messages between the actors: frozen records, dispatched by type in one place per actor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.exchange.errors import Action
from actors.orders import Order
from protocol.errors import ProtocolError
from protocol.messages import CancelAllArgs, ListArgs, OrderRef, OrderSpec, OrderStatus, Wait

Reply = Callable[[dict[str, Any] | ProtocolError], None]
"""Where a command's outcome goes: a result object, or the error to send."""


# --- to OrderActor -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Submit:
    """Place an order (the `submit` command)."""

    spec: OrderSpec
    """Validated spec, not yet normalized."""
    wait: Wait
    """accepted or durable."""
    reply: Reply
    """Receives `{"order": Order}` or an error."""


@dataclass(frozen=True, slots=True)
class GetStatus:
    """The `status` command."""

    ref: OrderRef
    """Which order."""
    reply: Reply
    """Receives `{"order": Order}` or an error."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """The `cancel` command."""

    ref: OrderRef
    """Which order."""
    reply: Reply
    """Receives `{"order": Order}` or an error."""


@dataclass(frozen=True, slots=True)
class CancelAll:
    """The `cancel_all` command: every live order in scope is asked to cancel."""

    args: CancelAllArgs
    """The scope: an exchange, a symbol, both or neither (everything)."""
    reply: Reply
    """Receives `{"orders": [Order]}`, each as recorded once its cancel was asked."""


@dataclass(frozen=True, slots=True)
class ListOrders:
    """The `list` command."""

    args: ListArgs
    """Filters and paging."""
    reply: Reply
    """Receives `{"orders": [...], "next": cursor}`."""


@dataclass(frozen=True, slots=True)
class Flush:
    """Commit everything staged; sent by the actor to itself so a batch forms."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire waiting replies, refresh what is due."""

    now: float
    """Clock value when the tick was sent."""


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


@dataclass(frozen=True, slots=True)
class ExchangeReport:
    """The outcome of one exchange operation on one order."""

    client_order_id: str
    """Which order."""
    op: str
    """create, cancel or fetch."""
    outcome: str
    """ok, rejected (permanent), unknown (ambiguous) or failed (known not done)."""
    view: OrderView | None = None
    """The order as the exchange showed it, when it did."""
    error: ErrorInfo | None = None
    """Why, when not ok."""
    worker: str = ""
    """The ExchangeActor that did it."""
    sends: int = 0
    """Requests actually sent to the exchange (attempts)."""
    retries: int = 0
    """Of those, retries after a failure."""
    latency_s: float = 0.0
    """Time from the worker taking the request to its outcome."""
    trades: tuple[TradeView, ...] = ()
    """The order's trade records, when the exchange showed more filled than was counted."""
    more: bool = False
    """Another report of the same request follows (a create's verifying fetch): the
    worker is still busy with it."""
    source: str = ""
    """Where the view came from: create, lookup, cancel (that request's answer) or
    open_orders (the symbol's open orders, read for tracking)."""
    trades_source: str = "trades"
    """Where the trades came from: the create's answer (create) or the order's own trade
    records (trades)."""


@dataclass(frozen=True, slots=True)
class SymbolTracked:
    """What one look at a symbol's open orders found (the answer to TrackSymbol)."""

    exchange: str
    """Exchange name."""
    symbol: str
    """Market."""
    reports: tuple[ExchangeReport, ...]
    """One per tracked order: as the list shows it, or as the lookup of an order no
    longer in the list found it (its final state)."""
    error: ErrorInfo | None = None
    """Why the open orders could not be read (then there are no reports)."""


@dataclass(frozen=True, slots=True)
class WorkerRestarted:
    """Tell OrderActor: an actor was restarted; its counts of requests in flight start
    afresh (a request it was handling when it crashed may never report)."""

    name: str
    """The actor's name (only exchange workers matter to the router)."""


@dataclass(frozen=True, slots=True)
class Prices:
    """Last traded prices on one exchange (the reference for market orders' notional)."""

    exchange: str
    """Exchange name."""
    last: dict[str, Decimal]
    """Symbol -> last price."""


# --- to ExchangeActor --------------------------------------------------------

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


# --- to every supervised actor ------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ping:
    """Ask: are you answering? Queued behind the actor's other work, so a hung actor
    does not answer (the systemd watchdog relies on that)."""


@dataclass(frozen=True, slots=True)
class Crash:
    """Fail as if the actor's own state were broken, so the supervisor restarts it.
    Test-only: sent by the `crash` command, which `[supervisor] fault_commands` enables."""

    reason: str
    """Why, for the log."""


# --- to the supervisor -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ActorCrashed:
    """A supervised actor died of an exception."""

    name: str
    """Its registry name."""
    error: str
    """What killed it (type and message)."""
