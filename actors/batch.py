"""Grouped commits: stage writes, commit them together, then let the world know.

OrderActor stages every change and sends itself one `Flush`; the flush lands
behind everything already in its inbox, so a whole burst of work commits in one
transaction. Only after the commit are events published, replies sent and
exchange requests delivered, so nothing leaves the actor that is not durable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors.ledger import Ledger
from actors.metrics import Metrics
from actors.orders import Order
from actors.runtime import EventSink
from protocol.codec import encode_event

EVENT_SEQ_KEY = "event_seq"


class Batch:
    """The work of one batch; used by OrderActor's thread only."""

    def __init__(self, ledger: Ledger, events: EventSink,
                 schedule_flush: Callable[[], None], metrics: Metrics | None = None) -> None:
        self.ledger = ledger
        self.metrics = metrics or Metrics()
        self._events_sink = events
        self._schedule_flush = schedule_flush
        self._scheduled = False
        self._events: list[dict[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        # event numbers continue across restarts, so subscribers can detect gaps
        self.seq = int(ledger.meta(EVENT_SEQ_KEY) or 0)

    def stage(self, order: Order, publish: bool = True) -> None:
        """Record the order's new state and (unless only its trail moved) publish it as an
        event after the commit."""
        self.ledger.stage(order)
        if publish:
            self._events.append(order.to_wire())
        self._schedule()

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)
        self._schedule()

    def reply(self, action: Callable[[], None]) -> None:
        """Run now when nothing is waiting to commit, else after the commit."""
        if self._events or self._after_commit or self.ledger.dirty:
            self._after_commit.append(action)
        else:
            action()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._schedule_flush()

    def flush(self) -> None:
        """Commit, then publish the events and run what waited for the commit."""
        self._scheduled = False
        events, self._events = self._events, []
        actions, self._after_commit = self._after_commit, []
        if events:
            self.ledger.stage_meta(EVENT_SEQ_KEY, str(self.seq + len(events)))
        if self.ledger.dirty:
            started = time.perf_counter()
            rows = self.ledger.commit()
            self.metrics.commit_duration.observe(time.perf_counter() - started)
            self.metrics.commit_group.observe(rows)
        if events:
            self.metrics.events_published.inc(len(events))
        for order in events:
            self.seq += 1
            self._events_sink.publish(encode_event(self.seq, order))
        for action in actions:
            action()
