"""OrderActor: the only writer of order state; owns the ledger and the state machine.

Its parts: `order_core` (live orders, grouped commits, dispatch, held replies),
`order_outcomes` (exchange outcomes, resolution, confirmation, tracking, repairs)
and, here, its lifecycle, recovery and the client commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.batch import Batch
from actors.ledger import Ledger
from actors.messages import (
    Cancel,
    CancelOrder,
    ExchangeReport,
    Flush,
    GetStatus,
    ListOrders,
    PlaceOrder,
    Prices,
    Submit,
    Tick,
    WorkerRestarted,
)
from actors.order_core import NAME, UNRESOLVED, OrderSettings
from actors.order_outcomes import OrderOutcomes
from actors.orders import Order
from actors.reconcile_messages import ApplyRepairs
from actors.risk import check as check_risk
from actors.waiters import WAIT_CANCEL, WAIT_SUBMIT
from protocol.errors import ProtocolError
from protocol.messages import OrderRef, OrderSpec

log = logging.getLogger(__name__)
BACKLOG_RETRY_S = 0.25
"""retry_after_s of a submit refused because its exchange's backlog is full."""


@dataclass(frozen=True, slots=True)
class GetStats:
    """Tell: execution statistics to `reply`."""

    reply: Callable[[dict[str, Any]], None]
    """Receives the statistics."""


@dataclass(frozen=True, slots=True)
class IsRecovered:
    """Ask: True once every order found unresolved at start is resolved."""


class OrderActor(OrderOutcomes):
    """Order state machine, idempotency, durable ledger, order events."""

    def handler_table(self) -> dict[type, Callable[[Any], Any]]:
        """The messages OrderActor takes, each with its handler."""
        return {
            Submit: self._submit, GetStatus: self._status, Cancel: self._cancel,
            ListOrders: self._list, ExchangeReport: self._report, Tick: self._tick,
            Flush: self._flush, GetStats: self._stats, ApplyRepairs: self._repairs,
            IsRecovered: lambda _msg: not self.recovering, Prices: self._prices,
            WorkerRestarted: lambda msg: self.router.forget(msg.name),
        }

    def on_start(self) -> None:
        self.ledger = Ledger(self.settings.ledger_path)
        self.batch = Batch(self.ledger, self.events, self.metrics)
        self.live = {order.client_order_id: order for order in self.ledger.live()}
        # what recovery sends goes out with the first message, once the workers exist
        self._recover()

    def _recover(self) -> None:
        """Orders left unresolved by the last run are resolved against the exchange."""
        for order in self.live.values():
            if order.status not in UNRESOLVED:
                continue
            self.recovering.add(order.client_order_id)
            if order.status == "pending_cancel":
                self._dispatch(order, CancelOrder)
            else:
                self._resolve(order)  # absent only once its create can no longer land
        if self.recovering:
            log.info("recovering %d unresolved orders", len(self.recovering))

    def on_stop(self) -> None:
        self.batch.close()
        self.ledger.close()

    def on_crash(self) -> None:
        self.ledger.close()

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
        refused = self._backlog_error(spec) or self._risk_error(spec)
        if refused is not None:
            log.info("submit %s refused: %s", cid, refused.message)
            self._answer(msg.reply, refused)
            return
        order = Order.from_spec(spec, self.clock.now())
        self._stage(order)  # first: what it refuses leaves nothing behind
        self.live[cid] = order
        self.fills[cid] = {}  # a new order has no fills: no lookup
        self.submitted_at[cid] = self.clock.monotonic()
        self.metrics.child(self.metrics.orders_submitted, order.exchange).inc()
        self._dispatch(order, PlaceOrder)
        self._hold(order, msg.reply, WAIT_SUBMIT if msg.wait == "accepted" else None)

    def _backlog_error(self, spec: OrderSpec) -> ProtocolError | None:
        """Refuse what the exchange could not take in time: accepted orders would wait
        behind the backlog and expire unsent, so the client is told to slow down."""
        assert spec.exchange is not None
        limit = self.settings.backlogs.get(spec.exchange)
        backlog = self.router.backlog(spec.exchange)
        if limit is None or backlog < limit:
            return None
        return ProtocolError("rate_limited", f"{backlog} orders sent to {spec.exchange} are "
                             "waiting for its answers; submit again later",
                             retry_after_s=BACKLOG_RETRY_S)

    def _risk_error(self, spec: OrderSpec) -> ProtocolError | None:
        if self.settings.risk is None:
            return None
        assert spec.exchange is not None
        limits = self.settings.risk.of(spec.exchange)
        price = self.last_prices.get((spec.exchange, spec.symbol))
        return check_risk(spec, limits, self.live.values(), price)

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


def _not_found(ref: OrderRef) -> ProtocolError:
    which = (f"client_order_id {ref.client_order_id!r}" if ref.client_order_id is not None
             else f"order_id {ref.order_id!r}")
    return ProtocolError("not_found", f"no order with {which}")


__all__ = ["NAME", "GetStats", "IsRecovered", "OrderActor", "OrderSettings"]
