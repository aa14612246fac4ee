"""What OrderActor does with an exchange's user-data stream: events applied on the
path of any lookup's answer (a fill is a trade id, a repeat changes nothing), an event
for an order the ledger lacks reported for reconciliation, and the catch-up by REST
that makes a (re)connected stream trusted."""

from __future__ import annotations

import logging
from functools import partial

from actors.exchange.messages import FetchOrder, OrderTicket
from actors.exchange.routing import side_worker_name
from actors.order.confirmation import has_step
from actors.order.messages import ExchangeReport, StreamConnected, StreamEvents, SymbolTracked, Tick
from actors.order.outcomes import OrderOutcomes
from actors.order.tracking import TRACKED
from actors.orders import Order, decimal_text
from actors.reconcile.messages import RecordDiscrepancy

log = logging.getLogger(__name__)


class OrderStream(OrderOutcomes):
    """Stream events and catch-ups."""

    def _stream_connected(self, msg: StreamConnected) -> None:
        """Read every symbol of the exchange with tracked orders now; the stream is
        trusted once each has answered."""
        keys = {(o.exchange, o.symbol) for o in self.live.values()
                if o.exchange == msg.exchange and o.status in TRACKED}
        # a read already under way may predate the subscription: the one after it counts
        self.catch_ups[msg.exchange] = (msg.epoch, {
            key: 2 if key in self.tracker.asking else 1 for key in keys})
        self.tracker.read_now(keys)
        self._caught_up_if_done(msg.exchange)

    def _catch_up_read(self, msg: SymbolTracked) -> None:
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
        if self.stream_health is not None:
            self.stream_health.caught_up(exchange, epoch)
        log.info("stream of %s caught up; tracking slows to its safety interval", exchange)

    def _streamed(self, msg: StreamEvents) -> None:
        for report in msg.reports:
            if report.client_order_id in self.creating:
                # the stream is often faster than the create's answer, which settles the
                # order (and answers its submit); the events wait for it (not forever)
                self.stream_held.hold(report.client_order_id, report)
            else:
                self._stream_report(msg.exchange, report)

    def _report(self, report: ExchangeReport) -> None:
        super()._report(report)
        if report.op == "create":
            held = self.stream_held.take(report.client_order_id)
            order = self.live.get(report.client_order_id)
            for event in held:
                self._stream_report(order.exchange if order else "", event)

    def _tick(self, msg: Tick) -> None:
        super()._tick(msg)
        self.stream_held.expire()  # a create that never answers holds nothing for long

    def _stream_report(self, exchange: str, report: ExchangeReport) -> None:
        order = self.live.get(report.client_order_id) or self._get(report.client_order_id)
        if order is None:
            if exchange:
                self._unknown_streamed(exchange, report)
        elif not self._tells_nothing(order, report):
            super()._report(report)
            self._fetch_missing_trades(order)

    def _tells_nothing(self, order: Order, report: ExchangeReport) -> bool:
        """An event that tells nothing new: a repeat of what the order holds, its trades
        counted already (most events of an order whose create's answer settled it), or
        an older state of an order already finished (its new trades still count)."""
        view = report.view
        if view is None:
            return True
        if report.trades:
            known = self._known_fills(order)
            if any(trade.trade_id not in known for trade in report.trades):
                return False
        if order.terminal and view.status in TRACKED:
            return True
        return (view.status == order.status and view.filled == order.filled
                and view.order_id == order.order_id
                and has_step(order, "verified", "mismatch"))

    def _fetch_missing_trades(self, order: Order) -> None:
        """An order the stream shows filled beyond the trades it delivered (events lost):
        its trades are read once, through the side worker."""
        counted = self._counted(order)
        key = (order.client_order_id, str(order.filled))
        if counted >= order.filled or key in self.trades_asked:
            return
        self.trades_asked.add(key)
        self._deliver(side_worker_name(order.exchange),
                      FetchOrder(OrderTicket.of(order, counted)))

    def _unknown_streamed(self, exchange: str, report: ExchangeReport) -> None:
        view = report.view
        if view is None or view.order_id in self.unknown_streamed:
            return
        self.unknown_streamed.add(view.order_id)
        prefix = self.settings.client_id_prefix
        ours = bool(prefix) and report.client_order_id.startswith(prefix)
        log.warning("stream of %s: order %s (%s) is not in the ledger", exchange,
                    report.client_order_id, view.order_id)
        entry = {"kind": "unknown_on_exchange", "client_order_id": report.client_order_id,
                 "order_id": view.order_id, "ours": ours, "source": "stream",
                 "exchange": {"status": view.status, "filled": decimal_text(view.filled),
                              "fee": decimal_text(view.fee_cost)}, "repair": False}
        self.batch.after_commit(partial(self._deliver_record,
                                        RecordDiscrepancy(exchange, entry)))
