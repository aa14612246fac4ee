"""The state and plumbing OrderActor is built on: live orders, grouped commits,
dispatch to exchange workers, held replies and lookups.

Work is grouped: each message stages its ledger writes and queues its replies.
After a message, the batch is committed at once when the inbox is empty, else by a
`Flush` the actor sends itself (it lands behind everything already waiting), so a
burst commits in one transaction; then the replies go, the events are published
and only then is the exchange called.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.alerts import Alerter, LogAlerter
from actors.batch import Batch
from actors.ledger import Ledger, storage_failure
from actors.ledger_guard import LedgerGuard
from actors.messages import (
    CancelOrder,
    ExchangeReport,
    FetchOrder,
    Flush,
    OrderTicket,
    PlaceOrder,
    Reply,
    Tick,
    TradeView,
)
from actors.metrics import Metrics
from actors.order_stats import OrderStats
from actors.orders import ZERO, Order
from actors.recent import RecentOrders
from actors.request_budget import RequestBudget
from actors.resolution import Resolver, ResolveSettings, SignedWindow, landing_deadline
from actors.risk import RiskPolicy
from actors.routing import Router
from actors.runtime import Clock, DaemonState, EventSink
from actors.stream_health import StreamHealth
from actors.supervisor import Registry, SupervisedActor
from actors.tracking import Pace, SymbolKey, Tracker, TrackingPlan, no_stream, steady_pace
from actors.waiters import Waiters
from protocol.errors import ProtocolError
from protocol.messages import OrderRef

log = logging.getLogger(__name__)

NAME = "order"
UNRESOLVED = frozenset({"pending_submit", "unknown", "pending_cancel"})
"""Statuses whose truth is still to be learnt from the exchange."""


@dataclass(frozen=True)
class OrderSettings:
    """What OrderActor needs to know from the configuration."""

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


class OrderCore(SupervisedActor):
    """Live orders and the machinery every order operation uses."""

    ledger: Ledger
    """Opened in on_start, in the actor's own thread."""
    batch: Batch
    """The grouped commit over the ledger, made with it."""
    guard: LedgerGuard
    """Failed commits, a replaced ledger file and the halt's record, made with it."""

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
        self.tracker = Tracker(TrackingPlan(settings.refresh_interval_s,
                                            settings.young_interval_s, settings.young_age_s,
                                            settings.tracking_pace,
                                            _stream_live(settings.stream_health),
                                            settings.safety_interval_s))
        self.stream_health = settings.stream_health
        self.catch_ups: dict[str, tuple[int, dict[SymbolKey, int]]] = {}
        """Exchange -> (stream connection, reads still to answer before it is trusted)."""
        self.trades_asked: set[tuple[str, str]] = set()  # (client id, filled) read once
        self.unknown_streamed: set[str] = set()  # order ids reported once
        self.stream_held: dict[str, list[ExchangeReport]] = {}
        """Stream events of orders whose create is unanswered, for after its answer."""
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
        self._handlers = self.handler_table()
        self._flush_queued = False

    def handler_table(self) -> dict[type, Callable[[Any], Any]]:
        """Message type -> handler; the complete actor says which messages it takes."""
        return {}

    def _stage(self, order: Order, publish: bool = True) -> None:
        self.batch.stage(order, publish)

    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        if self.batch.pending and not self._flush_queued:
            if self.guard.failing and not isinstance(message, Tick):
                return result  # while the disk refuses, one try a tick: not one a message
            if self.actor_inbox.empty():
                self._commit()  # nothing waits behind this message: commit now
            else:  # commit after what already waits, in the same transaction
                self._flush_queued = True
                self.actor_ref.tell(Flush())
        return result

    def _flush(self, _msg: Flush) -> None:
        self._flush_queued = False
        self._commit()

    def _commit(self) -> None:
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
        for table in (self.live, self.fills, self.submitted_at, self.creating):
            table.pop(cid, None)
        self.cancel_after_create.discard(cid)
        self.waiters.fail(cid, error)

    def _answer(self, reply: Reply, payload: dict[str, Any] | ProtocolError) -> None:
        """Reply now, or after the commit when this batch has writes. While the disk
        refuses commits, an error goes at once: it does not depend on one."""
        if self.guard.failing and isinstance(payload, ProtocolError):
            reply(payload)
        else:
            self.batch.reply(lambda: reply(payload), reply)

    def _answer_read(self, reply: Reply, payload: dict[str, Any]) -> None:
        """The answer of a read: as `_answer`, but at once while the disk refuses commits,
        so status and list keep working (they may show outcomes not yet written)."""
        if self.guard.failing:
            reply(payload)
        else:
            self._answer(reply, payload)

    def _dispatch(self, order: Order, kind: type[PlaceOrder | CancelOrder | FetchOrder],
                  after_commit: bool = True) -> None:
        """Send to the least busy worker; after the commit, so nothing unrecorded is sent."""
        ticket = OrderTicket.of(order, self._counted(order))
        message: Any
        if kind is PlaceOrder:
            now, wall = self.clock.monotonic(), self.clock.now()
            self.creating[order.client_order_id] = now
            # the deadline counts from the order's submission, resends included
            not_after = now - max(0.0, wall - order.created_at) + self.settings.send_deadline_s
            window = self.settings.signed_windows.get(order.exchange)
            if window is not None:  # sent late, it would be refused: sent again, re-signed
                not_after = min(not_after, now + window.send_within_s)
            # the intent records when the request is signed: resolution counts from it
            order.signed_at = wall
            self._stage(order, publish=False)
            message = PlaceOrder(ticket, not_after=not_after, signed_at=wall)
        else:
            message = kind(ticket)
        worker = self.router.pick(order.exchange, create=kind is PlaceOrder)
        if not after_commit:
            self._deliver(worker, message)
        elif kind is PlaceOrder:  # unless the order was dropped meanwhile
            self.batch.after_commit(lambda: self._deliver(
                worker, message, wanted=self.live.get(order.client_order_id) is order))
        else:
            self.batch.after_commit(lambda: self._deliver(worker, message))

    def _resolve(self, order: Order) -> None:
        """Look the order up until its outcome is known; absence counts only once its
        latest create can no longer land."""
        now, wall = self.clock.monotonic(), self.clock.now()
        deadline = landing_deadline(order.signed_at,
                                    self.settings.signed_windows.get(order.exchange),
                                    self.settings.resolution.clock_skew_s, wall)
        self.resolver.add(order.client_order_id, now, now + max(0.0, deadline - wall))

    def _deliver(self, worker: str, message: Any, wanted: bool = True) -> None:
        if not wanted or not self.registry.tell(worker, message):
            self.router.done(worker)
            if isinstance(message, PlaceOrder):
                self.router.answered(worker)

    def _hold(self, order: Order, reply: Reply, through: frozenset[str] | None) -> None:
        deadline = self.clock.monotonic() + self.settings.accept_timeout_s
        self.waiters.hold(order, reply, through, deadline)

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
        return make_client_order_id(self.settings.client_id_prefix, self.clock.now(), self._ids)

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

    def _settled(self, order: Order) -> None:
        """Replies, recovery and memory once an order's state may have moved on."""
        self.waiters.release(order)
        cid = order.client_order_id
        if order.status not in UNRESOLVED:
            self.recovering.discard(cid)
        if order.terminal:
            if cid in self.live:
                self.metrics.child(self.metrics.orders_finished, order.exchange,
                                   order.status).inc()
            for table in (self.live, self.resend_at, self.submitted_at, self.creating):
                table.pop(cid, None)
            self.recent.add(order)
            self.resolver.drop(cid)
            self.cancel_after_create.discard(cid)
            self.recovering.discard(cid)


def make_client_order_id(prefix: str, now: float, rng: random.Random) -> str:
    """The prefix, 13 hex digits of the time in microseconds, 15 random ones (60 bits):
    36 characters at most (the protocol's and binance's limit) with the longest prefix,
    and unique as the 128 random bits were (two ids share a microsecond of the clock
    only if it steps back, and then differ in 60 random bits).

    Time first, so ids made later sort later: the ledger's indexes by client order id
    (the orders' own and their fills') take new ids at their end, on pages a commit
    touches anyway. Random ids wrote a page each: a commit of 30 orders with their fills
    wrote 47 pages instead of 14, and every reply of those orders waited for it."""
    return f"{prefix}{int(now * 1_000_000):013x}{rng.getrandbits(60):015x}"


def _stream_live(health: StreamHealth | None) -> Callable[[str], bool]:
    return no_stream if health is None else health.live
