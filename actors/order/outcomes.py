"""What OrderActor does with exchange outcomes, time and repairs: the state machine
driven by ExchangeReports, resolution of unknown outcomes, confirmation steps,
tracking refreshes, resends and reconciliation repairs."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from actors.exchange.errors import HALT
from actors.exchange.routing import side_worker_name
from actors.messages import (
    CancelOrder,
    ExchangeReport,
    FetchOrder,
    OrderTicket,
    Prices,
    RefreshPrices,
    SymbolTracked,
    Tick,
    TrackSymbol,
)
from actors.metrics.alerts import Alert
from actors.order.confirmation import count_fills, has_step, overfills, record_ack, verify
from actors.order.core import OrderCore
from actors.order.live import LiveOrder
from actors.order.repairs import orphan_order, repair_order
from actors.order.tracking import TRACKED
from actors.orders import IllegalTransition, Order, adopt, fingerprint
from actors.reconcile.compare import overfill_entry
from actors.reconcile.messages import RECONCILER, ApplyRepairs, RecordDiscrepancy, Repair
from actors.runtime import AUTOMATIC

log = logging.getLogger(__name__)

STALE_CANCEL_S = 30.0
"""A cancel unanswered this long is looked up (and sent again if still wanted)."""
PRICE_REFRESH_S = 10.0


class OrderOutcomes(OrderCore):
    """Exchange reports, ticks and repairs applied to live orders."""

    def _report(self, report: ExchangeReport) -> None:
        if not report.more:
            self.router.done(report.worker)
        if report.op == "create":
            self.router.answered(report.worker)
        self.stats.sends += report.sends
        self.stats.retries += report.retries
        live = self.orders.get(report.client_order_id)
        order: Order | None
        if live is not None:
            order = live.order
        elif report.op == "fetch" and report.view is not None:
            # a verification fetch of an order that finished at once (a market fill)
            order = self._get(report.client_order_id)
        else:
            order = None
        if order is None:
            log.info("report for %s ignored: order is not live", report.client_order_id)
            return
        before, steps = fingerprint(order), len(order.trail)
        if report.op == "create" and live is not None:
            self._create_reported(live, report)
        if report.view is not None and report.view.average_price is not None:
            self.last_prices[(order.exchange, order.symbol)] = report.view.average_price
        if report.error is not None and report.op != "fetch":
            order.last_error = {"code": report.error.code, "message": report.error.message}
        try:
            self._apply_outcome(order, report, live)
        except IllegalTransition as exc:
            log.warning("exchange report not applied: %s", exc)
        self._confirm(order, report, live)
        if fingerprint(order) != before:
            order.updated_at = self.clock.now()
            self._stage(order)
        elif len(order.trail) != steps:
            self._stage(order, publish=False)  # the trail is not part of the wire Order
        self._settled(order, live)

    def _create_reported(self, live: LiveOrder, report: ExchangeReport) -> None:
        order = live.order
        live.creating_since = None
        order.attempts += report.sends
        started, live.submitted_at = live.submitted_at, None
        if started is not None and report.outcome != "failed":
            latency = self.clock.monotonic() - started
            self.stats.submit_latency_s.append(latency)
            self.metrics.child(self.metrics.submit_latency, order.exchange).observe(latency)
        if report.error is not None and report.error.action == HALT:
            self.state.set("halted", f"{order.exchange}: {report.error.message}",
                           by=AUTOMATIC)
            log.error("halting: %s refused the account (%s)", order.exchange,
                      report.error.message)
            self.alerter.alert(Alert("halted", "critical", f"{order.exchange} refused the "
                                     "account; submits halted", {"exchange": order.exchange}))

    def _apply_outcome(self, order: Order, report: ExchangeReport,
                       live: LiveOrder | None) -> None:
        now = self.clock.now()
        cid = order.client_order_id
        # only live orders are being resolved
        if report.op == "fetch" and live is not None and cid in self.resolver:
            self._lookup_answered(live, report)
            return
        if report.view is not None:
            if report.op == "create":
                self.resolver.drop(cid)  # the create's own answer settles what a lookup would
            # an answer that shows the order live does not undo a cancel; a cancel's own
            # answer showing it live is confirmed by a lookup before anything else
            cancel_wanted = order.status == "pending_cancel"
            adopt(order, report.view, now, keep_status=cancel_wanted)
            if cancel_wanted and report.op == "cancel" and not order.terminal:
                self._resolve(order)
            if live is not None and live.cancel_after_create:
                live.cancel_after_create = False
                if not order.terminal:
                    self._dispatch(order, CancelOrder)
        elif report.op == "create" and live is not None:
            self._create_failed(live, report)
        elif report.op == "cancel":
            self._resolve(order)  # learn what became of it

    def _confirm(self, order: Order, report: ExchangeReport, live: LiveOrder | None) -> None:
        """The confirmation steps this report completes, recorded on the order's trail."""
        view, now = report.view, self.clock.now()
        if view is None:
            return
        record_ack(order, now, report.source)
        for mismatch in verify(order, view, now, report.source):
            self._alert_mismatch(order, mismatch)
        already = len(overfills(order))
        for trade in count_fills(order, self._known_fills(order, live), report.trades, now,
                                 report.trades_source):
            self.ledger.stage_fill(order.exchange, order.client_order_id, trade)
        self._alert_overfills(order, already)

    def _alert_overfills(self, order: Order, already: int) -> None:
        """Alert on the overfill steps after the first `already`: trades not counted."""
        for step in overfills(order)[already:]:
            log.error("order %s: trade %s of %s would fill %s beyond its amount %s; "
                      "not counted", order.client_order_id, step["trade_id"], step["amount"],
                      step["counted"], step["order_amount"])
            self.alerter.alert(Alert(
                "order_overfill", "critical",
                f"order {order.client_order_id}: trade {step['trade_id']} of {step['amount']} "
                f"on top of {step['counted']} would exceed its amount {step['order_amount']}; "
                "not counted", {"exchange": order.exchange}))
            # after the commit, as everything that leaves this actor
            record = RecordDiscrepancy(order.exchange, overfill_entry(order, step))
            self.batch.after_commit(partial(self._deliver_record, record))

    def _deliver_record(self, record: RecordDiscrepancy) -> None:
        if not self.registry.tell(RECONCILER, record):
            log.warning("discrepancy of %s not reported: no reconciler running",
                        record.entry["client_order_id"])

    def _alert_mismatch(self, order: Order, mismatch: dict[str, Any]) -> None:
        field = mismatch["field"]
        log.error("order %s: exchange shows %s %s, ledger has %s", order.client_order_id,
                  field, mismatch["exchange"], mismatch["ledger"])
        self.alerter.alert(Alert(
            "order_mismatch", "critical",
            f"order {order.client_order_id}: exchange shows {field} {mismatch['exchange']}, "
            f"ledger has {mismatch['ledger']}", {"exchange": order.exchange, "field": field}))

    def _create_failed(self, live: LiveOrder, report: ExchangeReport) -> None:
        order, now = live.order, self.clock.now()
        if report.outcome == "rejected":
            live.cancel_after_create = False
            order.move_to("rejected", now)
        elif report.outcome == "unknown":
            if order.status == "pending_submit":
                order.move_to("unknown", now)
            self._resolve(order)
        else:  # known not sent: send again later, within the send deadline
            error = report.error
            wait = error.retry_after_s if error and error.retry_after_s else 1.0
            live.resend_at = self.clock.monotonic() + wait

    def _lookup_answered(self, live: LiveOrder, report: ExchangeReport) -> None:
        order = live.order
        cid = order.client_order_id
        now = self.clock.monotonic()
        if report.view is not None:
            self.resolver.drop(cid)
            live.cancel_after_create = False  # the cancel goes out here, once
            cancel_wanted = order.status == "pending_cancel"
            adopt(order, report.view, self.clock.now(), keep_status=cancel_wanted)
            if cancel_wanted and not order.terminal:
                self._dispatch(order, CancelOrder)
            return
        absent = report.error is not None and report.error.code == "order_not_found"
        if self.resolver.looked_up(cid, absent=absent, now=now):
            log.info("order %s proven absent on %s", cid, order.exchange)
            self._resend_or_expire(live)

    def _resend_or_expire(self, live: LiveOrder) -> None:
        order, now = live.order, self.clock.now()
        if now - order.created_at > self.settings.send_deadline_s:
            order.last_error = {"code": "not_sent", "message":
                                "not on the exchange and past its send deadline"}
            order.move_to("expired", now)
            return
        if order.status == "unknown":
            order.move_to("pending_submit", now)
        elif order.status == "pending_cancel":
            order.move_to("canceled", now)  # never placed, and no longer wanted
            return
        self.stats.resends += 1
        self._place(live)
        # its fate is known (not placed); the new create is like any new order's, so
        # start-up does not wait for its answer
        live.recovering = False

    def _repairs(self, msg: ApplyRepairs) -> None:
        results = [self._repair(repair, msg.run_id) for repair in msg.repairs]
        for key, value in msg.cursors:
            self.ledger.stage_meta(key, value)
        self.batch.sync_next()  # the run's report says what was applied
        self.batch.after_commit(lambda: msg.reply(results))

    def _repair(self, repair: Repair, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = {"client_order_id": repair.client_order_id,
                                  "kind": repair.kind, "reason": repair.reason}
        cid, now = repair.client_order_id, self.clock.now()
        order = self._get(cid)
        already = 0 if order is None else len(overfills(order))
        if repair.kind == "adopt_order":
            if order is not None:
                return {**result, "applied": False, "detail": "already in the ledger"}
            order = orphan_order(repair, now, run_id)
            outcome, changed = {"applied": True, "status": [None, order.status]}, True
            fills = count_fills(order, self._known_fills(order), repair.trades, now,
                                source="reconcile")
            if not order.terminal:  # live from now on, with the fills just counted
                self.orders[cid] = LiveOrder(order, fills=self.finished_fills.pop(cid, None))
        elif order is None:
            return {**result, "applied": False, "detail": "not in the ledger"}
        else:
            outcome, fills, changed = repair_order(order, repair, self._known_fills(order), now,
                                                   run_id)
            if not outcome["applied"]:
                return {**result, **outcome}
        for trade in fills:
            self.ledger.stage_fill(order.exchange, cid, trade)
        self._alert_overfills(order, already)
        self._stage(order, publish=changed)
        self._settled(order, self.orders.get(cid))
        return {**result, **outcome}

    def _tick(self, msg: Tick) -> None:
        now = self.clock.monotonic()
        self.state.unresolved = self._unresolved()  # read by health without a message
        self.waiters.expire(now, self._get)
        for cid in self.resolver.due(now):
            live = self.orders.get(cid)
            if live is None:
                self.resolver.drop(cid)
            else:
                self._dispatch(live.order, FetchOrder)
        self._timers_due(now)
        self._refresh_due(now)
        self._refresh_prices(now)
        self._gauges(now)
        for cid, age in self.resolver.overdue(now):
            log.warning("order %s unresolved for %.0f s", cid, age)
            self.alerter.alert(Alert("unknown_order_age", "warning",
                                     f"order {cid} is unresolved for {age:.0f} s",
                                     {"exchange": self._exchange_of(cid)}))

    def _gauges(self, now: float) -> None:
        self.metrics.open_orders.set(len(self.orders))
        self.metrics.unknown_orders.set(len(self.resolver.cases))
        self.metrics.unknown_oldest_age.set(self.resolver.oldest_age(now))

    def _timers_due(self, now: float) -> None:
        """Each live order's timers, in one pass: a resend that is due; a create with no
        report long after its deadline, resolved by lookup; a cancel with no answer for
        long (a lost request), re-driven by lookup, which adopts a finished order or
        sends the cancel again."""
        wall = self.clock.now()
        stale_create = 2 * self.settings.send_deadline_s
        for live in list(self.orders.values()):
            order = live.order
            if live.resend_at is not None and live.resend_at <= now:
                live.resend_at = None
                if order.status in ("pending_submit", "pending_cancel"):
                    self._resend(live)
                    if order.terminal:
                        continue  # forgotten
            if live.creating_since is not None and now - live.creating_since > stale_create:
                live.creating_since = None
                if order.status == "pending_submit":
                    order.move_to("unknown", self.clock.now())
                    self._stage(order)
                self._resolve(order)
            if (order.status == "pending_cancel" and wall - order.updated_at > STALE_CANCEL_S
                    and order.client_order_id not in self.resolver
                    and live.creating_since is None):
                self._resolve(order)

    def _resend(self, live: LiveOrder) -> None:
        order = live.order
        before = fingerprint(order)
        self._resend_or_expire(live)
        if fingerprint(order) != before:
            self._stage(order)
        self._settled(order, live)

    def _exchange_of(self, client_order_id: str) -> str:
        order = self._get(client_order_id)
        return order.exchange if order is not None else "unknown"

    def _refresh_due(self, now: float) -> None:
        """Read the open orders of each symbol due, so fills and outside cancels show
        (through the side worker: tracking never holds up an order's create)."""
        every = (live.order for live in self.orders.values())
        for key, orders in self.tracker.due(every, now, self.clock.now()):
            exchange, symbol = key
            tickets = tuple(OrderTicket.of(order, self._counted(order)) for order in orders)
            if not self.registry.tell(side_worker_name(exchange),
                                      TrackSymbol(exchange, symbol, tickets)):
                self.tracker.answered(key)

    def _tracked(self, msg: SymbolTracked) -> None:
        """What a symbol's read found: each order that changed (or is yet to be verified)
        moves on as with any other answer of the exchange."""
        self.tracker.answered((msg.exchange, msg.symbol))
        self._catch_up_read(msg)
        if msg.error is not None:
            log.info("tracking %s on %s: %s", msg.symbol, msg.exchange, msg.error.message)
        for report in msg.reports:
            live = self.orders.get(report.client_order_id)
            # an order no longer resting (a cancel under way) is left to its own requests
            if (live is not None and live.order.status in TRACKED
                    and not _unchanged(live.order, report)):
                self._report(report)

    def _catch_up_read(self, msg: SymbolTracked) -> None:
        """A stream's catch-up counts the read (see order_stream)."""

    def _prices(self, msg: Prices) -> None:
        for symbol, price in msg.last.items():
            self.last_prices[(msg.exchange, symbol)] = price

    def _refresh_prices(self, now: float) -> None:
        """Keep reference prices fresh where a notional limit needs them."""
        if self.settings.risk is None or now - self._prices_asked < PRICE_REFRESH_S:
            return
        self._prices_asked = now
        for exchange in self.settings.risk.exchanges_needing_prices():
            symbols = self.settings.risk.of(exchange).symbols
            self._deliver(side_worker_name(exchange),
                          RefreshPrices(exchange, None if symbols is None else tuple(symbols)))

    def _unresolved(self) -> dict[str, Any]:
        """Orders never stay unknown silently: how many, and the oldest's age."""
        now = self.clock.monotonic()
        return {"count": len(self.resolver.cases),
                "oldest_age_s": round(self.resolver.oldest_age(now), 3)}


def _unchanged(order: Order, report: ExchangeReport) -> bool:
    """Whether a tracking report shows nothing the order does not hold already."""
    view = report.view
    return (view is not None and not report.trades and view.status == order.status
            and view.filled == order.filled and view.order_id == order.order_id
            and has_step(order, "verified", "mismatch"))
