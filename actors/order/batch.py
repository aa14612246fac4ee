"""Grouped commits: stage writes, commit them together, then let the world know.

OrderActor stages every change; after the message that staged it, it commits at
once when nothing else waits in its inbox, else it sends itself one `Flush`,
which lands behind everything already waiting, so a whole burst of work commits
in one transaction. Only after the commit are replies sent, exchange requests
delivered and events published, in that order, so nothing leaves the actor that is
not written, and an order's create does not wait for the other orders' events.

A commit waits for the disk (fsync) only when it holds an intent (an order about
to be sent, pending_submit, or cancelled, pending_cancel), a rejection, a repair,
or a new bound on event numbers. Other outcomes learnt from an exchange are
written without waiting: a process crash loses none of them (the operating system
has them), and a power loss can only take the last ones back to the intent before
them, which the restart resolves against the exchange as it does any unresolved
order. A rejection is the exception: a lookup would find nothing and send the
order again, after its client was told it was rejected. Event
numbers stay unique through that: the ledger keeps a durable bound above every
number published, and a start after a crash continues from the bound (a gap, which
subscribers catch up on with `list`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors.ledger.store import Ledger
from actors.metrics.series import Metrics
from actors.orders import Order
from actors.runtime import EventSink
from protocol.codec import encode_event
from protocol.errors import ProtocolError
from protocol.messages import OrderStatus

EVENT_SEQ_KEY = "event_seq"
"""Meta key: no event number above it has been published (exact after a clean stop)."""
SEQ_BLOCK = 10_000
"""Event numbers the durable bound runs ahead of those published."""
Fail = Callable[[ProtocolError], None]
"""Answers a client with an error."""
SYNCED = frozenset({OrderStatus.PENDING_SUBMIT, OrderStatus.PENDING_CANCEL, OrderStatus.REJECTED})
"""Statuses whose commits wait for the disk: the intents, written before a request is
sent, and a rejection, which the exchange could not tell again after a power loss."""


class Batch:
    """The work of one batch; used by OrderActor's thread only."""

    def __init__(self, ledger: Ledger, events: EventSink,
                 metrics: Metrics | None = None) -> None:
        self.ledger = ledger
        self.metrics = metrics or Metrics()
        self._events_sink = events
        self.pending = False
        """Something waits for the next flush."""
        self._events: list[dict[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._replies: list[tuple[Callable[[], None], Fail | None]] = []
        self._new: set[str] = set()
        """Client ids of orders staged for the first time since the last commit."""
        # event numbers continue across restarts, so subscribers can detect gaps
        self.seq = int(ledger.meta(EVENT_SEQ_KEY) or 0)
        self._bound = self.seq
        self._sync = False

    def sync_next(self) -> None:
        """The next commit waits for the disk (for writes whose results are reported)."""
        self._sync = True
        self.pending = True

    def stage(self, order: Order, publish: bool = True) -> None:
        """Record the order's new state and (unless only its trail moved) publish it as an
        event after the commit. The event is made first: an order that cannot be written
        out is refused here, before the ledger holds it, and never poisons the commit."""
        event = order.to_wire() if publish else None
        self.ledger.stage(order)
        if order.status in SYNCED:
            self._sync = True
        if event is not None:
            self._events.append(event)
        self.pending = True

    def stage_new(self, order: Order) -> None:
        """Stage an order recorded for the first time; `drop_new` can take it back."""
        self.stage(order)
        self._new.add(order.client_order_id)

    def drop_new(self) -> list[str]:
        """After a failed commit: take back the orders staged for the first time, and
        their events, so nothing of them is written, published or sent later."""
        dropped, self._new = sorted(self._new), set()
        for cid in dropped:
            self.ledger.unstage(cid)
        gone = set(dropped)
        self._events = [e for e in self._events if e["client_order_id"] not in gone]
        return dropped

    def fail_replies(self, error: ProtocolError) -> None:
        """After a failed commit: answer the replies waiting for it with `error`."""
        replies, self._replies = self._replies, []
        for action, fail in replies:
            if fail is None:
                self._replies.append((action, fail))
            else:
                fail(error)

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)
        self.pending = True

    def reply(self, action: Callable[[], None], fail: Fail | None = None) -> None:
        """Run now when nothing is waiting to commit, else first thing after the commit:
        before the events and the exchange requests, which a client is not waiting on.
        `fail` answers the same client with an error instead (see `fail_replies`)."""
        if self._events or self._after_commit or self._replies or self.ledger.dirty:
            self._replies.append((action, fail))
        else:
            action()

    def flush(self) -> None:
        """Commit, then answer, run what waited for the commit (the exchange requests) and
        publish the events. A commit that fails raises and leaves everything as it was,
        for the next flush."""
        if self.seq + len(self._events) > self._bound:
            self._bound = self.seq + len(self._events) + SEQ_BLOCK
            self.ledger.stage_meta(EVENT_SEQ_KEY, str(self._bound))
            self._sync = True
        if self.ledger.dirty:
            started = time.perf_counter()
            rows = self.ledger.commit(self._sync)
            self.metrics.commit_duration.observe(time.perf_counter() - started)
            self.metrics.commit_group.observe(rows)
        self.pending = self._sync = False
        self._new.clear()
        events, self._events = self._events, []
        actions, self._after_commit = self._after_commit, []
        replies, self._replies = self._replies, []
        for reply, _fail in replies:
            reply()
        for action in actions:
            action()
        if events:
            self.metrics.events_published.inc(len(events))
        for order in events:
            self.seq += 1
            self._events_sink.publish(encode_event(self.seq, order))

    def close(self) -> None:
        """Commit what is staged and record the exact last event number, durably."""
        self.flush()
        self.ledger.stage_meta(EVENT_SEQ_KEY, str(self.seq))
        self.ledger.commit(sync=True)
