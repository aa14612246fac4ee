"""The request budget's fixed windows: the weight, and the unfilled order counts.

binance's order count is of *unfilled* orders (faqs/order_count_decrement.md): each new
order adds one, and an order's first fill takes one off again, in every ORDERS window,
in the window current then, never below 0. So the count an answer reports
(`X-MBX-ORDER-COUNT-*`) may be lower than the creates we sent, and the budget follows
it down as well as up. It never sends more than the exchange would take: the count of
an answer is the exchange's when it handled that create, so the creates sent after it
and not answered yet are added to it, and so are creates the exchange may have counted
that no answer told us of (no answer, or one without the count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CLOCK_AHEAD_S = 1.0
"""How far our clock may run ahead of the exchange's: a request taken this early in one
of our windows may have been counted in the exchange's window before it."""


@dataclass(slots=True)
class Window:
    """One fixed window's count: what the exchange reported, plus what is in flight."""

    seconds: int
    limit: int | None
    header: str
    index: int = -1
    used: float = 0
    in_flight: float = 0

    def roll(self, now: float) -> None:
        index = self.index_at(now)
        if index != self.index:
            self.index, self.used, self.in_flight = index, 0, 0

    def index_at(self, moment: float) -> int:
        return int(moment // self.seconds)

    def early(self, taken: float) -> bool:
        """Whether a request taken at `taken` (in this window) came so early in it that
        the exchange's clock may still have been in the window before."""
        return self.index_at(taken - CLOCK_AHEAD_S) != self.index

    def settle(self, taken: float, now: float, weight: float, count: float | None) -> None:
        """The answer to a request of `weight` taken at `taken` came at `now`, with the
        exchange's `count` for this window (None: none). The count replaces ours only if
        the request was surely counted in the window we are in: one taken in an earlier
        window, or so early in this one that the exchange's clock may still have been in
        the one before, may report a window that is over, and would hold this one at that
        window's count to its end."""
        self.roll(now)
        if self.index_at(taken) != self.index:
            return  # counted in a window that is over: nothing of it is left here
        self.in_flight = max(0.0, self.in_flight - weight)
        if count is None or self.early(taken):
            self.used += weight
        else:
            self.used = max(self.used, count)

    def ends_in(self, now: float) -> float:
        return (self.index + 1) * self.seconds - now

    def total(self) -> float:
        return self.used + self.in_flight


@dataclass(slots=True)
class OrderWindow(Window):
    """An order count: `used` holds every create counted in this window (in flight too),
    as the exchange's last fresh count plus what it cannot have seen."""

    unsure: int = 0
    """Creates of this window whose answer told us nothing (none came, or one without
    the count): the exchange may count them whenever it got them, so they stay counted."""
    latest: int = 0
    """The number of the newest create whose count was taken: an older one's answer,
    late, may not lower ours (creates answered since are not in its count)."""

    def roll(self, now: float) -> None:
        if self.index_at(now) != self.index:
            self.unsure = 0
        Window.roll(self, now)

    def counted(self, number: int, taken: float, now: float, count: float | None,
                after: int) -> None:
        """The answer to create `number`, taken at `taken`, came at `now` with the
        exchange's `count` (None: none); `after` creates taken after it are unanswered.
        A fresh count replaces ours, up or down; an older one may only raise it. Taken in
        a window that is over, it tells nothing of this one; taken early in this one, it
        may be the window before's: it may then lower ours (it bounds this window's
        count all the same) but never raise it."""
        self.roll(now)
        if self.index_at(taken) != self.index:
            return
        if count is None:
            self.unsure += 1
            return
        bound = count + after + self.unsure
        fresh = number > self.latest
        if fresh:
            self.latest = number
        if fresh and not self.early(taken):
            self.used = bound
        elif fresh:
            self.used = min(self.used, bound)
        elif not self.early(taken):
            self.used = max(self.used, bound)

    def lost(self, taken: float, now: float) -> None:
        """A create taken at `taken` got no answer: it may be counted whenever it lands."""
        self.roll(now)
        if self.index_at(taken) == self.index:
            self.unsure += 1


@dataclass
class Creates:
    """The new orders sent and not yet answered, oldest first, numbered as sent."""

    sent: list[tuple[int, float]] = field(default_factory=list)
    """(number, when taken) of each."""
    last: int = 0

    def add(self, now: float) -> float:
        """A create taken at `now`; the moment that names it: `now`, or just after the
        last one sent (the smallest step of the float), so that no two share one and
        its answer tells which of them it is."""
        last = self.sent[-1][1] if self.sent else now
        taken = now if now > last or not self.sent else math.nextafter(last, math.inf)
        self.last += 1
        self.sent.append((self.last, taken))
        return taken

    def answered(self, taken: float) -> tuple[int, int]:
        """The create taken at `taken` is answered: (its number, how many sent after it
        are unanswered)."""
        for i, (number, when) in enumerate(self.sent):
            if when == taken:
                del self.sent[i]
                return number, len(self.sent) - i
        return 0, 0  # not ours (a budget made anew meanwhile): the count may only raise

    def __len__(self) -> int:
        return len(self.sent)
