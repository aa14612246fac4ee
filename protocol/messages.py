"""Typed records of the wire protocol: what a request carries once validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar, cast


class OrderStatus(StrEnum):
    """An order's status, as the wire and the ledger write it."""

    PENDING_SUBMIT = "pending_submit"
    UNKNOWN = "unknown"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Side(StrEnum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """limit (rests at its price) or market (takes what the book has)."""

    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    """How long a limit order may rest."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Wait(StrEnum):
    """When `submit` answers: once the exchange's outcome is known, or once recorded."""

    ACCEPTED = "accepted"
    DURABLE = "durable"


# each vocabulary in its order, for listings (error messages, the reference)
STATUSES = tuple(OrderStatus)
SIDES = tuple(Side)
ORDER_TYPES = tuple(OrderType)
TIMES_IN_FORCE = tuple(TimeInForce)
TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                               OrderStatus.EXPIRED})
DEFAULT_TIME_IN_FORCE = TimeInForce.GTC

Vocabulary = TypeVar("Vocabulary", bound=StrEnum)


def member(kind: type[Vocabulary], value: object) -> Vocabulary | None:
    """The member of `kind` whose value is `value` (text from the wire or the library);
    None for anything else, of any type. One dict lookup: cheaper than `kind(value)`,
    which goes through the enum machinery and raises on a miss."""
    if not isinstance(value, str):
        return None
    return cast("Vocabulary | None", kind._value2member_map_.get(value))


def words(kind: type[StrEnum]) -> list[str]:
    """A vocabulary's words as plain strings (argparse's choices: a refusal then lists
    'buy', 'sell', not the members' reprs)."""
    return [word.value for word in kind]


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded, envelope-valid request."""

    id: str
    """Client-chosen id, echoed in the reply."""
    cmd: str
    """Command name."""
    args: dict[str, Any]
    """Raw command arguments (validated per command later)."""
    client: str = ""
    """Who sent it, as the server knows it: CURVE public key or ZeroMQ identity."""


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What a client asks to trade; the idempotency key is `client_order_id`."""

    symbol: str
    """Market as BASE/QUOTE."""
    side: Side
    """buy or sell."""
    type: OrderType
    """limit or market."""
    amount: Decimal
    """Quantity in the base currency, > 0."""
    price: Decimal | None = None
    """Limit price, > 0; None for market orders."""
    client_order_id: str | None = None
    """Client's id for the order; the daemon makes one when absent."""
    exchange: str | None = None
    """Exchange name; None means the first configured exchange."""
    time_in_force: TimeInForce | None = None
    """GTC, IOC or FOK; limit orders only."""
    params: dict[str, Any] = field(default_factory=dict)
    """Extra parameters passed to the exchange."""

    def normalized(self, default_exchange: str, client_order_id: str) -> OrderSpec:
        """The spec with every default filled, as it is stored and compared."""
        tif = self.time_in_force
        if self.type == OrderType.LIMIT and tif is None:
            tif = DEFAULT_TIME_IN_FORCE
        return OrderSpec(
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            amount=self.amount,
            price=self.price,
            client_order_id=client_order_id,
            exchange=self.exchange or default_exchange,
            time_in_force=tif,
            params=self.params,
        )


@dataclass(frozen=True, slots=True)
class SubmitArgs:
    """Arguments of `submit`."""

    order: OrderSpec
    """The order to place."""
    wait: Wait = Wait.ACCEPTED
    """accepted: reply once the exchange outcome is known; durable: once recorded."""


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Arguments of `status` and `cancel`: exactly one of the two ids."""

    client_order_id: str | None = None
    """The client's order id."""
    order_id: str | None = None
    """The exchange's order id."""


@dataclass(frozen=True, slots=True)
class ListArgs:
    """Arguments of `list`."""

    statuses: tuple[OrderStatus, ...] | None = None
    """Only orders in these statuses."""
    symbol: str | None = None
    """Only orders on this market."""
    exchange: str | None = None
    """Only orders on this exchange."""
    limit: int = 100
    """Page size, 1 to 1000."""
    after: str | None = None
    """Cursor from the previous page's `next`."""


@dataclass(frozen=True, slots=True)
class ExchangeArg:
    """Arguments of `reconcile`."""

    exchange: str | None = None
    """One exchange, or all when None."""


@dataclass(frozen=True, slots=True)
class CancelAllArgs:
    """Arguments of `cancel_all`: the scope; None is every exchange or every symbol."""

    exchange: str | None = None
    """Only this exchange's orders."""
    symbol: str | None = None
    """Only orders on this market."""


@dataclass(frozen=True, slots=True)
class ReasonArg:
    """Arguments of `halt` and `resume`."""

    reason: str | None = None
    """Why, for the log."""


@dataclass(frozen=True, slots=True)
class ActorArg:
    """Arguments of the test-only `crash` command (not part of the contract)."""

    actor: str
    """The actor's name, as `health` lists it."""


@dataclass(frozen=True, slots=True)
class NoArgs:
    """Commands without arguments."""
