"""An exchange's request limits, as its exchangeInfo lists them and as the
`[exchanges.budget]` section caps them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
LARGEST_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class BudgetConfig:
    """`[exchanges.budget]`: how the exchange's limits are shared out."""

    reserve: float = 0.2
    """Share of the weight limit that only creates and cancels may use."""
    headroom: float = 0.05
    """Share of the weight limit never used: room for what other processes on the
    address have in flight, and for estimates that are off."""
    weight_per_minute: int = 0
    """At most this much weight a minute; 0: the exchange's limit."""
    orders_per_10s: int = 0
    """At most this many new orders per 10 s; 0: the exchange's limit."""
    orders_per_day: int = 0
    """At most this many new orders per UTC day; 0: the exchange's limit."""

    def __post_init__(self) -> None:
        """ValueError('field: why'); the config loader puts the section's key in front."""
        for name in ("reserve", "headroom"):
            value = getattr(self, name)
            if isinstance(value, bool) or not 0 <= value < 1:
                raise ValueError(f"{name}: must be from 0 to less than 1")
        if self.reserve + self.headroom >= 0.95:
            raise ValueError("reserve: reserve + headroom must leave lookups at least 5 %")
        for item in fields(self)[2:]:
            value = getattr(self, item.name)
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not 0 <= value <= LARGEST_LIMIT):
                raise ValueError(f"{item.name}: must be a whole number from 0 to {LARGEST_LIMIT}")


@dataclass(frozen=True)
class Limits:
    """An exchange's request limits: weight per window and new orders per window."""

    weight: int | None = None
    """Weight per `weight_window_s`; None: no limit."""
    weight_window_s: int = 60
    orders: tuple[tuple[int, int], ...] = ()
    """(window seconds, new orders allowed in it) for each order window."""

    def capped(self, config: BudgetConfig) -> Limits:
        """These limits, each at most what `config` allows."""
        weight = _lower(self.weight, _per_window(config.weight_per_minute,
                                                 self.weight_window_s))
        caps = {10: config.orders_per_10s, 86400: config.orders_per_day}
        orders = {seconds: limit for seconds, limit in self.orders}
        for seconds, cap in caps.items():
            if cap:
                orders[seconds] = min(cap, orders.get(seconds, cap))
        return Limits(weight, self.weight_window_s, tuple(sorted(orders.items())))


NO_LIMITS = Limits()
BINANCE_LIMITS = Limits(6000, 60, ((10, 100), (86400, 200_000)))
"""binance spot's published defaults, until its exchangeInfo says otherwise."""


def _per_window(per_minute: int, window_s: int) -> int:
    """A cap a minute as a cap a window (0: none); a window's share of less than 1 is 1,
    not 0, which would read as no cap at all."""
    return max(1, per_minute * window_s // 60) if per_minute else 0


def _lower(limit: int | None, cap: int) -> int | None:
    if not cap:
        return limit
    return cap if limit is None else min(limit, cap)


def limits_of(rate_limits: Sequence[Mapping[str, Any]]) -> Limits:
    """Limits from binance's `exchangeInfo.rateLimits` (REQUEST_WEIGHT, ORDERS); a kind
    it does not list has no limit."""
    weight: tuple[int, int] | None = None
    orders: dict[int, int] = {}
    for row in rate_limits:
        try:
            seconds = UNITS[str(row["interval"])] * int(row["intervalNum"])
            limit = int(row["limit"])
        except (KeyError, TypeError, ValueError):
            continue  # a row we cannot read limits nothing we know of
        kind = row.get("rateLimitType")
        if kind == "REQUEST_WEIGHT" and weight is None:
            weight = (limit, seconds)
        elif kind == "ORDERS":
            orders[seconds] = min(limit, orders.get(seconds, limit))
    return Limits(None if weight is None else weight[0],
                  60 if weight is None else weight[1], tuple(sorted(orders.items())))


def counts_of(rows: Any) -> dict[int, float]:
    """The order counts in binance's `GET /api/v3/rateLimit/order` answer (ORDERS rows
    with their `count`), by window seconds; a row we cannot read counts nothing."""
    counts: dict[int, float] = {}
    for row in rows if isinstance(rows, list) else ():
        try:
            seconds = UNITS[str(row["interval"])] * int(row["intervalNum"])
        except (KeyError, TypeError, ValueError):
            continue
        count = number(row.get("count"))
        if row.get("rateLimitType") == "ORDERS" and count is not None:
            counts[seconds] = max(count, counts.get(seconds, 0.0))
    return counts


def number(value: Any) -> float | None:
    """A count or a header's figure: a finite number, not below 0; else None."""
    if value is None:
        return None
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) and found >= 0 else None


def span(seconds: int) -> str:
    """A window's name as binance's headers spell it: 10S, 1M, 1D."""
    for unit, size in (("D", 86400), ("H", 3600), ("M", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}S"
