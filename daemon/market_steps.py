"""The amount and price steps of each market, and the check every submit passes
before anything is recorded.

An order whose amount or price is not a multiple of the market's step would be
recorded, sent, and then rejected by the exchange; it is refused up front with
`invalid_order` naming the step instead. Floats (from the Python library only: the
wire carries decimal strings and JSON numbers, read as decimals) are taken through
`repr` and rounded to the step when they are within one unit of float error of it,
so `0.1 + 0.2` means 0.3.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from actors.exchange.client import market_step
from protocol.codec import format_decimal
from protocol.errors import ProtocolError
from protocol.messages import OrderSpec
from venue.rules import multiple_of

FLOAT_FIELDS = ("amount", "price")


@dataclass(frozen=True, slots=True)
class Steps:
    """A market's steps; None where the exchange does not say."""

    amount: Decimal | None
    price: Decimal | None

    @classmethod
    def of(cls, market: dict[str, Any] | None) -> Steps:
        """From a ccxt market structure."""
        return cls(market_step(market, "amount"), market_step(market, "price"))


def steps_of(markets: Mapping[str, Any]) -> dict[str, Steps]:
    """Symbol -> steps, from an exchange's ccxt markets."""
    return {symbol: Steps.of(market) for symbol, market in markets.items()}


def steps_for(markets: Mapping[str, Mapping[str, Steps]], spec: OrderSpec,
              default_exchange: str) -> Steps | None:
    """The steps of the order's market, when its exchange's markets are loaded and hold it."""
    return markets.get(spec.exchange or default_exchange, {}).get(spec.symbol)


def check_steps(spec: OrderSpec, steps: Steps) -> None:
    """invalid_order, naming the step, unless amount and price are on the market's grid."""
    for field, value, step in (("amount", spec.amount, steps.amount),
                               ("price", spec.price, steps.price)):
        if value is not None and step and not multiple_of(value, step):
            raise ProtocolError("invalid_order", f"{field} {format_decimal(value)} is not a "
                                f"multiple of the {spec.symbol} {field} step "
                                f"{format_decimal(step)}", field=field)


def take_floats(order: object) -> tuple[object, frozenset[str]]:
    """The order as a dict, and the names of its fields that are floats (validation
    takes a float as the decimal its `repr` shows). What is no mapping is passed on as
    it is, for validation to refuse as the wire does."""
    if not isinstance(order, Mapping):
        return order, frozenset()
    floats = frozenset(f for f in FLOAT_FIELDS if isinstance(order.get(f), float))
    return dict(order), floats


def snap_floats(spec: OrderSpec, floats: Iterable[str], steps: Steps | None) -> OrderSpec:
    """`spec` with each field in `floats` rounded to its step when it is within one unit
    of float error of a multiple of it (else unchanged, for check_steps to refuse)."""
    if steps is None:
        return spec
    changes: dict[str, Any] = {}
    for field in floats:
        value, step = getattr(spec, field), getattr(steps, field)
        if value is not None and step:
            snapped = _snap(value, step)
            if snapped is not None and snapped != value:
                changes[field] = snapped
    return dataclasses.replace(spec, **changes) if changes else spec


def _snap(value: Decimal, step: Decimal) -> Decimal | None:
    try:
        nearest = (value / step).to_integral_value(ROUND_HALF_EVEN) * step
    except InvalidOperation:
        return None
    as_float = float(value)  # the caller's float: its repr round-trips
    if nearest > 0 and abs(as_float - float(nearest)) <= math.ulp(as_float):
        return Decimal(format_decimal(nearest))
    return None
