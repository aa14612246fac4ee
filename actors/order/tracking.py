"""Tracking of resting orders, one symbol at a time.

An exchange lists a symbol's open orders in one request (binance `openOrders`, weight
6), which costs less than looking up a single order (weight 4 each): each interval,
every symbol with orders open or partially filled is read once, for all of them. An
order no longer in the list is looked up once (see ExchangeActor's tracking). A symbol
holding a young order is read every `young_interval_s`, others every `interval_s`;
both are stretched by the exchange's pace factor, where a request budget gives one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from actors.order.resolution import LOST_LOOKUP_S
from actors.orders import Order
from protocol.messages import OrderStatus

log = logging.getLogger(__name__)

TRACKED = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
"""Statuses of orders resting on the exchange, whose changes tracking looks for."""
SymbolKey = tuple[str, str]
"""(exchange, symbol)."""
Pace = Callable[[str], float]
"""Exchange -> factor on its tracking intervals: 1 keeps the configured ones, 2 doubles
them. A request budget that runs low gives more than 1."""


def no_stream(_exchange: str) -> bool:
    """Without a user-data stream, tracking is the only source of fills and cancels."""
    return False


def steady_pace(_exchange: str) -> float:
    """The pace without a request budget: the configured intervals as they are."""
    return 1.0


@dataclass(frozen=True)
class TrackingPlan:
    """How often symbols are read."""

    interval_s: float = 2.0
    young_interval_s: float = 0.5
    young_age_s: float = 60.0
    pace: Pace = steady_pace
    stream_live: Callable[[str], bool] = no_stream
    """Exchange -> whether its user-data stream is live (it then tells of fills and
    cancels, and tracking is only a net)."""
    safety_interval_s: float = 60.0
    """How often a symbol is read while its exchange's stream is live."""


class Tracker:
    """When each symbol was last read, and which reads are under way; used by
    OrderActor's thread only."""

    def __init__(self, plan: TrackingPlan) -> None:
        self.plan = plan
        self.asked: dict[SymbolKey, float] = {}
        self.asking: set[SymbolKey] = set()

    def due(self, orders: Iterable[Order], now: float,
            wall: float) -> list[tuple[SymbolKey, list[Order]]]:
        """The symbols to read now, each with its tracked orders; marks them asked.
        `now` is monotonic, `wall` the wall clock orders are dated by."""
        groups: dict[SymbolKey, list[Order]] = {}
        young: set[SymbolKey] = set()
        plan = self.plan
        for order in orders:
            if order.status not in TRACKED:
                continue
            key = (order.exchange, order.symbol)
            groups.setdefault(key, []).append(order)
            if wall - order.created_at < plan.young_age_s:
                young.add(key)  # most fills and cancels come early
        due = []
        for key, group in groups.items():
            last = self.asked.get(key, -math.inf)
            if key in self.asking and now - last < LOST_LOOKUP_S:
                continue  # one read at a time: a slow exchange's queue must not grow
            interval = plan.young_interval_s if key in young else plan.interval_s
            if plan.stream_live(key[0]):
                interval = max(interval, plan.safety_interval_s)
            if now - last >= interval * _factor(plan.pace, key[0]):
                self.asked[key] = now
                self.asking.add(key)
                due.append((key, group))
        return due

    def read_now(self, keys: Iterable[SymbolKey]) -> None:
        """Read these symbols at the next tick, whenever they were last read (a stream's
        catch-up)."""
        for key in keys:
            self.asked.pop(key, None)
            self.asking.discard(key)

    def answered(self, key: SymbolKey) -> None:
        """The read of the symbol came back (or was never delivered)."""
        self.asking.discard(key)


def _factor(pace: Pace, exchange: str) -> float:
    """The pace factor; one that fails or is not a positive number counts as 1, so
    tracking never stops for it."""
    try:
        factor = float(pace(exchange))
    except Exception:  # logged; tracking goes on at the configured pace
        log.exception("tracking pace of %s not read", exchange)
        return 1.0
    return factor if math.isfinite(factor) and factor > 0 else 1.0
