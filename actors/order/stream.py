"""What OrderActor does with an exchange's user-data stream: events applied on the
path of any lookup's answer (a fill is a trade id, a repeat changes nothing), an event
for an order the ledger lacks reported for reconciliation, and the catch-up by REST
that makes a (re)connected stream trusted."""

from __future__ import annotations

import logging

from actors.exchange.routing import side_worker_name
from actors.messages import ExchangeReport, FetchOrder, OrderTicket, SymbolTracked
from actors.order.core import OrderCore
from actors.order.live import LiveOrder
from actors.order.outcomes import Outcomes, unchanged
from actors.order.tracking import TRACKED, SymbolKey
from actors.orders import Order, decimal_text
from actors.reconcile.messages import RecordDiscrepancy
from actors.stream.events import StreamConnected, StreamEvents

log = logging.getLogger(__name__)


class StreamFollower:
    """Stream events and catch-ups; used by OrderActor's thread only."""

    def __init__(self, core: OrderCore, outcomes: Outcomes) -> None:
        self.core = core
        self.outcomes = outcomes
        self.catch_ups: dict[str, tuple[int, dict[SymbolKey, int]]] = {}
        """Exchange -> (stream connection, reads still to answer before it is trusted)."""
        self.trades_asked: set[tuple[str, str]] = set()
        """(client id, filled) whose trades were read once, of live and finished orders."""
        self.unknown_streamed: set[str] = set()  # order ids reported once

    def connected(self, msg: StreamConnected) -> None:
        """Read every symbol of the exchange with tracked orders now; the stream is
        trusted once each has answered."""
        tracker = self.core.tracker
        keys = {(o.exchange, o.symbol)
                for o in (live.order for live in self.core.orders.values())
                if o.exchange == msg.exchange and o.status in TRACKED}
        # a read already under way may predate the subscription: the one after it counts
        self.catch_ups[msg.exchange] = (msg.epoch, {
            key: 2 if key in tracker.asking else 1 for key in keys})
        tracker.read_now(keys)
        self._caught_up_if_done(msg.exchange)

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
                # order (and answers its submit); the events wait for it
                if live.held is None:
                    live.held = []
                live.held.append(report)
            else:
                self._apply(msg.exchange, report)

    def release_held(self, live: LiveOrder) -> None:
        """After the create's answer: the events that waited for it."""
        held, live.held = live.held or [], None
        for event in held:  # the order is live or recently finished: it is found
            self._apply(live.order.exchange, event)

    def _apply(self, exchange: str, report: ExchangeReport) -> None:
        order = self.core.get(report.client_order_id)
        if order is None:
            if exchange:
                self._unknown_streamed(exchange, report)
        elif not _stale(order, report):
            self.outcomes.report(report)
            self._fetch_missing_trades(order)

    def _fetch_missing_trades(self, order: Order) -> None:
        """An order the stream shows filled beyond the trades it delivered (events lost):
        its trades are read once, through the side worker."""
        counted = self.core.counted(order)
        key = (order.client_order_id, str(order.filled))
        if counted >= order.filled or key in self.trades_asked:
            return
        self.trades_asked.add(key)
        self.core.deliver(side_worker_name(order.exchange),
                          FetchOrder(OrderTicket.of(order, counted)))

    def _unknown_streamed(self, exchange: str, report: ExchangeReport) -> None:
        view = report.view
        if view is None or view.order_id in self.unknown_streamed:
            return
        self.unknown_streamed.add(view.order_id)
        prefix = self.core.settings.client_id_prefix
        ours = bool(prefix) and report.client_order_id.startswith(prefix)
        log.warning("stream of %s: order %s (%s) is not in the ledger", exchange,
                    report.client_order_id, view.order_id)
        entry = {"kind": "unknown_on_exchange", "client_order_id": report.client_order_id,
                 "order_id": view.order_id, "ours": ours, "source": "stream",
                 "exchange": {"status": view.status, "filled": decimal_text(view.filled),
                              "fee": decimal_text(view.fee_cost)}, "repair": False}
        self.core.tell_reconciler(RecordDiscrepancy(exchange, entry))


def _stale(order: Order, report: ExchangeReport) -> bool:
    """An event that tells nothing new: a repeat of what the order holds, or an older
    state of an order already finished (its trades still count)."""
    view = report.view
    if view is None:
        return True
    if order.terminal:
        return view.status in TRACKED and not report.trades
    return order.status in TRACKED and unchanged(order, report)
