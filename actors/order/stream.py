"""What OrderActor does with an exchange's user-data stream: events applied on the
path of any lookup's answer (a fill is a trade id, a repeat changes nothing), an event
for an order the ledger lacks reported for reconciliation, and the catch-up by REST
that makes a (re)connected stream trusted."""

from __future__ import annotations

import logging
from typing import TypeVar

from actors.exchange.messages import FetchOrder, OrderTicket
from actors.exchange.routing import side_worker_name
from actors.order.core import STALE_CREATE_FACTOR, OrderCore
from actors.order.messages import ExchangeReport, StreamConnected, StreamEvents, SymbolTracked
from actors.order.outcomes import Outcomes, shows_nothing_new
from actors.order.stream_held import HeldEvents
from actors.order.tracking import TRACKED, SymbolKey
from actors.orders import Order, decimal_text
from actors.reconcile.messages import RecordDiscrepancy

log = logging.getLogger(__name__)
K = TypeVar("K")

REMEMBERED = 10_000
"""Keys each of the stream's once-only memories keeps, the newest: an account shared with
other programs streams their orders without end. A key forgotten costs at most one more
warning or one more read of an order's trades."""


def first_time(seen: dict[K, None], key: K, most: int = REMEMBERED) -> bool:
    """Whether `key` is new to `seen`, which then holds it among its `most` newest."""
    if key in seen:
        return False
    seen[key] = None
    if len(seen) > most:
        del seen[next(iter(seen))]  # the oldest: dicts keep their order of insertion
    return True


class StreamFollower:
    """Stream events and catch-ups; used by OrderActor's thread only."""

    def __init__(self, core: OrderCore, outcomes: Outcomes) -> None:
        self.core = core
        self.outcomes = outcomes
        self.catch_ups: dict[str, tuple[int, dict[SymbolKey, int]]] = {}
        """Exchange -> (stream connection, reads still to answer before it is trusted)."""
        self.trades_asked: dict[tuple[str, str], None] = {}
        """(client id, filled) whose trades were read once, of live and finished orders."""
        self.unknown_streamed: dict[tuple[str, str | None, str], None] = {}
        """(exchange, symbol, order id) of orders reported once: exchanges number orders
        each their own way, binance per symbol."""
        self.held = HeldEvents(core.clock.monotonic,
                               STALE_CREATE_FACTOR * core.settings.send_deadline_s)
        """Events of orders whose create is unanswered, for after its answer; kept no
        longer than such a create is waited for (then it is looked up)."""

    def connected(self, msg: StreamConnected, reads: int = 1) -> None:
        """Read every symbol of the exchange with tracked orders now; the stream is
        trusted once each has answered (`reads` times)."""
        tracker = self.core.tracker
        keys = {(o.exchange, o.symbol)
                for o in (live.order for live in self.core.orders.values())
                if o.exchange == msg.exchange and o.status in TRACKED}
        # a read already under way may predate the subscription: the one after it counts
        self.catch_ups[msg.exchange] = (msg.epoch, {
            key: max(reads, 2 if key in tracker.asking else 1) for key in keys})
        tracker.read_now(keys)
        self._caught_up_if_done(msg.exchange)

    def take_over(self) -> None:
        """A new OrderActor: catch-ups its predecessor left under way start again, or
        their streams would never be trusted. A read the predecessor asked may predate
        the subscription and still answer here: two answers count."""
        health = self.core.settings.stream_health
        if health is None:
            return
        for exchange, epoch in health.catching_up().items():
            self.connected(StreamConnected(exchange, epoch), reads=2)

    def catch_up_read(self, msg: SymbolTracked) -> None:
        """A symbol's read answered: one less for its exchange's catch-up."""
        pending = self.catch_ups.get(msg.exchange)
        key = (msg.exchange, msg.symbol)
        if pending is None or msg.error is not None or key not in pending[1]:
            return
        pending[1][key] -= 1
        if pending[1][key] <= 0:
            del pending[1][key]
            self._caught_up_if_done(msg.exchange)

    def _caught_up_if_done(self, exchange: str) -> None:
        epoch, keys = self.catch_ups[exchange]
        if keys:
            return
        del self.catch_ups[exchange]
        health = self.core.settings.stream_health
        if health is not None:
            health.caught_up(exchange, epoch)
        log.info("stream of %s caught up; tracking slows to its safety interval", exchange)

    def events(self, msg: StreamEvents) -> None:
        for report in msg.reports:
            live = self.core.orders.get(report.client_order_id)
            if live is not None and live.creating_since is not None:
                # the stream is often faster than the create's answer, which settles the
                # order (and answers its submit); the events wait for it (not forever)
                self.held.hold(report.client_order_id, report)
            else:
                self._apply(msg.exchange, report)

    def release_held(self, client_order_id: str, exchange: str) -> None:
        """After the create's answer: the events that waited for it."""
        for event in self.held.take(client_order_id):
            self._apply(exchange, event)

    def expire_held(self) -> None:
        """On a tick: a create that never answers holds nothing for long."""
        self.held.expire()

    def _apply(self, exchange: str, report: ExchangeReport) -> None:
        order = self.core.get(report.client_order_id)
        # an order set aside was placed elsewhere: the event is of another one
        if (order is None or report.client_order_id in self.core.set_aside
                or not _same_order(order, exchange, report)):
            if exchange:
                self._unknown_streamed(exchange, report)
        elif not self._tells_nothing(order, report):
            self.outcomes.report(report)
            self._fetch_missing_trades(order)

    def _tells_nothing(self, order: Order, report: ExchangeReport) -> bool:
        """An event that tells nothing new: a repeat of what the order holds, its trades
        counted already (most events of an order whose create's answer settled it), or
        an older state of an order already finished (its new trades still count)."""
        view = report.view
        if view is None:
            return True
        if report.trades:
            known = self.core.known_fills(order)
            if any(trade.trade_id not in known for trade in report.trades):
                return False
        if order.terminal and view.status in TRACKED:
            return True
        return shows_nothing_new(order, view)

    def _fetch_missing_trades(self, order: Order) -> None:
        """An order the stream shows filled beyond the trades it delivered (events lost):
        its trades are read once, through the side worker."""
        counted = self.core.counted(order)
        key = (order.client_order_id, str(order.filled))
        if counted >= order.filled or not first_time(self.trades_asked, key):
            return
        self.core.deliver(side_worker_name(order.exchange),
                          FetchOrder(OrderTicket.of(order, counted)))

    def _unknown_streamed(self, exchange: str, report: ExchangeReport) -> None:
        view = report.view
        if view is None or not first_time(self.unknown_streamed,
                                          (exchange, view.symbol, view.order_id)):
            return
        prefix = self.core.settings.client_id_prefix
        ours = bool(prefix) and report.client_order_id.startswith(prefix)
        log.warning("stream of %s: order %s (%s) is not one of the ledger", exchange,
                    report.client_order_id, view.order_id)
        entry = {"kind": "unknown_on_exchange", "client_order_id": report.client_order_id,
                 "order_id": view.order_id, "ours": ours, "source": "stream",
                 "exchange": {"status": view.status, "filled": decimal_text(view.filled),
                              "fee": decimal_text(view.fee_cost)}, "repair": False}
        self.core.tell_reconciler(RecordDiscrepancy(exchange, entry))


def _same_order(order: Order, exchange: str, report: ExchangeReport) -> bool:
    """Whether an event naming the order's client id is of that order: an account shared
    with other programs streams theirs too, and binance holds a client id unique among
    open orders only, so another order may carry the client id of one of ours that is
    finished (or of one on another exchange)."""
    if exchange and order.exchange != exchange:
        return False
    view = report.view
    return view is None or order.order_id is None or view.order_id == order.order_id
