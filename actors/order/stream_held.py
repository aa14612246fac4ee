"""Stream events of orders whose create has not answered yet, kept for after its answer.

A stream often tells of an order before its create's answer comes back, and that answer
settles the order (and answers its submit), so its events wait for it. A create that never
answers must not make them pile up: they are kept at most `max_age_s` and `max_events` in
all, the oldest order's dropped first. What is dropped is left to REST tracking and
reconciliation, which read the order once it is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.order.messages import ExchangeReport

log = logging.getLogger(__name__)

MAX_EVENTS = 10_000
"""Events held for all orders together."""


@dataclass
class _Held:
    since: float
    """When the order's first event was held (monotonic)."""
    reports: list[ExchangeReport] = field(default_factory=list)


class HeldEvents:
    """Per client order id, its events in order; used by OrderActor's thread only."""

    def __init__(self, monotonic: Callable[[], float], max_age_s: float,
                 max_events: int = MAX_EVENTS) -> None:
        self._monotonic = monotonic
        self.max_age_s = max_age_s
        self.max_events = max_events
        self._held: dict[str, _Held] = {}  # oldest first: held in the clock's order
        self._count = 0

    def __len__(self) -> int:
        """Events held."""
        return self._count

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._held

    def hold(self, client_order_id: str, report: ExchangeReport) -> None:
        now = self._monotonic()
        held = self._held.get(client_order_id)
        if held is None:
            held = self._held[client_order_id] = _Held(now)
        held.reports.append(report)
        self._count += 1
        self.expire(now)

    def take(self, client_order_id: str) -> list[ExchangeReport]:
        """The order's events, in order; no longer held."""
        held = self._held.pop(client_order_id, None)
        if held is None:
            return []
        self._count -= len(held.reports)
        return held.reports

    def expire(self, now: float | None = None) -> None:
        """Drop the oldest orders' events while they are too old or too many."""
        now = self._monotonic() if now is None else now
        while self._held:
            cid, oldest = next(iter(self._held.items()))
            aged = now - oldest.since > self.max_age_s
            if not aged and self._count <= self.max_events:
                return
            self.take(cid)
            log.warning("stream events of %s dropped (%d, %s) while its create is "
                        "unanswered; tracking and reconciliation read it instead", cid,
                        len(oldest.reports), "too old" if aged else "too many held")
