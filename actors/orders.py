"""The order record and its state machine."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from protocol.codec import format_decimal
from protocol.messages import (
    TERMINAL_STATUSES,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:
    from actors.exchange.messages import OrderView

ZERO = Decimal(0)

_S = OrderStatus
# status -> the statuses it may move to. Terminal statuses move nowhere.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_SUBMIT: frozenset({_S.UNKNOWN, _S.OPEN, _S.PARTIALLY_FILLED, _S.PENDING_CANCEL,
                                  _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED}),
    _S.UNKNOWN: frozenset({_S.PENDING_SUBMIT, _S.OPEN, _S.PARTIALLY_FILLED, _S.PENDING_CANCEL,
                           _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED}),
    _S.OPEN: frozenset({_S.PARTIALLY_FILLED, _S.PENDING_CANCEL, _S.FILLED, _S.CANCELED,
                        _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.PENDING_CANCEL, _S.FILLED,
                                    _S.CANCELED, _S.EXPIRED}),
    _S.PENDING_CANCEL: frozenset({_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED,
                                  _S.EXPIRED, _S.REJECTED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalTransition(Exception):
    """A status change the state machine does not allow."""


@functools.lru_cache(maxsize=256)
def _utc_second(seconds: int) -> str:
    # cached: every order event formats two timestamps, nearly all in the same few seconds
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339(epoch: float) -> str:
    """An RFC 3339 UTC timestamp with milliseconds (truncated, as datetime rounds)."""
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)  # as datetime.fromtimestamp rounds
    seconds = int(whole)
    if micros < 0:
        seconds, micros = seconds - 1, micros + 1_000_000
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    return f"{_utc_second(seconds)}.{micros // 1000:03d}Z"


def decimal_text(value: Decimal | None) -> str | None:
    """A decimal as the wire and the ledger write it; None stays None."""
    return None if value is None else format_decimal(value)


@dataclass(slots=True)
class Order:
    """One order as the ledger holds it. Only OrderActor changes it."""

    client_order_id: str
    exchange: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    time_in_force: TimeInForce | None
    params: dict[str, Any]
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    order_id: str | None = None
    filled: Decimal = ZERO
    average_price: Decimal | None = None
    fee_currency: str | None = None
    fee_cost: Decimal | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    attempts: int = 0
    last_error: dict[str, str] | None = None
    trail: list[dict[str, Any]] = field(default_factory=list)
    signed_at: float | None = None
    """Wall time the latest create was signed with (recorded before it is sent): the
    exchange may book it until its signed window has passed (see resolution)."""

    @classmethod
    def from_spec(cls, spec: OrderSpec, now: float) -> Order:
        """A new pending order from a normalized spec."""
        assert spec.client_order_id is not None and spec.exchange is not None
        return cls(
            client_order_id=spec.client_order_id,
            exchange=spec.exchange,
            symbol=spec.symbol,
            side=spec.side,
            type=spec.type,
            amount=spec.amount,
            price=spec.price,
            time_in_force=spec.time_in_force,
            params=dict(spec.params),
            created_at=now,
            updated_at=now,
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def remaining(self) -> Decimal:
        return max(self.amount - self.filled, ZERO)

    def same_spec(self, spec: OrderSpec) -> bool:
        """Whether a normalized spec asks for exactly this order."""
        return (
            spec.exchange == self.exchange
            and spec.symbol == self.symbol
            and spec.side == self.side
            and spec.type == self.type
            and spec.amount == self.amount
            and spec.price == self.price
            and spec.time_in_force == self.time_in_force
            and spec.params == self.params
        )

    def check_move(self, status: OrderStatus) -> None:
        """IllegalTransition unless the order may move to `status` (or is there)."""
        if status != self.status and status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"{self.client_order_id}: {self.status} -> {status}")

    def move_to(self, status: OrderStatus, now: float) -> bool:
        """Change status; False when already there, IllegalTransition when not allowed."""
        self.check_move(status)
        if status == self.status:
            return False
        self.status = status
        self.updated_at = now
        return True

    def to_wire(self) -> dict[str, Any]:
        """The Order object of the wire protocol, its words as plain strings (the library
        hands this dict to its callers, who may serialise it with anything)."""
        fee = None
        if self.fee_cost is not None:
            fee = {"currency": self.fee_currency, "cost": decimal_text(self.fee_cost)}
        return {
            "client_order_id": self.client_order_id,
            "order_id": self.order_id,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "amount": decimal_text(self.amount),
            "price": decimal_text(self.price),
            "time_in_force": None if self.time_in_force is None else self.time_in_force.value,
            "status": self.status.value,
            "filled": decimal_text(self.filled),
            "remaining": decimal_text(self.remaining),
            "average_price": decimal_text(self.average_price),
            "fee": fee,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


def adopt(order: Order, view: OrderView, now: float, *, keep_status: bool) -> None:
    """Take the exchange's view of the order (its status too, unless `keep_status` and
    the exchange shows it still live).

    The transition is checked before anything changes, so an answer the state machine
    refuses leaves the order as it was; a stale answer (less filled than we know) only
    fills in a missing exchange id."""
    if view.filled < order.filled:
        order.order_id = order.order_id or view.order_id
        return
    live = view.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
    target = order.status if live and keep_status else view.status
    if target == OrderStatus.OPEN and order.status == OrderStatus.PARTIALLY_FILLED:
        target = OrderStatus.PARTIALLY_FILLED  # fills never go back
    order.check_move(target)
    order.order_id = view.order_id or order.order_id
    order.filled = min(view.filled, order.amount)  # never more than ordered (see overfill)
    order.average_price = view.average_price
    if view.fee_cost is not None:
        order.fee_currency, order.fee_cost = view.fee_currency, view.fee_cost
    order.move_to(target, now)


def fingerprint(order: Order) -> tuple[Any, ...]:
    """What the wire Order shows that an exchange answer can change."""
    return (order.status, order.order_id, order.filled, order.average_price, order.fee_cost,
            order.last_error, order.attempts)
