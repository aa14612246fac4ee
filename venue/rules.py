"""Order filters of the paper venue: what it refuses, and with which ccxt error."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from ccxt.base.errors import InsufficientFunds, InvalidOrder

from venue.model import MAKER_FEE, TAKER_FEE, ZERO, Account, Balance, MarketSpec

ORDER_TYPES = ("market", "limit")
SIDES = ("buy", "sell")
TIMES_IN_FORCE = ("GTC", "IOC", "FOK")
MAX_CLIENT_ORDER_ID = 64


class _Timed(Protocol):
    @property
    def timestamp(self) -> int: ...
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=_Timed)


def multiple_of(value: Decimal, step: Decimal) -> bool:
    try:
        return value % step == 0
    except InvalidOperation:  # too many digits for the context: not on the grid
        return False


def parse_id(order_id: Any) -> int:
    """Venue ids are decimal integers; anything else matches no order (ids start at 1)."""
    try:
        return int(str(order_id))
    except ValueError:
        return 0


def window(items: list[T], since: int | None, limit: int | None) -> list[T]:
    """ccxt paging, oldest first: from `since` (inclusive) the first `limit`, else the last."""
    items = sorted(items, key=lambda item: (item.timestamp, item.id))
    if since is not None:
        items = [item for item in items if item.timestamp >= since]
    if limit is not None:
        if limit <= 0:
            return []
        items = items[:limit] if since is not None else items[-limit:]
    return items


def check_order(
    spec: MarketSpec,
    type: str,
    side: str,
    amount: Decimal,
    price: Decimal | None,
    time_in_force: str,
    post_only: bool = False,
) -> None:
    """Raise InvalidOrder for anything the exchange's filters would refuse."""
    if type not in ORDER_TYPES:
        raise InvalidOrder(f"paper: order type must be one of {ORDER_TYPES}, not {type!r}")
    if side not in SIDES:
        raise InvalidOrder(f"paper: side must be one of {SIDES}, not {side!r}")
    if time_in_force not in TIMES_IN_FORCE:
        raise InvalidOrder(
            f"paper: timeInForce must be one of {TIMES_IN_FORCE}, not {time_in_force!r}"
        )
    if post_only and (type != "limit" or time_in_force != "GTC"):
        raise InvalidOrder("paper: a postOnly order is a limit order that rests (GTC)")
    _check_amount(spec, amount)
    if type == "market" and price is not None:
        raise InvalidOrder("paper: a market order takes no price")
    if type == "limit":
        _check_price(spec, price)


def takes(side: str, limit: Decimal, current: Decimal) -> bool:
    """Whether a limit order would trade at once at the current price (as taker)."""
    return (side == "buy" and limit >= current) or (side == "sell" and limit <= current)


def _check_amount(spec: MarketSpec, amount: Decimal) -> None:
    if not amount.is_finite() or amount <= 0:
        raise InvalidOrder(f"paper: amount must be positive, got {amount}")
    if amount < spec.amount_step:
        raise InvalidOrder(
            f"paper: amount {amount} is below the {spec.symbol} minimum {spec.amount_step}"
        )
    if not multiple_of(amount, spec.amount_step):
        raise InvalidOrder(
            f"paper: amount {amount} is not a multiple of the {spec.symbol} step {spec.amount_step}"
        )


def _check_price(spec: MarketSpec, price: Decimal | None) -> None:
    if price is None:
        raise InvalidOrder("paper: a limit order needs a price")
    if not price.is_finite() or price <= 0:
        raise InvalidOrder(f"paper: price must be positive, got {price}")
    if not multiple_of(price, spec.price_step):
        raise InvalidOrder(
            f"paper: price {price} is not a multiple of the {spec.symbol} tick {spec.price_step}"
        )


def check_min_cost(spec: MarketSpec, amount: Decimal, price: Decimal) -> None:
    cost = amount * price
    if cost < spec.min_cost:
        raise InvalidOrder(
            f"paper: order cost {cost} {spec.quote} is below the minimum {spec.min_cost}"
        )


def check_funds(
    account: Account, spec: MarketSpec, side: str, amount: Decimal, price: Decimal
) -> None:
    """Raise InsufficientFunds unless `free` covers the order at `price`.

    Buys need the notional plus the fee, which is charged in the quote
    currency; a limit is checked at its limit price, like real venues do.
    """
    if side == "buy":
        currency, need = spec.quote, amount * price * (1 + max(TAKER_FEE, MAKER_FEE))
    else:
        currency, need = spec.base, amount
    free = account.setdefault(currency, Balance(ZERO)).free
    if free < need:
        raise InsufficientFunds(f"paper: insufficient {currency}: need {need}, free {free}")


def check_client_order_id(client_order_id: Any) -> str:
    if not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= MAX_CLIENT_ORDER_ID:
        raise InvalidOrder(
            f"paper: clientOrderId must be a string of 1 to {MAX_CLIENT_ORDER_ID} characters"
        )
    return client_order_id
