"""What OrderActor's parts share, handed to each of them: the live orders (one
`LiveOrder` each), the ledger and its grouped commit, dispatch to exchange workers,
held replies and lookups.

Work is grouped: each message stages its ledger writes and queues its replies.
After a message, the batch is committed at once when the inbox is empty, else by a
`Flush` the actor sends itself (it lands behind everything already waiting), so a
burst commits in one transaction; then the replies go, the exchange is called and
only then are the events published (see `batch`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from actors.exchange.budget import RequestBudget
from actors.exchange.messages import CancelOrder, FetchOrder, OrderTicket, PlaceOrder, TradeView
from actors.exchange.routing import Router
from actors.ledger.store import Ledger, storage_failure
from actors.metrics.alerts import Alerter
from actors.metrics.series import Metrics
from actors.order.batch import Batch
from actors.order.ledger_guard import LedgerGuard
from actors.order.live import LiveOrder
from actors.order.placement import sort_out, warn_left_alone
from actors.order.recent import RecentOrders
from actors.order.resolution import Resolver, ResolveSettings, SignedWindow
from actors.order.risk import RiskPolicy
from actors.order.stats import OrderStats
from actors.order.tracking import Pace, Tracker, TrackingPlan, no_stream, steady_pace
from actors.order.waiters import Waiters
from actors.orders import ZERO, Order
from actors.reconcile.messages import RECONCILER, RecordDiscrepancy
from actors.runtime import Clock, DaemonState, EventSink, Reply
from actors.stream.health import StreamHealth
from actors.supervisor import Registry
from protocol.errors import ProtocolError
from protocol.messages import OrderRef, OrderStatus

log = logging.getLogger(__name__)

NAME = "order"
UNRESOLVED = frozenset({OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN,
                        OrderStatus.PENDING_CANCEL})
"""Statuses whose truth is still to be learnt from the exchange."""
STALE_CREATE_FACTOR = 2
"""A create unanswered for this many send deadlines is stale: it is looked up instead."""


@dataclass(frozen=True)
class OrderSettings:
    """What OrderActor needs to know from the configuration, and what it keeps beyond
    itself: the supervisor's factory hands every restarted OrderActor the same settings
    object, so what lives here (the statistics, the budgets, the streams' health) outlasts
    a crash of the actor."""

    ledger_path: Path
    default_exchange: str
    workers: dict[str, int] = field(default_factory=lambda: {"paper": 1})
    accept_timeout_s: float = 5.0
    client_id_prefix: str = "od-"
    refresh_interval_s: float = 2.0
    """How often a symbol's open orders are read for tracking, once none of its orders
    is young."""
    young_interval_s: float = 0.5
    """How often while one of the symbol's orders is younger than young_age_s."""
    young_age_s: float = 60.0
    """Age (seconds since recorded) below which an order is young."""
    tracking_pace: Pace = steady_pace
    """Exchange -> factor on its tracking intervals (a request budget's hook: more than
    1 when it runs low); called on each tick, from OrderActor's thread."""
    stream_health: StreamHealth | None = None
    """Whether each exchange's user-data stream is live (None: no streams)."""
    safety_interval_s: float = 60.0
    """How often a symbol is read while its exchange's stream is live."""
    send_deadline_s: float = 30.0
    backlogs: dict[str, int] = field(default_factory=dict)
    """Exchange -> unanswered creates from which on new submits to it are refused
    (an exchange not listed has no limit)."""
    resolution: ResolveSettings = field(default_factory=ResolveSettings)
    signed_windows: dict[str, SignedWindow] = field(default_factory=dict)
    """Exchange -> how long its signed creates stay valid (an exchange not listed books a
    create at once or never: the in-process paper venue)."""
    risk: RiskPolicy | None = None
    """Risk limits per exchange, shared with the reload of the configuration."""
    budgets: dict[str, RequestBudget] = field(default_factory=dict)
    """Exchange -> its request budget (shared with its workers): a submit it has no room
    for is refused before it is recorded (an exchange not listed has none)."""
    places: dict[str, str] = field(default_factory=dict)
    """Exchange -> what its entry talks to (see placement): its live orders placed on
    something else are set aside at load (an exchange not listed is never checked)."""
    stats: OrderStats = field(default_factory=OrderStats)
    """Sends, retries and submit latencies since the daemon started: counted on by the
    actor that replaces a crashed one (a restart gives back what the actor had)."""


class OrderCore:
    """Live orders and the machinery every order operation uses; used by OrderActor's
    thread only."""

    ledger: Ledger
    """Opened in OrderActor's on_start, in the actor's own thread."""
    batch: Batch
    """The grouped commit over the ledger, made with it."""
    guard: LedgerGuard
    """Failed commits, a replaced ledger file and the halt's record, made with it."""

    def __init__(self, registry: Registry, settings: OrderSettings, state: DaemonState,
                 events: EventSink, clock: Clock, alerter: Alerter, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        self.state = state
        self.events = events
        self.clock = clock
        self.alerter = alerter
        self.exchanges = frozenset(settings.workers)
        """The configured exchanges: the only ones an order is ever sent to."""
        self.orders: dict[str, LiveOrder] = {}
        """The live orders by client order id, each with its bookkeeping; all of
        configured exchanges."""
        self.set_aside: dict[str, Order] = {}
        """Live ledger orders of exchanges no longer configured (renamed or removed while
        the daemon was down), or placed on what their entry no longer talks to (those of
        a configured exchange: see placement), by client order id: left as recorded,
        never sent or resolved, until their exchange is configured again as it was."""
        self.finished_fills: dict[str, dict[str, TradeView]] = {}
        """Counted trades of recently finished orders (kept as long as `recent` keeps
        the order)."""
        self.recent = RecentOrders(self.finished_fills)
        self.waiters = Waiters(self.answer)
        self.tracker = Tracker(TrackingPlan(settings.refresh_interval_s,
                                            settings.young_interval_s, settings.young_age_s,
                                            settings.tracking_pace,
                                            _stream_live(settings.stream_health),
                                            settings.safety_interval_s))
        self.resolver = Resolver(settings.resolution)
        self.router = Router(settings.workers)
        self.stats = settings.stats
        self.last_prices: dict[tuple[str, str], Decimal] = {}  # risk's reference prices

    def open(self) -> None:
        """Open the ledger and take its live orders (in the actor's own thread)."""
        self.ledger = Ledger(self.settings.ledger_path)
        self.batch = Batch(self.ledger, self.events, self.metrics)
        self.guard = LedgerGuard(self.ledger, self.batch, self.state, self.alerter, self.clock)
        self.guard.load_halt()
        live = self.ledger.live()
        # the one check: an order set aside never enters `orders`, so no timer, recovery
        # or cancel_all sends it (Router has no workers for an exchange not configured);
        # a client's cancel finds it in the ledger: unknown_exchange
        self.set_aside = {o.client_order_id: o for o in live if o.exchange not in self.exchanges}
        places = self.settings.places
        found = sort_out(self.ledger, [o for o in live if o.exchange in self.exchanges],
                         places)
        try:  # now: a reader (the reconciler) leaves out the orders recorded aside
            self.ledger.commit()
        except sqlite3.Error as exc:  # else with the first commit the disk takes
            if not storage_failure(exc):
                raise
        self.orders = {o.client_order_id: LiveOrder(o) for o in found.managed}
        self.set_aside.update((cid, order) for cid, (order, _) in found.moved.items())
        self._count_set_aside()
        warn_left_alone(self.set_aside.values(), self.exchanges, found.moved, places,
                        self.alerter)

    def _count_set_aside(self) -> None:
        """Count, per exchange, the live orders left alone: they may still rest (and
        fill) on a venue that nobody here watches. The gauge keeps saying it while they
        are (the log and the alert say it once, at the start, with why)."""
        gauge = self.metrics.orders_set_aside
        gauge.clear()  # a restarted actor counts again from its own load
        for exchange, count in Counter(o.exchange for o in self.set_aside.values()).items():
            gauge.labels(exchange).set(count)

    def unknown_exchange(self, order: Order) -> ProtocolError | None:
        """The error for a request that would send `order` to an exchange not configured,
        or not where it was placed (its orders are set aside at load), else None."""
        cid, exchange = order.client_order_id, order.exchange
        if exchange not in self.exchanges:
            why = f"is of exchange {exchange!r}, which is not configured"
        elif cid in self.set_aside:
            why = f"was placed where exchange {exchange!r} no longer points; point it back"
        else:
            return None
        return ProtocolError("unknown_exchange", f"order {cid} {why}",
                             details={"client_order_id": cid, "exchange": exchange})

    def stage(self, order: Order, publish: bool = True) -> None:
        self.batch.stage(order, publish)

    def commit(self) -> None:
        """Commit the batch. When the disk refuses it, submits halt, the replies waiting
        for it get a retryable error, the orders it would have recorded first are
        dropped (never sent), and everything else waits for the next try."""
        wrote = self.ledger.dirty
        try:
            self.batch.flush()
        except sqlite3.Error as exc:
            if not storage_failure(exc):
                raise
            error = self.guard.failed(exc)
            for cid in self.batch.drop_new():
                self._drop(cid, error)
            self.batch.fail_replies(error)
            return
        if wrote:
            self.guard.written()

    def _drop(self, cid: str, error: ProtocolError) -> None:
        """An order whose first commit failed: as if it had never been submitted."""
        self.orders.pop(cid, None)
        self.waiters.fail(cid, error)

    def answer(self, reply: Reply, payload: dict[str, Any] | ProtocolError) -> None:
        """Reply now, or after the commit when this batch has writes. While the disk
        refuses commits, an error goes at once: it does not depend on one."""
        if self.guard.failing and isinstance(payload, ProtocolError):
            reply(payload)
        else:
            self.batch.reply(lambda: reply(payload), reply)

    def answer_read(self, reply: Reply, payload: dict[str, Any]) -> None:
        """The answer of a read: as `answer`, but at once while the disk refuses commits,
        so status and list keep working (they may show outcomes not yet written)."""
        if self.guard.failing:
            reply(payload)
        else:
            self.answer(reply, payload)

    def place(self, live: LiveOrder) -> None:
        """Send the order's create to the least busy worker, after the commit (so nothing
        unrecorded is sent) unless the order was dropped meanwhile."""
        order = live.order
        ticket = OrderTicket.of(order, self.counted(order, live))
        now, wall = self.clock.monotonic(), self.clock.now()
        live.creating_since = now
        # the deadline counts from the order's submission, resends included
        not_after = now - max(0.0, wall - order.created_at) + self.settings.send_deadline_s
        window = self.settings.signed_windows.get(order.exchange)
        if window is not None:  # sent late, it would be refused: sent again, re-signed
            not_after = min(not_after, now + window.send_within_s)
        # the intent records when the request is signed: resolution counts from it
        order.signed_at = wall
        self.batch.stage(order, publish=False)
        message = PlaceOrder(ticket, not_after=not_after, signed_at=wall)
        worker = self.router.pick(order.exchange, create=True)
        self.batch.after_commit(lambda: self.deliver(
            worker, message, wanted=self.orders.get(order.client_order_id) is live))

    def dispatch(self, order: Order, kind: type[CancelOrder | FetchOrder]) -> None:
        """Send to the least busy worker; after the commit, so nothing unrecorded is sent."""
        message = kind(OrderTicket.of(order, self.counted(order)))
        worker = self.router.pick(order.exchange, create=False)
        self.batch.after_commit(lambda: self.deliver(worker, message))

    def resolve(self, order: Order) -> None:
        """Look the order up until its outcome is known; absence counts only once its
        latest create can no longer land."""
        self.resolver.add_signed(order.client_order_id, order.signed_at,
                                 self.settings.signed_windows.get(order.exchange),
                                 self.clock.monotonic(), self.clock.now())

    def deliver(self, worker: str, message: Any, wanted: bool = True) -> None:
        if not wanted or not self.registry.tell(worker, message):
            self.router.done(worker)
            if isinstance(message, PlaceOrder):
                self.router.answered(worker)

    def hold(self, order: Order, reply: Reply, through: frozenset[str] | None) -> None:
        deadline = self.clock.monotonic() + self.settings.accept_timeout_s
        self.waiters.hold(order, reply, through, deadline)

    def find(self, ref: OrderRef) -> Order | ProtocolError:
        """The order `ref` names, or the error to answer: `not_found`, or `bad_request`
        for an exchange id that names orders on two exchanges or markets (a status or a
        cancel must never reach another order than the one meant)."""
        if ref.client_order_id is not None:
            return self.get(ref.client_order_id) or not_found(ref)
        assert ref.order_id is not None
        orders = self.ledger.by_order_id(ref.order_id)
        if not orders:
            return not_found(ref)
        if len(orders) > 1:
            return ambiguous_order_id(ref.order_id)
        return self.current(orders[0].client_order_id) or orders[0]

    def current(self, client_order_id: str) -> Order | None:
        """The order as held in memory: live or recently finished."""
        live = self.orders.get(client_order_id)
        return live.order if live is not None else self.recent.get(client_order_id)

    def get(self, client_order_id: str) -> Order | None:
        return self.current(client_order_id) or self.ledger.get(client_order_id)

    def known_fills(self, order: Order, live: LiveOrder | None = None) -> dict[str, TradeView]:
        """The order's counted trades, read from the ledger the first time; `live`: its
        record when the caller has it at hand."""
        cid = order.client_order_id
        if live is None:
            live = self.orders.get(cid)
        if live is not None:
            if live.fills is None:
                live.fills = self.ledger.fills_of(order.exchange, cid)
            return live.fills
        known = self.finished_fills.get(cid)
        if known is None:
            self.recent.add(order)  # so its fills go when it leaves the window
            known = self.ledger.fills_of(order.exchange, cid)
            self.finished_fills[cid] = known
        return known

    def counted(self, order: Order, live: LiveOrder | None = None) -> Decimal:
        """How much of the order its counted trades fill (no ledger read for an order
        with nothing filled and no trades in memory)."""
        if order.filled == 0:
            if live is None:
                live = self.orders.get(order.client_order_id)
            known = (live.fills if live is not None
                     else self.finished_fills.get(order.client_order_id))
            if known is None:
                return ZERO
        return sum((t.amount for t in self.known_fills(order, live).values()), ZERO)

    def settled(self, order: Order, live: LiveOrder | None) -> None:
        """Replies, recovery and memory once an order's state may have moved on; `live`:
        its record, None when it is not live."""
        self.waiters.release(order)
        if live is None:
            if order.terminal:  # a finished order's answer: it stays in the window
                self.recent.add(order)
                self.resolver.drop(order.client_order_id)
            return
        if order.status not in UNRESOLVED:
            live.recovering = False
        if order.terminal:
            self._forget(live)

    def _forget(self, live: LiveOrder) -> None:
        """A finished order leaves the live set; its fills stay with the recent ones."""
        order = live.order
        cid = order.client_order_id
        self.metrics.child(self.metrics.orders_finished, order.exchange, order.status).inc()
        del self.orders[cid]
        if live.fills is not None:
            self.finished_fills[cid] = live.fills
        self.recent.add(order)
        self.resolver.drop(cid)

    def tell_reconciler(self, record: RecordDiscrepancy) -> None:
        """A discrepancy for the reconciler's report, after the commit (as everything
        that leaves this actor)."""
        self.batch.after_commit(partial(self._deliver_record, record))

    def _deliver_record(self, record: RecordDiscrepancy) -> None:
        if not self.registry.tell(RECONCILER, record):
            log.warning("discrepancy of %s not reported: no reconciler running",
                        record.entry["client_order_id"])

    def unresolved(self) -> dict[str, Any]:
        """Orders never stay unknown silently: how many, and the oldest's age."""
        now = self.clock.monotonic()
        return {"count": len(self.resolver.cases),
                "oldest_age_s": round(self.resolver.oldest_age(now), 3)}


def _stream_live(health: StreamHealth | None) -> Callable[[str], bool]:
    return no_stream if health is None else health.live


def not_found(ref: OrderRef) -> ProtocolError:
    which = (f"client_order_id {ref.client_order_id!r}" if ref.client_order_id is not None
             else f"order_id {ref.order_id!r}")
    return ProtocolError("not_found", f"no order with {which}")


def ambiguous_order_id(order_id: str) -> ProtocolError:
    """`order_id` names more than one order: exchanges number their orders each their own
    way (binance per market), and a status or cancel must reach only the one meant."""
    return ProtocolError("bad_request", f"order_id {order_id!r} names more than one order "
                         "(on other exchanges or markets); ask by client_order_id",
                         field="order_id")
