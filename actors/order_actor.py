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
    Prices,
    RefreshPrices,
    Reply,
    Submit,
    Tick,
)
from actors.orders import IllegalTransition, Order
from actors.risk import RiskPolicy
from actors.risk import check as check_risk
from actors.runtime import Clock, DaemonState, EventSink
from actors.supervisor import Registry, SupervisedActor
from protocol.codec import encode_event
from protocol.errors import ProtocolError
from protocol.messages import OrderRef, OrderSpec

log = logging.getLogger(__name__)

NAME = "order"
EVENT_SEQ_KEY = "event_seq"
WAIT_SUBMIT = frozenset({"pending_submit", "unknown"})
WAIT_CANCEL = frozenset({"pending_cancel"})
REFRESH_PER_TICK = 200
PRICE_REFRESH_S = 10.0


@dataclass(frozen=True)
class OrderSettings:
    """What OrderActor needs to know from the configuration."""

    ledger_path: Path
    default_exchange: str
    accept_timeout_s: float = 5.0
    client_id_prefix: str = "od-"
    refresh_interval_s: float = 2.0
    risk: RiskPolicy | None = None
    """Risk limits per exchange, shared with the reload of the configuration."""


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
                 events: EventSink, clock: Clock | None = None) -> None:
        super().__init__(registry, NAME)
        self.settings = settings
        self.state = state
        self.events = events
        self.clock = clock or Clock()
        self.live: dict[str, Order] = {}
        self.waiters: dict[str, list[Waiter]] = {}
        self.refreshed: dict[str, float] = {}
        self._pending_events: list[dict[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._flush_scheduled = False
        self.last_prices: dict[tuple[str, str], Decimal] = {}
        self._prices_asked = float("-inf")
        self._handlers: dict[type, Callable[[Any], None]] = {
            Submit: self._submit, GetStatus: self._status, Cancel: self._cancel,
            ListOrders: self._list, ExchangeReport: self._report, Flush: self._flush,
            Tick: self._tick, Prices: self._prices,
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
        refused = self._risk_error(spec)
        if refused is not None:
            log.info("submit %s refused: %s", cid, refused.message)
            self._answer(msg.reply, refused)
            return
        order = Order.from_spec(spec, self.clock.now())
        order.attempts = 1
        self.live[cid] = order
        self._stage(order)
        self._send(order, PlaceOrder)
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
            self._deliver(exchange_actor_name(exchange),
                          RefreshPrices(exchange, None if symbols is None else tuple(symbols)))

    def _status(self, msg: GetStatus) -> None:
        order = self._find(msg.ref)
        if order is None:
            self._answer(msg.reply, _not_found(msg.ref))
        else:
            self._answer(msg.reply, {"order": order.to_wire()})

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
        if order is None:
            log.info("report for %s ignored: order is not live", report.client_order_id)
            return
        before = _fingerprint(order)
        if report.view is not None and report.view.average_price is not None:
            self.last_prices[(order.exchange, order.symbol)] = report.view.average_price
        if report.error is not None:
            order.last_error = report.error.to_wire()
        try:
            self._apply_outcome(order, report)
        except IllegalTransition as exc:
            log.warning("exchange report not applied: %s", exc)
        if _fingerprint(order) != before:
            order.updated_at = self.clock.now()
            self._stage(order)
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
        self._refresh_prices(now)

    def _refresh_due(self, now: float) -> None:
        """Look live orders up on their exchange so fills and outside cancels show."""
        interval = self.settings.refresh_interval_s
        sent = 0
        for order in self.live.values():
            if order.status not in ("open", "partially_filled") or sent >= REFRESH_PER_TICK:
                continue
            if now - self.refreshed.get(order.client_order_id, 0.0) >= interval:
                self.refreshed[order.client_order_id] = now
                self._tell_exchange(order, FetchOrder)
                sent += 1

    # --- batching ------------------------------------------------------------------

    def _stage(self, order: Order) -> None:
        self.ledger.stage(order)
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

    def _answer(self, reply: Reply, payload: dict[str, Any] | ProtocolError) -> None:
        """Reply now, or after the commit when this batch has writes."""
        if self.ledger.dirty or self._after_commit:
            self._after_commit.append(lambda: reply(payload))
        else:
            reply(payload)

    def _send(self, order: Order, kind: type[PlaceOrder | CancelOrder | FetchOrder]) -> None:
        """Tell the exchange after the commit, so nothing is sent that is not recorded."""
        ticket = OrderTicket.of(order)
        name = exchange_actor_name(order.exchange)
        self._after_commit.append(lambda: self._deliver(name, kind(ticket)))
        self._schedule_flush()

    def _tell_exchange(self, order: Order, kind: type[FetchOrder]) -> None:
        self._deliver(exchange_actor_name(order.exchange), kind(OrderTicket.of(order)))

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
