"""OrderActor: the only writer of order state; owns the ledger and the state machine.

It dispatches each message by its type in one table, here, to a part that does the
work: `admission` (submits), `commands` (status, cancel, list), `outcomes` (the
exchange's answers), `timers` (ticks and the tracking reads they ask for), `stream`
(user-data stream events and catch-ups) and `repairs` (reconciliation's). The parts
share one `OrderCore` (`core`): the live orders, one `LiveOrder` record each, the
ledger and its grouped commit, dispatch to the workers and held replies. Here: the
table, the commit after each message, and the lifecycle (start, recovery, stop, crash).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from actors.exchange.messages import CancelOrder
from actors.ledger.store import storage_failure
from actors.metrics.alerts import Alerter, LogAlerter
from actors.metrics.series import Metrics
from actors.order.admission import Admission
from actors.order.commands import ClientCommands
from actors.order.core import NAME, UNRESOLVED, OrderCore, OrderSettings
from actors.order.messages import (
    ApplyRepairs,
    Cancel,
    CancelAll,
    ExchangeReport,
    Flush,
    GetStats,
    GetStatus,
    IsRecovered,
    ListOrders,
    Prices,
    RecordHalt,
    StreamConnected,
    StreamEvents,
    Submit,
    SymbolTracked,
    Tick,
)
from actors.order.outcomes import Outcomes
from actors.order.repairs import Repairs
from actors.order.status_counts import StatusCounts
from actors.order.stream import StreamFollower
from actors.order.timers import Timers
from actors.runtime import Clock, DaemonState, EventSink
from actors.supervisor import Registry, SupervisedActor
from protocol.errors import ProtocolError
from protocol.messages import OrderStatus

log = logging.getLogger(__name__)


class OrderActor(SupervisedActor):
    """Order state machine, idempotency, durable ledger, order events."""

    def __init__(self, registry: Registry, settings: OrderSettings, state: DaemonState,
                 events: EventSink, clock: Clock | None = None,
                 alerter: Alerter | None = None, metrics: Metrics | None = None) -> None:
        super().__init__(registry, NAME)
        self.core = OrderCore(registry, settings, state, events, clock or Clock(),
                              alerter or LogAlerter(), metrics or Metrics())
        self.admission = Admission(self.core)
        self.commands = ClientCommands(self.core)
        self.outcomes = Outcomes(self.core)
        self.timers = Timers(self.core, self.outcomes)
        self.stream = StreamFollower(self.core, self.outcomes)
        self.repairs = Repairs(self.core)
        self.status_counts = StatusCounts(settings.ledger_path)
        self._flush_queued = False
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Submit: self.admission.submit,
            ExchangeReport: self._report,
            Flush: self._flush,
            GetStatus: self.commands.status,
            Cancel: self.commands.cancel,
            CancelAll: self.commands.cancel_all,
            ListOrders: self.commands.list_orders,
            Tick: self._tick,
            SymbolTracked: self._tracked,
            Prices: self.timers.prices,
            StreamConnected: self.stream.connected,
            StreamEvents: self.stream.events,
            ApplyRepairs: self.repairs.apply,
            GetStats: self._stats,
            IsRecovered: self._is_recovered,
            RecordHalt: self._record_halt,
        }

    def on_start(self) -> None:
        self.core.open()
        # what recovery sends goes out with the first message, once the workers exist
        self._recover()
        self.stream.take_over()

    def _recover(self) -> None:
        """Orders left unresolved by the last run are resolved against the exchange."""
        recovering = 0
        for live in self.core.orders.values():
            order = live.order
            if order.status not in UNRESOLVED:
                continue
            live.recovering = True
            recovering += 1
            if order.status == OrderStatus.PENDING_CANCEL:
                self.core.dispatch(order, CancelOrder)
            else:
                self.core.resolve(order)  # absent only once its create can no longer land
        if recovering:
            log.info("recovering %d unresolved orders", recovering)

    def on_stop(self) -> None:
        core = self.core
        try:
            core.batch.close()
        except sqlite3.Error as exc:
            if not storage_failure(exc):
                raise
            log.error("stopping with writes the ledger did not take (%s); a restart "
                      "learns those outcomes from the exchange again", exc)
        if core.guard.replaced:
            core.guard.copy_out()  # now complete: the last writes are in it
        # held replies get the orders as recorded: nothing will move them on now
        core.waiters.expire(float("inf"), core.get)
        core.ledger.close()

    def on_crash(self) -> None:
        """Commit what can be, then answer every reply held here (retryably: the order's
        outcome is for the next actor to learn) and close the ledger. The next actor
        resolves again what was unresolved and gets the messages queued for this one."""
        core = self.core
        try:
            core.batch.flush()
        except Exception:  # a broken ledger: those replies are answered retryably
            log.exception("order actor: committing after the crash failed")
            core.batch.fail_replies(ProtocolError(
                "internal", "the order actor restarted before answering; ask again",
                retry_after_s=1.0))
        for cid, reply in core.waiters.take_all():
            reply(ProtocolError("internal", "the order actor restarted before the order's "
                                "outcome was known; ask its status or submit again",
                                retry_after_s=1.0, details={"client_order_id": cid}))
        core.ledger.close()

    def breaks(self, error: Exception) -> bool:
        """A ledger that cannot be used (closed, misused, corrupt) breaks the actor; a
        refused write or a busy or full disk costs only the message."""
        return isinstance(error, sqlite3.DatabaseError) and not isinstance(
            error, (sqlite3.IntegrityError, sqlite3.OperationalError, sqlite3.DataError))

    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        core = self.core
        if core.batch.pending and not self._flush_queued:
            if core.guard.failing and not isinstance(message, Tick):
                return result  # while the disk refuses, one try a tick: not one a message
            if self.actor_inbox.empty():
                core.commit()  # nothing waits behind this message: commit now
            else:  # commit after what already waits, in the same transaction
                self._flush_queued = True
                self.actor_ref.tell(Flush())
        return result

    def _flush(self, _msg: Flush) -> None:
        self._flush_queued = False
        self.core.commit()

    def _report(self, report: ExchangeReport) -> None:
        """An exchange's answer; a create's releases the stream events held for it."""
        if report.op != "create":
            self.outcomes.report(report)
            return
        # read first: an answer that finishes the order forgets its record
        live = self.core.orders.get(report.client_order_id)
        self.outcomes.report(report)
        self.stream.release_held(report.client_order_id, live.order.exchange if live else "")

    def _tracked(self, msg: SymbolTracked) -> None:
        self.stream.catch_up_read(msg)  # a stream's catch-up counts the read
        self.timers.tracked(msg)

    def _tick(self, _msg: Tick) -> None:
        guard = self.core.guard
        guard.check_file()
        guard.record_halt()
        guard.probe()
        self.timers.tick()
        self.stream.expire_held()

    def _record_halt(self, msg: RecordHalt) -> None:
        self.core.guard.record_halt()
        self.core.batch.sync_next()  # the reply waits for a commit, even with nothing to write
        self.core.answer(msg.reply, {"state": self.core.state.value})

    def _is_recovered(self, _msg: IsRecovered) -> bool:
        return not any(live.recovering for live in self.core.orders.values())

    def _stats(self, msg: GetStats) -> None:
        core = self.core
        stats = {
            "live_orders": len(core.orders),
            "sends": core.stats.sends,
            "retries": core.stats.retries,
            "resends": core.stats.resends,
            "submit_latency": core.stats.latency(),
            "unresolved": core.unresolved(),
        }

        def counted(counts: dict[str, int] | None) -> None:
            msg.reply(ProtocolError("internal", "the ledger could not be read; see the log")
                      if counts is None else {"orders_by_status": counts, **stats})

        self.status_counts.ask(counted)  # on a thread of its own: the ledger's every order


__all__ = ["NAME", "OrderActor", "OrderSettings"]
