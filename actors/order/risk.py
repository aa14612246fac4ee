"""Risk limits, checked by OrderActor before an order is recorded or sent.

Limits are per exchange. The notional of a limit order is amount x price; a
market order has no price, so its notional uses the exchange's last traded
price (refreshed from the exchange's ticker and from our own fills); a market
order on a market with no known price is refused while a notional limit is set,
since a limit that cannot be checked must not be skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from actors.orders import Order
from protocol.codec import format_decimal
from protocol.errors import ProtocolError
from protocol.messages import OrderSpec


@dataclass(frozen=True)
class RiskLimits:
    """One exchange's limits; None means no limit."""

    max_order_notional: Decimal | None = None
    """Largest amount x price of one order, in the quote currency."""
    max_open_orders: int | None = None
    """Most orders not yet terminal on the exchange."""
    max_open_orders_per_symbol: int | None = None
    """Most orders not yet terminal on one market."""
    symbols: frozenset[str] | None = None
    """The only markets that may be traded."""

    @property
    def needs_prices(self) -> bool:
        return self.max_order_notional is not None


NO_LIMITS = RiskLimits()


class RiskPolicy:
    """The limits of every exchange; replaced as a whole on reload, read from any thread."""

    def __init__(self, limits: dict[str, RiskLimits] | None = None) -> None:
        self._lock = threading.Lock()
        self._limits = dict(limits or {})

    def of(self, exchange: str) -> RiskLimits:
        with self._lock:
            return self._limits.get(exchange, NO_LIMITS)

    def replace(self, limits: dict[str, RiskLimits]) -> None:
        with self._lock:
            self._limits = dict(limits)

    def exchanges_needing_prices(self) -> list[str]:
        with self._lock:
            return [name for name, limits in self._limits.items() if limits.needs_prices]


def check(spec: OrderSpec, limits: RiskLimits, live: Iterable[Order],
          last_price: Decimal | None) -> ProtocolError | None:
    """Why `spec` (normalized) breaks a limit, or None when it does not."""
    if limits.symbols is not None and spec.symbol not in limits.symbols:
        return _rejected(f"{spec.symbol} is not in the allowed symbols of {spec.exchange}",
                         "symbols", field="symbol")
    error = _check_notional(spec, limits, last_price)
    if error is not None:
        return error
    if limits.max_open_orders is None and limits.max_open_orders_per_symbol is None:
        return None
    total = per_symbol = 0
    for order in live:
        if order.exchange == spec.exchange and not order.terminal:
            total += 1
            per_symbol += order.symbol == spec.symbol
    if limits.max_open_orders is not None and total >= limits.max_open_orders:
        return _rejected(f"{total} open orders on {spec.exchange}; the limit is "
                         f"{limits.max_open_orders}", "max_open_orders")
    cap = limits.max_open_orders_per_symbol
    if cap is not None and per_symbol >= cap:
        return _rejected(f"{per_symbol} open orders on {spec.symbol}; the limit is {cap}",
                         "max_open_orders_per_symbol")
    return None


def _check_notional(spec: OrderSpec, limits: RiskLimits,
                    last_price: Decimal | None) -> ProtocolError | None:
    cap = limits.max_order_notional
    if cap is None:
        return None
    price = spec.price if spec.price is not None else last_price
    if price is None:
        return _rejected(f"no reference price for {spec.symbol} yet, so the notional limit "
                         "cannot be checked", "max_order_notional")
    notional = spec.amount * price
    if notional > cap:
        return _rejected(f"order notional {format_decimal(notional)} exceeds the limit "
                         f"{format_decimal(cap)}", "max_order_notional", field="amount")
    return None


def _rejected(message: str, limit: str, field: str | None = None) -> ProtocolError:
    return ProtocolError("risk_rejected", message, field=field, details={"limit": limit})
