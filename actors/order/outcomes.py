"""What OrderActor does with the exchange's answers: the state machine driven by
ExchangeReports (a create's answer, a cancel's, a lookup's, a tracking read's, a
stream event), resolution of unknown outcomes, confirmation steps and resends."""

from __future__ import annotations

import logging

from actors.exchange.errors import HALT
from actors.exchange.messages import CancelOrder, OrderView
from actors.metrics.alerts import Alert
from actors.order.confirmation import count_fills, has_step, overfills, record_ack, verify
from actors.order.core import OrderCore
from actors.order.discrepancies import alert_mismatch, alert_overfills
from actors.order.live import LiveOrder
from actors.order.messages import ExchangeReport
from actors.order.order_counts import filled_first
from actors.orders import IllegalTransition, Order, adopt, fingerprint
from actors.runtime import AUTOMATIC
from protocol.messages import OrderStatus

log = logging.getLogger(__name__)


class Outcomes:
    """Exchange reports applied to orders; used by OrderActor's thread only."""

    def __init__(self, core: OrderCore) -> None:
        self.core = core

    def report(self, report: ExchangeReport) -> None:
        core = self.core
        if not report.more:
            core.router.done(report.worker)
        if report.op == "create":
            core.router.answered(report.worker)
        core.stats.sends += report.sends
        core.stats.retries += report.retries
        live = core.orders.get(report.client_order_id)
        order: Order | None
        if live is not None:
            order = live.order
        elif report.op == "fetch" and report.view is not None:
            # a verification fetch of an order that finished at once (a market fill)
            order = core.get(report.client_order_id)
        else:
            order = None
        if order is None:
            log.info("report for %s ignored: order is not live", report.client_order_id)
            return
        before, steps, filled = fingerprint(order), len(order.trail), order.filled
        if report.op == "create" and live is not None:
            self._create_reported(live, report)
        if report.view is not None and report.view.average_price is not None:
            core.last_prices[(order.exchange, order.symbol)] = report.view.average_price
        if report.error is not None and report.op != "fetch":
            order.last_error = {"code": report.error.code, "message": report.error.message}
        try:
            self._apply_outcome(order, report, live)
        except IllegalTransition as exc:
            log.warning("exchange report not applied: %s", exc)
        self._confirm(order, report, live)
        filled_first(core, order.exchange, filled, order.filled)  # the count went down
        if fingerprint(order) != before:
            order.updated_at = core.clock.now()
            core.stage(order)
        elif len(order.trail) != steps:
            core.stage(order, publish=False)  # the trail is not part of the wire Order
        core.settled(order, live)

    def _create_reported(self, live: LiveOrder, report: ExchangeReport) -> None:
        core, order = self.core, live.order
        live.creating_since = None
        order.attempts += report.sends
        started, live.submitted_at = live.submitted_at, None
        if started is not None and report.outcome != "failed":
            latency = core.clock.monotonic() - started
            core.stats.submit_latency_s.append(latency)
            core.metrics.child(core.metrics.submit_latency, order.exchange).observe(latency)
        if report.error is not None and report.error.action == HALT:
            core.state.set("halted", f"{order.exchange}: {report.error.message}",
                           by=AUTOMATIC)
            log.error("halting: %s refused the account (%s)", order.exchange,
                      report.error.message)
            core.alerter.alert(Alert("halted", "critical", f"{order.exchange} refused the "
                                     "account; submits halted", {"exchange": order.exchange}))

    def _apply_outcome(self, order: Order, report: ExchangeReport,
                       live: LiveOrder | None) -> None:
        core = self.core
        now = core.clock.now()
        cid = order.client_order_id
        # only live orders are being resolved
        if report.op == "fetch" and live is not None and cid in core.resolver:
            self._lookup_answered(live, report)
            return
        if report.view is not None:
            if report.op == "create":
                core.resolver.drop(cid)  # the create's own answer settles what a lookup would
            # an answer that shows the order live does not undo a cancel; a cancel's own
            # answer showing it live is confirmed by a lookup before anything else
            cancel_wanted = order.status == OrderStatus.PENDING_CANCEL
            adopt(order, report.view, now, keep_status=cancel_wanted)
            if cancel_wanted and report.op == "cancel" and not order.terminal:
                core.resolve(order)
            if live is not None and live.cancel_after_create:
                live.cancel_after_create = False
                if not order.terminal:
                    core.dispatch(order, CancelOrder)
        elif report.op == "create" and live is not None:
            self._create_failed(live, report)
        elif report.op == "cancel":
            core.resolve(order)  # learn what became of it

    def _confirm(self, order: Order, report: ExchangeReport, live: LiveOrder | None) -> None:
        """The confirmation steps this report completes, recorded on the order's trail."""
        core = self.core
        view, now = report.view, core.clock.now()
        if view is None:
            return
        record_ack(order, now, report.source)
        for mismatch in verify(order, view, now, report.source):
            alert_mismatch(core, order, mismatch)
        already = len(overfills(order))
        for trade in count_fills(order, core.known_fills(order, live), report.trades, now,
                                 report.trades_source):
            core.ledger.stage_fill(order.exchange, order.client_order_id, trade)
        alert_overfills(core, order, already)

    def _create_failed(self, live: LiveOrder, report: ExchangeReport) -> None:
        order, now = live.order, self.core.clock.now()
        if report.outcome == "rejected":
            live.cancel_after_create = False
            order.move_to(OrderStatus.REJECTED, now)
        elif report.outcome == "unknown":
            if order.status == OrderStatus.PENDING_SUBMIT:
                order.move_to(OrderStatus.UNKNOWN, now)
            self.core.resolve(order)
        else:  # known not sent: send again later, within the send deadline
            error = report.error
            wait = error.retry_after_s if error and error.retry_after_s else 1.0
            live.resend_at = self.core.clock.monotonic() + wait

    def _lookup_answered(self, live: LiveOrder, report: ExchangeReport) -> None:
        core, order = self.core, live.order
        cid = order.client_order_id
        now = core.clock.monotonic()
        if report.view is not None:
            core.resolver.drop(cid)
            live.cancel_after_create = False  # the cancel goes out here, once
            cancel_wanted = order.status == OrderStatus.PENDING_CANCEL
            adopt(order, report.view, core.clock.now(), keep_status=cancel_wanted)
            if cancel_wanted and not order.terminal:
                core.dispatch(order, CancelOrder)
            return
        absent = report.error is not None and report.error.code == "order_not_found"
        if core.resolver.looked_up(cid, absent=absent, now=now):
            log.info("order %s proven absent on %s", cid, order.exchange)
            self.resend_or_expire(live)

    def resend_or_expire(self, live: LiveOrder) -> None:
        """An order known not placed: its create goes again, within its send deadline."""
        core, order = self.core, live.order
        now = core.clock.now()
        if now - order.created_at > core.settings.send_deadline_s:
            order.last_error = {"code": "not_sent", "message":
                                "not on the exchange and past its send deadline"}
            order.move_to(OrderStatus.EXPIRED, now)
            return
        if order.status == OrderStatus.UNKNOWN:
            order.move_to(OrderStatus.PENDING_SUBMIT, now)
        elif order.status == OrderStatus.PENDING_CANCEL:
            order.move_to(OrderStatus.CANCELED, now)  # never placed, and no longer wanted
            return
        core.stats.resends += 1
        core.place(live)
        # its fate is known (not placed); the new create is like any new order's, so
        # start-up does not wait for its answer
        live.recovering = False


def unchanged(order: Order, report: ExchangeReport) -> bool:
    """Whether a tracking report shows nothing the order does not hold already."""
    view = report.view
    return view is not None and not report.trades and shows_nothing_new(order, view)


def shows_nothing_new(order: Order, view: OrderView) -> bool:
    """Whether the exchange's view of the order (its trades aside) is what the order
    holds already, the order verified against it once."""
    return (view.status == order.status and view.filled == order.filled
            and view.order_id == order.order_id and has_step(order, "verified", "mismatch"))
