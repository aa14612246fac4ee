"""What OrderActor does on each tick, and with the answers of what a tick asked: held
replies past their deadline, lookups of unresolved orders, each live order's timers
(a resend due, sooner for creates kept back for the order count once a read of the
counts found room; a create or a cancel unanswered for long), the tracking reads of
resting orders, reference prices, gauges and the alert on orders unresolved too long."""

from __future__ import annotations

import logging

from actors.exchange.messages import FetchOrder, OrderTicket, RefreshPrices, TrackSymbol
from actors.exchange.routing import side_worker_name
from actors.metrics.alerts import Alert
from actors.order.core import STALE_CREATE_FACTOR, OrderCore
from actors.order.live import LiveOrder
from actors.order.messages import Prices, SymbolTracked
from actors.order.order_counts import read_if_due, send_held_creates
from actors.order.outcomes import Outcomes, unchanged
from actors.order.tracking import TRACKED
from actors.orders import fingerprint
from protocol.messages import OrderStatus

log = logging.getLogger(__name__)

STALE_CANCEL_S = 30.0
"""A cancel unanswered this long is looked up (and sent again if still wanted)."""
PRICE_REFRESH_S = 10.0


class Timers:
    """Used by OrderActor's thread only."""

    def __init__(self, core: OrderCore, outcomes: Outcomes) -> None:
        self.core = core
        self.outcomes = outcomes
        self._prices_asked = float("-inf")
        self._rooms_seen: dict[str, int] = {}
        """Each budget's reads that found room, as last seen (send_held_creates)."""

    def tick(self) -> None:
        core = self.core
        now = core.clock.monotonic()
        core.state.unresolved = core.unresolved()  # read by health without a message
        core.waiters.expire(now, core.get)
        for cid in core.resolver.due(now):
            live = core.orders.get(cid)
            if live is None:
                core.resolver.drop(cid)
            else:
                core.dispatch(live.order, FetchOrder)
        send_held_creates(core, self._rooms_seen, now)
        self._orders_due(now)
        self._refresh_due(now)
        self._refresh_prices(now)
        for exchange in core.settings.budgets:  # a read kept back by its interval
            read_if_due(core, exchange)
        self._gauges(now)
        self._alert_overdue(now)

    def _alert_overdue(self, now: float) -> None:
        """Orders unresolved too long: each in the log, and an alert per exchange, not
        per order (an outage leaves them by the hundred; `health` counts them and gives
        the oldest's age), which the repeat interval holds to one per exchange."""
        by_exchange: dict[str, list[tuple[str, float]]] = {}
        for cid, age in self.core.resolver.overdue(now):
            log.warning("order %s unresolved for %.0f s", cid, age)
            by_exchange.setdefault(self._exchange_of(cid), []).append((cid, age))
        for exchange, overdue in by_exchange.items():
            cid, age = max(overdue, key=lambda case: case[1])
            more = f" and {len(overdue) - 1} more orders are" if len(overdue) > 1 else " is"
            self.core.alerter.alert(Alert("unknown_order_age", "warning",
                                          f"order {cid}{more} unresolved for {age:.0f} s",
                                          {"exchange": exchange}))

    def _gauges(self, now: float) -> None:
        core = self.core
        core.metrics.open_orders.set(len(core.orders))
        core.metrics.unknown_orders.set(len(core.resolver.cases))
        core.metrics.unknown_oldest_age.set(core.resolver.oldest_age(now))

    def _orders_due(self, now: float) -> None:
        """Each live order's timers, in one pass: a resend that is due; a create with no
        report long after its deadline, resolved by lookup; a cancel with no answer for
        long (a lost request), re-driven by lookup, which adopts a finished order or
        sends the cancel again."""
        core = self.core
        wall = core.clock.now()
        stale_create = STALE_CREATE_FACTOR * core.settings.send_deadline_s
        for live in list(core.orders.values()):
            order = live.order
            if live.resend_at is not None and live.resend_at <= now:
                live.resend_at = None
                if order.status in (OrderStatus.PENDING_SUBMIT, OrderStatus.PENDING_CANCEL):
                    self._resend(live)
                    if order.terminal:
                        continue  # forgotten
            if live.creating_since is not None and now - live.creating_since > stale_create:
                live.creating_since = None
                if order.status == OrderStatus.PENDING_SUBMIT:
                    order.move_to(OrderStatus.UNKNOWN, core.clock.now())
                    core.stage(order)
                core.resolve(order)
            if (order.status == OrderStatus.PENDING_CANCEL
                    and wall - order.updated_at > STALE_CANCEL_S
                    and order.client_order_id not in core.resolver
                    and live.creating_since is None):
                core.resolve(order)

    def _resend(self, live: LiveOrder) -> None:
        order = live.order
        before = fingerprint(order)
        self.outcomes.resend_or_expire(live)
        if fingerprint(order) != before:
            self.core.stage(order)
        self.core.settled(order, live)

    def _exchange_of(self, client_order_id: str) -> str:
        order = self.core.get(client_order_id)
        return order.exchange if order is not None else "unknown"

    def _refresh_due(self, now: float) -> None:
        """Read the open orders of each symbol due, so fills and outside cancels show
        (through the side worker: tracking never holds up an order's create)."""
        core = self.core
        every = (live.order for live in core.orders.values())
        for key, orders in core.tracker.due(every, now, core.clock.now()):
            exchange, symbol = key
            tickets = tuple(OrderTicket.of(order, core.counted(order)) for order in orders)
            if not core.registry.tell(side_worker_name(exchange),
                                      TrackSymbol(exchange, symbol, tickets)):
                core.tracker.answered(key)

    def tracked(self, msg: SymbolTracked) -> None:
        """What a symbol's read found: each order that changed (or is yet to be verified)
        moves on as with any other answer of the exchange."""
        self.core.tracker.answered((msg.exchange, msg.symbol))
        if msg.error is not None:
            log.info("tracking %s on %s: %s", msg.symbol, msg.exchange, msg.error.message)
        for report in msg.reports:
            live = self.core.orders.get(report.client_order_id)
            # an order no longer resting (a cancel under way) is left to its own requests
            if (live is not None and live.order.status in TRACKED
                    and not unchanged(live.order, report)):
                self.outcomes.report(report)

    def prices(self, msg: Prices) -> None:
        for symbol, price in msg.last.items():
            self.core.last_prices[(msg.exchange, symbol)] = price

    def _refresh_prices(self, now: float) -> None:
        """Keep reference prices fresh where a notional limit needs them."""
        risk = self.core.settings.risk
        if risk is None or now - self._prices_asked < PRICE_REFRESH_S:
            return
        self._prices_asked = now
        for exchange in risk.exchanges_needing_prices():
            symbols = risk.of(exchange).symbols
            self.core.deliver(side_worker_name(exchange),
                              RefreshPrices(exchange, None if symbols is None else tuple(symbols)))
