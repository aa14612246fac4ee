"""OrderActor: the only writer of order state; owns the ledger and the state machine.

Work is grouped: each message stages its ledger writes and queues its replies,
and a `Flush` the actor sends itself (it lands behind everything already waiting
in the inbox) commits the whole batch in one transaction, then publishes the
events, sends the replies and only then calls the exchange.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.alerts import Alert, Alerter, LogAlerter
from actors.batch import Batch
from actors.confirmation import count_fills, record_ack, verify
from actors.ledger import Ledger
from actors.messages import (
    Cancel,
    CancelOrder,
    ExchangeReport,
    FetchOrder,
    Flush,
    GetStatus,
    ListOrders,
    OrderTicket,
    PlaceOrder,
    Prices,
    RefreshPrices,
    Reply,
    Submit,
    Tick,
    TradeView,
)
from actors.metrics import Metrics
from actors.order_stats import OrderStats
from actors.orders import ZERO, IllegalTransition, Order, adopt, fingerprint
from actors.recent import RecentOrders
from actors.reconcile_messages import ApplyRepairs, Repair
from actors.repairs import orphan_order, repair_order
from actors.resolution import Resolver, ResolveSettings
from actors.risk import RiskPolicy
from actors.risk import check as check_risk
from actors.routing import Router, side_worker_name
from actors.runtime import Clock, DaemonState, EventSink
from actors.supervisor import Registry, SupervisedActor
from actors.waiters import WAIT_CANCEL, WAIT_SUBMIT, Waiters
from protocol.errors import ProtocolError
from protocol.messages import OrderRef, OrderSpec

log = logging.getLogger(__name__)

NAME = "order"
UNRESOLVED = frozenset({"pending_submit", "unknown", "pending_cancel"})
REFRESH_PER_TICK = 200
PRICE_REFRESH_S = 10.0


@dataclass(frozen=True)
class OrderSettings:
    """What OrderActor needs to know from the configuration."""

    ledger_path: Path
    default_exchange: str
    workers: dict[str, int] = field(default_factory=lambda: {"paper": 1})
    accept_timeout_s: float = 5.0
    client_id_prefix: str = "od-"
    refresh_interval_s: float = 2.0
    """How often live orders are looked up once they are no longer young."""
    young_interval_s: float = 0.5
    """How often orders younger than young_age_s are looked up."""
    young_age_s: float = 60.0
    """Age (seconds since recorded) below which an order is young."""
    send_deadline_s: float = 30.0
    resolution: ResolveSettings = field(default_factory=ResolveSettings)
    risk: RiskPolicy | None = None
    """Risk limits per exchange, shared with the reload of the configuration."""


@dataclass(frozen=True, slots=True)
class GetStats:
    """Tell: execution statistics to `reply`."""

    reply: Callable[[dict[str, Any]], None]
    """Receives the statistics."""


@dataclass(frozen=True, slots=True)
class IsRecovered:
    """Ask: True once every order found unresolved at start is resolved."""


class OrderActor(SupervisedActor):
    """Order state machine, idempotency, durable ledger, order events."""

    def __init__(self, registry: Registry, settings: OrderSettings, state: DaemonState,
                 events: EventSink, clock: Clock | None = None,
                 alerter: Alerter | None = None, metrics: Metrics | None = None) -> None:
        super().__init__(registry, NAME)
        self.metrics = metrics or Metrics()
        self.settings = settings
        self.state = state
        self.events = events
        self.clock = clock or Clock()
        self.alerter = alerter or LogAlerter()
        self.live: dict[str, Order] = {}
        # counted trades of live and recently finished orders
        self.fills: dict[str, dict[str, TradeView]] = {}
        self.recent = RecentOrders(self.fills)
        self._ids = random.Random()  # seeded from the OS: ids unique without a syscall each
        self.waiters = Waiters(self._answer)
        self.refreshed: dict[str, float] = {}
        self.creating: dict[str, float] = {}  # client id -> when its create was dispatched
        self.cancel_after_create: set[str] = set()
        self.resend_at: dict[str, float] = {}
        self.submitted_at: dict[str, float] = {}
        self.recovering: set[str] = set()
        self.resolver = Resolver(settings.resolution)
        self.router = Router(settings.workers)
        self.stats = OrderStats()
        self.last_prices: dict[tuple[str, str], Decimal] = {}  # risk's reference prices
        self._prices_asked = float("-inf")
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Submit: self._submit, GetStatus: self._status, Cancel: self._cancel,
            ListOrders: self._list, ExchangeReport: self._report, Tick: self._tick,
            Flush: self._flush, GetStats: self._stats, ApplyRepairs: self._repairs,
            IsRecovered: lambda _msg: not self.recovering, Prices: self._prices,
        }

    # --- lifecycle -----------------------------------------------------------

    def on_start(self) -> None:
        self.ledger = Ledger(self.settings.ledger_path)
        self.batch = Batch(self.ledger, self.events, lambda: self.actor_ref.tell(Flush()),
                           self.metrics)
        self.live = {order.client_order_id: order for order in self.ledger.live()}
        self._recover()

    def _recover(self) -> None:
        """Orders left unresolved by the last run are resolved against the exchange."""
        now = self.clock.monotonic()
        for order in self.live.values():
            if order.status not in UNRESOLVED:
                continue
            self.recovering.add(order.client_order_id)
            if order.status == "pending_cancel":
                self._dispatch(order, CancelOrder)
            else:
                self.resolver.add(order.client_order_id, now)
        if self.recovering:
            log.info("recovering %d unresolved orders", len(self.recovering))

    def on_stop(self) -> None:
        self.batch.flush()
        self.ledger.close()

    def on_crash(self) -> None:
        self.ledger.close()

    # --- commands --------------------------------------------------------------

    def _submit(self, msg: Submit) -> None:
        if self.state.value != "ready":
            reason = f": {self.state.reason}" if self.state.reason else ""
            self._answer(msg.reply, ProtocolError(
                "halted", f"the daemon is {self.state.value}{reason}", retry_after_s=1.0))
            return
        cid = msg.spec.client_order_id or self._new_client_order_id()
        spec = msg.spec.normalized(self.settings.default_exchange, cid)
        # an id we just made is new: no lookup
        existing = None if msg.spec.client_order_id is None else self._get(cid)
        if existing is not None:
            if not existing.same_spec(spec):
                self._answer(msg.reply, ProtocolError(
                    "duplicate_client_order_id",
                    f"client_order_id {cid!r} is already used by a different order",
                    field="client_order_id"))
                return
            self._hold(existing, msg.reply, WAIT_SUBMIT if msg.wait == "accepted" else None)
            return
        refused = self._risk_error(spec)
        if refused is not None:
            log.info("submit %s refused: %s", cid, refused.message)
            self._answer(msg.reply, refused)
            return
        order = Order.from_spec(spec, self.clock.now())
        self.live[cid] = order
        self.fills[cid] = {}  # a new order has no fills: no lookup
        self.submitted_at[cid] = self.clock.monotonic()
        self.metrics.orders_submitted.labels(order.exchange).inc()
        self._stage(order)
        self._dispatch(order, PlaceOrder)
        self._hold(order, msg.reply, WAIT_SUBMIT if msg.wait == "accepted" else None)

    def _risk_error(self, spec: OrderSpec) -> ProtocolError | None:
        if self.settings.risk is None:
            return None
        assert spec.exchange is not None
        limits = self.settings.risk.of(spec.exchange)
        price = self.last_prices.get((spec.exchange, spec.symbol))
        return check_risk(spec, limits, self.live.values(), price)

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

    def _status(self, msg: GetStatus) -> None:
        order = self._find(msg.ref)
        if order is None:
            self._answer(msg.reply, _not_found(msg.ref))
        else:
            confirmation = list(order.trail)
            self._answer(msg.reply, {"order": {**order.to_wire(), "confirmation": confirmation}})

    def _cancel(self, msg: Cancel) -> None:
        order = self._find(msg.ref)
        if order is None:
            self._answer(msg.reply, _not_found(msg.ref))
            return
        if order.terminal and order.status != "canceled":
            self._answer(msg.reply, ProtocolError(
                "not_cancelable", f"order {order.client_order_id} is {order.status}"))
            return
        if order.status not in ("canceled", "pending_cancel"):
            order.move_to("pending_cancel", self.clock.now())
            self._stage(order)
            if order.client_order_id in self.creating:
                # cancel once the create's outcome is in, never overtaking it
                self.cancel_after_create.add(order.client_order_id)
            else:
                self._dispatch(order, CancelOrder)
        self._hold(order, msg.reply, WAIT_CANCEL)

    def _list(self, msg: ListOrders) -> None:
        orders, cursor = self.ledger.page(msg.args)
        wire = [(self.live.get(o.client_order_id) or self.recent.get(o.client_order_id) or o)
                .to_wire() for o in orders]
        self._answer(msg.reply, {"orders": wire, "next": cursor})

    def _stats(self, msg: GetStats) -> None:
        msg.reply({
            "orders_by_status": self.ledger.counts_by_status(),
            "live_orders": len(self.live),
            "sends": self.stats.sends,
            "retries": self.stats.retries,
            "resends": self.stats.resends,
            "submit_latency": self.stats.latency(),
            "unresolved": self._unresolved(),
        })

    def _unresolved(self) -> dict[str, Any]:
        """Orders never stay unknown silently: how many, and the oldest's age."""
        now = self.clock.monotonic()
        return {"count": len(self.resolver.cases),
                "oldest_age_s": round(self.resolver.oldest_age(now), 3)}

    # --- exchange outcomes -----------------------------------------------------

    def _report(self, report: ExchangeReport) -> None:
        self.router.done(report.worker)
        self.stats.sends += report.sends
        self.stats.retries += report.retries
        order = self.live.get(report.client_order_id)
        if order is None and report.op == "fetch" and report.view is not None:
            # a verification fetch of an order that finished at once (a market fill)
            order = self._get(report.client_order_id)
        if order is None:
            log.info("report for %s ignored: order is not live", report.client_order_id)
            return
        before, steps = fingerprint(order), len(order.trail)
        if report.op == "create":
            self._create_reported(order, report)
        if report.view is not None and report.view.average_price is not None:
            self.last_prices[(order.exchange, order.symbol)] = report.view.average_price
        if report.error is not None and report.op != "fetch":
            order.last_error = {"code": report.error.code, "message": report.error.message}
        try:
            self._apply_outcome(order, report)
        except IllegalTransition as exc:
            log.warning("exchange report not applied: %s", exc)
        self._confirm(order, report)
        if fingerprint(order) != before:
            order.updated_at = self.clock.now()
            self._stage(order)
        elif len(order.trail) != steps:
            self._stage(order, publish=False)  # the trail is not part of the wire Order
        self._settled(order)

    def _create_reported(self, order: Order, report: ExchangeReport) -> None:
        cid = order.client_order_id
        self.creating.pop(cid, None)
        order.attempts += report.sends
        started = self.submitted_at.pop(cid, None)
        if started is not None and report.outcome != "failed":
            latency = self.clock.monotonic() - started
            self.stats.submit_latency_s.append(latency)
            self.metrics.submit_latency.labels(order.exchange).observe(latency)
        if report.error is not None and report.error.action == "halt":
            self.state.set("halted", f"{order.exchange}: {report.error.message}")
            log.error("halting: %s refused the account (%s)", order.exchange,
                      report.error.message)
            self.alerter.alert(Alert("halted", "critical", f"{order.exchange} refused the "
                                     "account; submits halted", {"exchange": order.exchange}))

    def _apply_outcome(self, order: Order, report: ExchangeReport) -> None:
        now = self.clock.now()
        cid = order.client_order_id
        if cid in self.resolver and report.op == "fetch":
            self._lookup_answered(order, report)
            return
        if report.view is not None:
            # a create or refresh answer that shows the order live does not undo a cancel
            keep_cancel = order.status == "pending_cancel" and report.op != "cancel"
            adopt(order, report.view, now, keep_status=keep_cancel)
            if cid in self.cancel_after_create:
                self.cancel_after_create.discard(cid)
                if not order.terminal:
                    self._dispatch(order, CancelOrder)
        elif report.op == "create":
            self._create_failed(order, report)
        elif report.op == "cancel":
            self.resolver.add(cid, self.clock.monotonic())  # learn what became of it

    def _confirm(self, order: Order, report: ExchangeReport) -> None:
        """The confirmation steps this report completes, recorded on the order's trail."""
        view, now = report.view, self.clock.now()
        if view is None:
            return
        if record_ack(order, now) and report.op == "create":
            self._dispatch(order, FetchOrder)  # step 2 is a fetch, not the create's own echo
        if report.op == "fetch":
            for mismatch in verify(order, view, now):
                self._alert_mismatch(order, mismatch)
        for trade in count_fills(order, self._known_fills(order), report.trades, now):
            self.ledger.stage_fill(order.exchange, order.client_order_id, trade)

    def _alert_mismatch(self, order: Order, mismatch: dict[str, Any]) -> None:
        field = mismatch["field"]
        log.error("order %s: exchange shows %s %s, ledger has %s", order.client_order_id,
                  field, mismatch["exchange"], mismatch["ledger"])
        self.alerter.alert(Alert(
            "order_mismatch", "critical",
            f"order {order.client_order_id}: exchange shows {field} {mismatch['exchange']}, "
            f"ledger has {mismatch['ledger']}", {"exchange": order.exchange, "field": field}))

    def _known_fills(self, order: Order) -> dict[str, TradeView]:
        known = self.fills.get(order.client_order_id)
        if known is None:
            if order.client_order_id not in self.live:
                self.recent.add(order)  # so its fills go when it leaves the window
            known = self.ledger.fills_of(order.exchange, order.client_order_id)
            self.fills[order.client_order_id] = known
        return known

    def _counted(self, order: Order) -> Decimal:
        if order.client_order_id not in self.fills and order.filled == 0:
            return ZERO
        return sum((t.amount for t in self._known_fills(order).values()), ZERO)

    def _create_failed(self, order: Order, report: ExchangeReport) -> None:
        now = self.clock.now()
        if report.outcome == "rejected":
            self.cancel_after_create.discard(order.client_order_id)
            order.move_to("rejected", now)
        elif report.outcome == "unknown":
            if order.status == "pending_submit":
                order.move_to("unknown", now)
            self.resolver.add(order.client_order_id, self.clock.monotonic())
        else:  # known not sent: send again later, within the send deadline
            error = report.error
            wait = error.retry_after_s if error and error.retry_after_s else 1.0
            self.resend_at[order.client_order_id] = self.clock.monotonic() + wait

    def _lookup_answered(self, order: Order, report: ExchangeReport) -> None:
        cid = order.client_order_id
        now = self.clock.monotonic()
        if report.view is not None:
            self.resolver.drop(cid)
            cancel_wanted = order.status == "pending_cancel"
            adopt(order, report.view, self.clock.now(), keep_status=cancel_wanted)
            if cancel_wanted and not order.terminal:
                self._dispatch(order, CancelOrder)
            return
        absent = report.error is not None and report.error.code == "order_not_found"
        if self.resolver.looked_up(cid, absent=absent, now=now):
            log.info("order %s proven absent on %s", cid, order.exchange)
            self._resend_or_expire(order)

    def _resend_or_expire(self, order: Order) -> None:
        now = self.clock.now()
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
        self._dispatch(order, PlaceOrder)

    def _settled(self, order: Order) -> None:
        """Replies, recovery and memory once an order's state may have moved on."""
        self.waiters.release(order)
        cid = order.client_order_id
        if order.status not in UNRESOLVED:
            self.recovering.discard(cid)
        if order.terminal:
            if cid in self.live:
                self.metrics.orders_finished.labels(order.exchange, order.status).inc()
            for table in (self.live, self.refreshed, self.resend_at, self.submitted_at):
                table.pop(cid, None)
            self.recent.add(order)
            self.resolver.drop(cid)
            self.cancel_after_create.discard(cid)
            self.recovering.discard(cid)

    # --- repairs from reconciliation ---------------------------------------------

    def _repairs(self, msg: ApplyRepairs) -> None:
        results = [self._repair(repair, msg.run_id) for repair in msg.repairs]
        if msg.cursor is not None:
            self.ledger.stage_meta(*msg.cursor)
        self.batch.after_commit(lambda: msg.reply(results))

    def _repair(self, repair: Repair, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = {"client_order_id": repair.client_order_id,
                                  "kind": repair.kind, "reason": repair.reason}
        cid, now = repair.client_order_id, self.clock.now()
        order = self._get(cid)
        if repair.kind == "adopt_order":
            if order is not None:
                return {**result, "applied": False, "detail": "already in the ledger"}
            order = orphan_order(repair, now, run_id)
            outcome, changed = {"applied": True, "status": [None, order.status]}, True
            fills = count_fills(order, self._known_fills(order), repair.trades, now,
                                source="reconcile")
            if not order.terminal:
                self.live[cid] = order
        elif order is None:
            return {**result, "applied": False, "detail": "not in the ledger"}
        else:
            outcome, fills, changed = repair_order(order, repair, self._known_fills(order), now,
                                                   run_id)
            if not outcome["applied"]:
                return {**result, **outcome}
        for trade in fills:
            self.ledger.stage_fill(order.exchange, cid, trade)
        self._stage(order, publish=changed)
        self._settled(order)
        return {**result, **outcome}

    # --- time --------------------------------------------------------------------

    def _tick(self, msg: Tick) -> None:
        now = self.clock.monotonic()
        self.state.unresolved = self._unresolved()  # read by health without a message
        self.waiters.expire(now, self._get)
        for cid in self.resolver.due(now):
            self._dispatch(self.live[cid], FetchOrder)
        self._resend_due(now)
        self._find_stale_creates(now)
        self._refresh_due(now)
        self._refresh_prices(now)
        self._gauges(now)
        for cid, age in self.resolver.overdue(now):
            log.warning("order %s unresolved for %.0f s", cid, age)
            self.alerter.alert(Alert("unknown_order_age", "warning",
                                     f"an order is unresolved for {age:.0f} s",
                                     {"exchange": self.live[cid].exchange}))

    def _gauges(self, now: float) -> None:
        self.metrics.open_orders.set(len(self.live))
        self.metrics.unknown_orders.set(len(self.resolver.cases))
        self.metrics.unknown_oldest_age.set(self.resolver.oldest_age(now))

    def _resend_due(self, now: float) -> None:
        for cid in [c for c, at in self.resend_at.items() if at <= now]:
            del self.resend_at[cid]
            order = self.live.get(cid)
            if order is not None and order.status in ("pending_submit", "pending_cancel"):
                before = fingerprint(order)
                self._resend_or_expire(order)
                if fingerprint(order) != before:
                    self._stage(order)
                self._settled(order)

    def _find_stale_creates(self, now: float) -> None:
        """A create with no report long after its deadline is resolved by lookup."""
        limit = 2 * self.settings.send_deadline_s
        for cid in [c for c, at in self.creating.items() if now - at > limit]:
            del self.creating[cid]
            order = self.live.get(cid)
            if order is not None and order.status == "pending_submit":
                order.move_to("unknown", self.clock.now())
                self._stage(order)
            self.resolver.add(cid, now)

    def _refresh_due(self, now: float) -> None:
        """Look live orders up on their exchange so fills and outside cancels show."""
        settings, wall = self.settings, self.clock.now()
        sent = 0
        for order in self.live.values():
            if sent >= REFRESH_PER_TICK:
                break
            if order.status not in ("open", "partially_filled"):
                continue
            # young orders more often: most fills and cancels come early
            young = wall - order.created_at < settings.young_age_s
            interval = settings.young_interval_s if young else settings.refresh_interval_s
            if now - self.refreshed.get(order.client_order_id, 0.0) >= interval:
                self.refreshed[order.client_order_id] = now
                self._dispatch(order, FetchOrder, after_commit=False)
                sent += 1

    # --- batching ------------------------------------------------------------------

    def _stage(self, order: Order, publish: bool = True) -> None:
        self.batch.stage(order, publish)

    def _flush(self, _msg: Flush) -> None:
        self.batch.flush()

    def _answer(self, reply: Reply, payload: dict[str, Any] | ProtocolError) -> None:
        """Reply now, or after the commit when this batch has writes."""
        self.batch.reply(lambda: reply(payload))

    def _dispatch(self, order: Order, kind: type[PlaceOrder | CancelOrder | FetchOrder],
                  after_commit: bool = True) -> None:
        """Send to the least busy worker; after the commit, so nothing unrecorded is sent."""
        ticket = OrderTicket.of(order, self._counted(order))
        message: Any
        if kind is PlaceOrder:
            now = self.clock.monotonic()
            self.creating[order.client_order_id] = now
            message = PlaceOrder(ticket, not_after=now + self.settings.send_deadline_s)
        else:
            message = kind(ticket)
        worker = self.router.pick(order.exchange)
        if not after_commit:
            self._deliver(worker, message)
            return
        self.batch.after_commit(lambda: self._deliver(worker, message))

    def _deliver(self, worker: str, message: Any) -> None:
        if not self.registry.tell(worker, message):
            self.router.done(worker)

    def _hold(self, order: Order, reply: Reply, through: frozenset[str] | None) -> None:
        deadline = self.clock.monotonic() + self.settings.accept_timeout_s
        self.waiters.hold(order, reply, through, deadline)

    # --- lookups -------------------------------------------------------------------------

    def _find(self, ref: OrderRef) -> Order | None:
        if ref.client_order_id is not None:
            return self._get(ref.client_order_id)
        assert ref.order_id is not None
        order = self.ledger.get_by_order_id(ref.order_id)
        if order is None:
            return None
        return self.live.get(order.client_order_id) or self.recent.get(
            order.client_order_id) or order

    def _get(self, client_order_id: str) -> Order | None:
        return (self.live.get(client_order_id) or self.recent.get(client_order_id)
                or self.ledger.get(client_order_id))

    def _new_client_order_id(self) -> str:
        return f"{self.settings.client_id_prefix}{self._ids.getrandbits(128):032x}"



def _not_found(ref: OrderRef) -> ProtocolError:
    which = (f"client_order_id {ref.client_order_id!r}" if ref.client_order_id is not None
             else f"order_id {ref.order_id!r}")
    return ProtocolError("not_found", f"no order with {which}")
