"""OrderActor: the only writer of order state; owns the ledger and the state machine.

Work is grouped: each message stages its ledger writes and queues its replies,
and a `Flush` the actor sends itself (it lands behind everything already waiting
in the inbox) commits the whole batch in one transaction, then publishes the
events and sends the replies.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.alerts import Alert, Alerter, LogAlerter
from actors.confirmation import count_fills, record_ack, totals_from_trades, verify
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
    OrderView,
    PlaceOrder,
    Reply,
    Submit,
    Tick,
    TradeView,
)
from actors.orders import TRANSITIONS, ZERO, IllegalTransition, Order, rfc3339
from actors.reconcile_messages import ApplyRepairs, Repair
from actors.runtime import Clock, DaemonState, EventSink
from actors.supervisor import Registry, SupervisedActor
from protocol.codec import encode_event
from protocol.errors import ProtocolError
from protocol.messages import OrderRef

log = logging.getLogger(__name__)

NAME = "order"
EVENT_SEQ_KEY = "event_seq"
WAIT_SUBMIT = frozenset({"pending_submit", "unknown"})
WAIT_CANCEL = frozenset({"pending_cancel"})
REFRESH_PER_TICK = 200


@dataclass(frozen=True)
class OrderSettings:
    """What OrderActor needs to know from the configuration."""

    ledger_path: Path
    default_exchange: str
    accept_timeout_s: float = 5.0
    client_id_prefix: str = "od-"
    refresh_interval_s: float = 2.0
    """How often live orders are looked up once they are no longer young."""
    young_interval_s: float = 0.5
    """How often orders younger than young_age_s are looked up."""
    young_age_s: float = 60.0
    """Age (seconds since recorded) below which an order is young."""


@dataclass
class Waiter:
    """A reply held until the order leaves `through` or the deadline passes."""

    reply: Reply
    through: frozenset[str]
    deadline: float


def exchange_actor_name(exchange: str) -> str:
    return f"exchange.{exchange}"


class OrderActor(SupervisedActor):
    """Order state machine, idempotency, durable ledger, order events."""

    def __init__(self, registry: Registry, settings: OrderSettings, state: DaemonState,
                 events: EventSink, clock: Clock | None = None,
                 alerter: Alerter | None = None) -> None:
        super().__init__(registry, NAME)
        self.settings = settings
        self.state = state
        self.events = events
        self.clock = clock or Clock()
        self.alerter: Alerter = alerter or LogAlerter()
        self.fills: dict[str, dict[str, TradeView]] = {}
        self.live: dict[str, Order] = {}
        self.waiters: dict[str, list[Waiter]] = {}
        self.refreshed: dict[str, float] = {}
        self._pending_events: list[dict[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._flush_scheduled = False
        self._handlers: dict[type, Callable[[Any], None]] = {
            Submit: self._submit, GetStatus: self._status, Cancel: self._cancel,
            ListOrders: self._list, ExchangeReport: self._report, Flush: self._flush,
            Tick: self._tick, ApplyRepairs: self._repairs,
        }

    # --- lifecycle -----------------------------------------------------------

    def on_start(self) -> None:
        self.ledger = Ledger(self.settings.ledger_path)
        self.seq = int(self.ledger.meta(EVENT_SEQ_KEY) or 0)
        self.live = {order.client_order_id: order for order in self.ledger.live()}

    def on_stop(self) -> None:
        self._flush(Flush())
        self.ledger.close()

    def on_crash(self) -> None:
        self.ledger.close()

    def on_receive(self, message: Any) -> Any:
        return self._handlers[type(message)](message)

    # --- commands --------------------------------------------------------------

    def _submit(self, msg: Submit) -> None:
        if self.state.value != "ready":
            reason = f": {self.state.reason}" if self.state.reason else ""
            self._answer(msg.reply, ProtocolError(
                "halted", f"the daemon is {self.state.value}{reason}", retry_after_s=1.0))
            return
        cid = msg.spec.client_order_id or self._new_client_order_id()
        spec = msg.spec.normalized(self.settings.default_exchange, cid)
        existing = self.live.get(cid) or self.ledger.get(cid)
        if existing is not None:
            if not existing.same_spec(spec):
                self._answer(msg.reply, ProtocolError(
                    "duplicate_client_order_id",
                    f"client_order_id {cid!r} is already used by a different order",
                    field="client_order_id"))
                return
            self._hold(existing, msg.reply, WAIT_SUBMIT if msg.wait == "accepted" else None)
            return
        order = Order.from_spec(spec, self.clock.now())
        order.attempts = 1
        self.live[cid] = order
        self._stage(order)
        self._send(order, PlaceOrder)
        self._hold(order, msg.reply, WAIT_SUBMIT if msg.wait == "accepted" else None)

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
            self._send(order, CancelOrder)
        self._hold(order, msg.reply, WAIT_CANCEL)

    def _list(self, msg: ListOrders) -> None:
        orders, cursor = self.ledger.page(msg.args)
        wire = [self.live.get(o.client_order_id, o).to_wire() for o in orders]
        self._answer(msg.reply, {"orders": wire, "next": cursor})

    # --- exchange outcomes -----------------------------------------------------

    def _report(self, report: ExchangeReport) -> None:
        order = self.live.get(report.client_order_id)
        if order is None and report.op == "fetch" and report.view is not None:
            # a verification fetch of an order that finished at once (a market fill)
            order = self.ledger.get(report.client_order_id)
        if order is None:
            log.info("report for %s ignored: order is not live", report.client_order_id)
            return
        before, steps = _fingerprint(order), len(order.trail)
        if report.error is not None:
            order.last_error = report.error.to_wire()
        try:
            self._apply_outcome(order, report)
        except IllegalTransition as exc:
            log.warning("exchange report not applied: %s", exc)
        self._confirm(order, report)
        if _fingerprint(order) != before:
            order.updated_at = self.clock.now()
            self._stage(order)
        elif len(order.trail) != steps:
            self._stage(order, publish=False)  # the trail is not part of the wire Order
        self._release_waiters(order)
        self._forget_if_terminal(order)

    def _apply_outcome(self, order: Order, report: ExchangeReport) -> None:
        now = self.clock.now()
        if report.view is not None:
            keep_cancel = order.status == "pending_cancel" and report.op == "create"
            _adopt(order, report.view, now, keep_status=keep_cancel)
        elif report.outcome == "rejected" and report.op == "create":
            order.move_to("rejected", now)
        elif report.outcome == "unknown" and order.status == "pending_submit":
            order.move_to("unknown", now)
        elif report.op == "cancel" and report.outcome != "ok":
            self._send(order, FetchOrder)

    def _confirm(self, order: Order, report: ExchangeReport) -> None:
        """The confirmation steps this report completes, recorded on the order's trail."""
        view, now = report.view, self.clock.now()
        if view is None:
            return
        if record_ack(order, now) and report.op == "create":
            self._send(order, FetchOrder)  # step 2 is a fetch, not the create's own echo
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
            f"exchange shows {field} {mismatch['exchange']}, ledger has {mismatch['ledger']}",
            {"exchange": order.exchange, "client_order_id": order.client_order_id,
             "field": field}))

    def _known_fills(self, order: Order) -> dict[str, TradeView]:
        known = self.fills.get(order.client_order_id)
        if known is None:
            known = self.ledger.fills_of(order.exchange, order.client_order_id)
            self.fills[order.client_order_id] = known
        return known

    def _counted(self, order: Order) -> Decimal:
        known = self.fills.get(order.client_order_id)
        if known is None and order.filled == 0:
            return ZERO
        known = self._known_fills(order)
        return sum((t.amount for t in known.values()), ZERO)

    # --- repairs from reconciliation ---------------------------------------------

    def _repairs(self, msg: ApplyRepairs) -> None:
        results = [self._repair(repair, msg.run_id) for repair in msg.repairs]
        if msg.cursor is not None:
            self.ledger.stage_meta(*msg.cursor)
        self._after_commit.append(lambda: msg.reply(results))
        self._schedule_flush()

    def _repair(self, repair: Repair, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = {"client_order_id": repair.client_order_id,
                                  "kind": repair.kind, "reason": repair.reason}
        if repair.kind == "adopt_order":
            return {**result, **self._adopt_orphan(repair, run_id)}
        order = self.live.get(repair.client_order_id) or self.ledger.get(repair.client_order_id)
        if order is None:
            return {**result, "applied": False, "detail": "not in the ledger"}
        view, now, status = repair.view, self.clock.now(), order.status
        if view is not None and view.status != status and view.status not in TRANSITIONS[status]:
            return {**result, "applied": False, "detail": f"{status} cannot become {view.status}"}
        before, steps = _fingerprint(order), len(order.trail)
        if view is not None:
            _adopt(order, view, now, keep_status=False)
        known = self._known_fills(order)
        for trade in count_fills(order, known, repair.trades, now, source="reconcile"):
            self.ledger.stage_fill(order.exchange, order.client_order_id, trade)
        if repair.kind == "adopt_trades":
            totals_from_trades(order, known)  # the order's own fee may be what was wrong
        changed = _fingerprint(order) != before
        if not changed and len(order.trail) == steps:
            return {**result, "applied": False, "detail": "already as the exchange shows"}
        order.trail.append({"step": "repair", "at": rfc3339(now), "run_id": run_id,
                            "kind": repair.kind, "reason": repair.reason,
                            "status": [status, order.status]})
        if changed:
            order.updated_at = now
        self._stage(order, publish=changed)
        self._release_waiters(order)
        self._forget_if_terminal(order)
        return {**result, "applied": True, "status": [status, order.status]}

    def _adopt_orphan(self, repair: Repair, run_id: str) -> dict[str, Any]:
        """Take our own order that the exchange has and the ledger lacks."""
        view, cid = repair.view, repair.client_order_id
        if self.live.get(cid) or self.ledger.get(cid):
            return {"applied": False, "detail": "already in the ledger"}
        assert view is not None and view.symbol and view.side and view.type and view.amount
        now = self.clock.now()
        order = Order(client_order_id=cid, exchange=repair.exchange, symbol=view.symbol,
                      side=view.side, type=view.type, amount=view.amount, price=view.price,
                      time_in_force=None, params={}, created_at=now, updated_at=now)
        _adopt(order, view, now, keep_status=False)
        for trade in count_fills(order, self._known_fills(order), repair.trades, now,
                                 source="reconcile"):
            self.ledger.stage_fill(order.exchange, cid, trade)
        order.trail.append({"step": "adopted", "at": rfc3339(now), "run_id": run_id,
                            "order_id": view.order_id, "reason": repair.reason})
        if not order.terminal:
            self.live[cid] = order
        self._stage(order)
        return {"applied": True, "status": [None, order.status]}

    # --- time --------------------------------------------------------------------

    def _tick(self, msg: Tick) -> None:
        now = self.clock.monotonic()
        for cid in [cid for cid, ws in self.waiters.items() if any(w.deadline <= now for w in ws)]:
            order = self.live.get(cid)
            due = [w for w in self.waiters[cid] if w.deadline <= now]
            self.waiters[cid] = [w for w in self.waiters[cid] if w.deadline > now]
            if not self.waiters[cid]:
                del self.waiters[cid]
            for waiter in due:
                payload = {"order": order.to_wire()} if order else ProtocolError(
                    "timeout", "no outcome within the deadline")
                self._answer(waiter.reply, payload)
        self._refresh_due(now)

    def _refresh_due(self, now: float) -> None:
        """Look live orders up on their exchange so fills and outside cancels show;
        young orders more often, as most fills and cancels come early."""
        settings, wall = self.settings, self.clock.now()
        sent = 0
        for order in self.live.values():
            if order.status not in ("open", "partially_filled") or sent >= REFRESH_PER_TICK:
                continue
            young = wall - order.created_at < settings.young_age_s
            interval = settings.young_interval_s if young else settings.refresh_interval_s
            if now - self.refreshed.get(order.client_order_id, 0.0) >= interval:
                self.refreshed[order.client_order_id] = now
                self._tell_exchange(order, FetchOrder)
                sent += 1

    # --- batching ------------------------------------------------------------------

    def _stage(self, order: Order, publish: bool = True) -> None:
        self.ledger.stage(order)
        if publish:
            self._pending_events.append(order.to_wire())
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.actor_ref.tell(Flush())

    def _flush(self, _msg: Flush) -> None:
        self._flush_scheduled = False
        events, self._pending_events = self._pending_events, []
        actions, self._after_commit = self._after_commit, []
        if events:
            self.ledger.stage_meta(EVENT_SEQ_KEY, str(self.seq + len(events)))
        self.ledger.commit()
        for order in events:
            self.seq += 1
            self.events.publish(encode_event(self.seq, order))
        for action in actions:
            action()
        for cid in [cid for cid in self.fills if cid not in self.live]:
            del self.fills[cid]

    def _answer(self, reply: Reply, payload: dict[str, Any] | ProtocolError) -> None:
        """Reply now, or after the commit when this batch has writes."""
        if self.ledger.dirty or self._after_commit:
            self._after_commit.append(lambda: reply(payload))
        else:
            reply(payload)

    def _send(self, order: Order, kind: type[PlaceOrder | CancelOrder | FetchOrder]) -> None:
        """Tell the exchange after the commit, so nothing is sent that is not recorded."""
        ticket = OrderTicket.of(order, self._counted(order))
        name = exchange_actor_name(order.exchange)
        self._after_commit.append(lambda: self._deliver(name, kind(ticket)))
        self._schedule_flush()

    def _tell_exchange(self, order: Order, kind: type[FetchOrder]) -> None:
        ticket = OrderTicket.of(order, self._counted(order))
        self._deliver(exchange_actor_name(order.exchange), kind(ticket))

    def _deliver(self, name: str, message: Any) -> None:
        self.registry.tell(name, message)

    # --- waiting replies ---------------------------------------------------------------

    def _hold(self, order: Order, reply: Reply, through: frozenset[str] | None) -> None:
        if through is None or order.status not in through:
            self._answer(reply, {"order": order.to_wire()})
            return
        deadline = self.clock.monotonic() + self.settings.accept_timeout_s
        self.waiters.setdefault(order.client_order_id, []).append(
            Waiter(reply, through, deadline))

    def _release_waiters(self, order: Order) -> None:
        waiting = self.waiters.get(order.client_order_id)
        if not waiting:
            return
        keep = [w for w in waiting if order.status in w.through]
        for waiter in waiting:
            if order.status not in waiter.through:
                self._answer(waiter.reply, {"order": order.to_wire()})
        if keep:
            self.waiters[order.client_order_id] = keep
        else:
            del self.waiters[order.client_order_id]

    def _forget_if_terminal(self, order: Order) -> None:
        if order.terminal:
            self.live.pop(order.client_order_id, None)
            self.refreshed.pop(order.client_order_id, None)

    # --- lookups -------------------------------------------------------------------------

    def _find(self, ref: OrderRef) -> Order | None:
        if ref.client_order_id is not None:
            return self.live.get(ref.client_order_id) or self.ledger.get(ref.client_order_id)
        assert ref.order_id is not None
        order = self.ledger.get_by_order_id(ref.order_id)
        return None if order is None else self.live.get(order.client_order_id, order)

    def _new_client_order_id(self) -> str:
        return f"{self.settings.client_id_prefix}{uuid.uuid4().hex}"


def _adopt(order: Order, view: OrderView, now: float, *, keep_status: bool) -> None:
    """Take the exchange's view of the order."""
    order.order_id = view.order_id or order.order_id
    order.filled = view.filled
    order.average_price = view.average_price
    if view.fee_cost is not None:
        order.fee_currency, order.fee_cost = view.fee_currency, view.fee_cost
    if view.status in ("open", "partially_filled") and keep_status:
        return
    order.move_to(view.status, now)


def _fingerprint(order: Order) -> tuple[Any, ...]:
    return (order.status, order.order_id, order.filled, order.average_price, order.fee_cost,
            order.last_error, order.attempts)


def _not_found(ref: OrderRef) -> ProtocolError:
    which = (f"client_order_id {ref.client_order_id!r}" if ref.client_order_id is not None
             else f"order_id {ref.order_id!r}")
    return ProtocolError("not_found", f"no order with {which}")
