"""OrderActor: the only writer of order state; owns the ledger and the state machine.

Its parts: `order_core` (live orders, grouped commits, dispatch, held replies),
`order_outcomes` (exchange outcomes, resolution, confirmation, tracking, repairs)
and, here, its lifecycle, recovery and the client commands.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.ledger.store import Ledger, storage_failure
from actors.messages import (
    Cancel,
    CancelAll,
    CancelOrder,
    ExchangeReport,
    Flush,
    GetStatus,
    ListOrders,
    Prices,
    Reply,
    Submit,
    SymbolTracked,
    Tick,
    WorkerRestarted,
)
from actors.order.batch import Batch
from actors.order.core import NAME, UNRESOLVED, OrderSettings
from actors.order.ledger_guard import LedgerGuard
from actors.order.live import LiveOrder
from actors.order.risk import check as check_risk
from actors.order.stream import OrderStream
from actors.order.waiters import WAIT_CANCEL, WAIT_SUBMIT
from actors.orders import Order
from actors.reconcile.messages import ApplyRepairs
from actors.stream.events import StreamConnected, StreamEvents
from protocol.errors import ProtocolError
from protocol.messages import OrderRef, OrderSpec

log = logging.getLogger(__name__)
BACKLOG_RETRY_S = 0.25
"""retry_after_s of a submit refused because its exchange's backlog is full."""
STARTING_RETRY_S = 1.0
"""retry_after_s of a submit refused while orders left by the last run are resolved."""


@dataclass(frozen=True, slots=True)
class GetStats:
    """Tell: execution statistics to `reply`."""

    reply: Callable[[dict[str, Any] | ProtocolError], None]
    """Receives the statistics, or the error that kept them."""


@dataclass(frozen=True, slots=True)
class IsRecovered:
    """Ask: True once every order found unresolved at start is resolved."""


@dataclass(frozen=True, slots=True)
class RecordHalt:
    """Tell: record the daemon's halt (or its end) in the ledger now; `reply` gets
    `{"state"}` once it is written."""

    reply: Reply
    """Receives the daemon's state, or the error that kept it from the ledger."""


class OrderActor(OrderStream):
    """Order state machine, idempotency, durable ledger, order events."""

    def handler_table(self) -> dict[type, Callable[[Any], Any]]:
        """The messages OrderActor takes, each with its handler."""
        return {
            Submit: self._submit, GetStatus: self._status, Cancel: self._cancel,
            CancelAll: self._cancel_all,
            ListOrders: self._list, ExchangeReport: self._report, Tick: self._on_tick,
            Flush: self._flush, GetStats: self._stats, ApplyRepairs: self._repairs,
            IsRecovered: self._is_recovered, Prices: self._prices,
            WorkerRestarted: lambda msg: self.router.forget(msg.name),
            RecordHalt: self._record_halt, SymbolTracked: self._tracked,
            StreamConnected: self._stream_connected, StreamEvents: self._streamed,
        }

    def on_start(self) -> None:
        self.ledger = Ledger(self.settings.ledger_path)
        self.batch = Batch(self.ledger, self.events, self.metrics)
        self.guard = LedgerGuard(self.ledger, self.batch, self.state, self.alerter, self.clock)
        self.guard.load_halt()
        self.orders = {order.client_order_id: LiveOrder(order)
                       for order in self.ledger.live()}
        # what recovery sends goes out with the first message, once the workers exist
        self._recover()

    def _recover(self) -> None:
        """Orders left unresolved by the last run are resolved against the exchange."""
        recovering = 0
        for live in self.orders.values():
            order = live.order
            if order.status not in UNRESOLVED:
                continue
            live.recovering = True
            recovering += 1
            if order.status == "pending_cancel":
                self._dispatch(order, CancelOrder)
            else:
                self._resolve(order)  # absent only once its create can no longer land
        if recovering:
            log.info("recovering %d unresolved orders", recovering)

    def _is_recovered(self, _msg: IsRecovered) -> bool:
        return not any(live.recovering for live in self.orders.values())

    def on_stop(self) -> None:
        try:
            self.batch.close()
        except sqlite3.Error as exc:
            if not storage_failure(exc):
                raise
            log.error("stopping with writes the ledger did not take (%s); a restart "
                      "learns those outcomes from the exchange again", exc)
        if self.guard.replaced:
            self.guard.copy_out()  # now complete: the last writes are in it
        # held replies get the orders as recorded: nothing will move them on now
        self.waiters.expire(float("inf"), self._get)
        self.ledger.close()

    def _on_tick(self, msg: Tick) -> None:
        self.guard.check_file()
        self.guard.record_halt()
        self.guard.probe()
        self._tick(msg)

    def _record_halt(self, msg: RecordHalt) -> None:
        self.guard.record_halt()
        self.batch.sync_next()  # the reply waits for a commit, even with nothing to write
        self._answer(msg.reply, {"state": self.state.value})

    def on_crash(self) -> None:
        """Commit what can be, then answer every reply held here (retryably: the order's
        outcome is for the next actor to learn) and close the ledger. The next actor
        resolves again what was unresolved and gets the messages queued for this one."""
        try:
            self.batch.flush()
        except Exception:  # a broken ledger: those replies are answered retryably
            log.exception("order actor: committing after the crash failed")
            self.batch.fail_replies(ProtocolError(
                "internal", "the order actor restarted before answering; ask again",
                retry_after_s=1.0))
        for cid, reply in self.waiters.take_all():
            reply(ProtocolError("internal", "the order actor restarted before the order's "
                                "outcome was known; ask its status or submit again",
                                retry_after_s=1.0, details={"client_order_id": cid}))
        self.ledger.close()

    def breaks(self, error: Exception) -> bool:
        """A ledger that cannot be used (closed, misused, corrupt) breaks the actor; a
        refused write or a busy or full disk costs only the message."""
        return isinstance(error, sqlite3.DatabaseError) and not isinstance(
            error, (sqlite3.IntegrityError, sqlite3.OperationalError, sqlite3.DataError))

    def _submit(self, msg: Submit) -> None:
        state = self.state.value
        if state == "starting":
            self._answer(msg.reply, ProtocolError(
                "starting", "the daemon is starting: orders left by the last run are being "
                "resolved", retry_after_s=STARTING_RETRY_S))
            return
        if state != "ready":
            reason = f": {self.state.reason}" if self.state.reason else ""
            self._answer(msg.reply, ProtocolError(
                "halted", f"the daemon is {state}{reason}", retry_after_s=1.0))
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
        refused = (self._backlog_error(spec) or self._risk_error(spec)
                   or self._budget_error(spec))
        if refused is not None:
            log.info("submit %s refused: %s", cid, refused.message,
                     extra={"client_order_id": cid, "exchange": spec.exchange})
            self._answer(msg.reply, refused)
            return
        order = Order.from_spec(spec, self.clock.now())
        self.batch.stage_new(order)  # first: what it refuses leaves nothing behind
        # a new order has no fills: no lookup
        live = self.orders[cid] = LiveOrder(order, fills={},
                                            submitted_at=self.clock.monotonic())
        self.metrics.child(self.metrics.orders_submitted, order.exchange).inc()
        self._place(live)
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

    def _budget_error(self, spec: OrderSpec) -> ProtocolError | None:
        """Refuse what the exchange would refuse for its limits (a 429 or 418 being waited
        out, the minute's weight spent, the order counts full): never sent to be refused."""
        assert spec.exchange is not None
        budget = self.settings.budgets.get(spec.exchange)
        refusal = None if budget is None else budget.admit_order(
            self.router.backlog(spec.exchange))
        if refusal is None:
            return None
        assert budget is not None
        budget.waited(refusal.reason)
        return ProtocolError("rate_limited", str(refusal),
                             retry_after_s=round(refusal.retry_after_s, 3))

    def _risk_error(self, spec: OrderSpec) -> ProtocolError | None:
        if self.settings.risk is None:
            return None
        assert spec.exchange is not None
        limits = self.settings.risk.of(spec.exchange)
        price = self.last_prices.get((spec.exchange, spec.symbol))
        return check_risk(spec, limits, (live.order for live in self.orders.values()), price)

    def _status(self, msg: GetStatus) -> None:
        order = self._find(msg.ref)
        if order is None:
            self._answer(msg.reply, _not_found(msg.ref))
        else:
            confirmation = list(order.trail)
            self._answer_read(msg.reply,
                              {"order": {**order.to_wire(), "confirmation": confirmation}})

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
            self._ask_cancel(order)
        self._hold(order, msg.reply, WAIT_CANCEL)

    def _ask_cancel(self, order: Order) -> None:
        order.move_to("pending_cancel", self.clock.now())
        self._stage(order)
        live = self.orders.get(order.client_order_id)
        if live is not None and live.creating_since is not None:
            # cancel once the create's outcome is in, never overtaking it
            live.cancel_after_create = True
        else:
            self._dispatch(order, CancelOrder)

    def _cancel_all(self, msg: CancelAll) -> None:
        """Every live order in scope asked to cancel; answered with them as recorded, after
        the commit, without waiting for the exchange (their outcomes follow as events)."""
        scope = msg.args
        chosen = [live.order for live in self.orders.values()
                  if (scope.exchange is None or live.order.exchange == scope.exchange)
                  and (scope.symbol is None or live.order.symbol == scope.symbol)]
        for order in chosen:
            if order.status != "pending_cancel":
                self._ask_cancel(order)
        self._answer(msg.reply, {"orders": [order.to_wire() for order in chosen]})

    def _list(self, msg: ListOrders) -> None:
        orders, cursor = self.ledger.page(msg.args)
        wire = [(self._current(o.client_order_id) or o).to_wire() for o in orders]
        self._answer_read(msg.reply, {"orders": wire, "next": cursor})

    def _stats(self, msg: GetStats) -> None:
        msg.reply({
            "orders_by_status": self.ledger.counts_by_status(),
            "live_orders": len(self.orders),
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


__all__ = ["NAME", "GetStats", "IsRecovered", "OrderActor", "OrderSettings", "RecordHalt"]
