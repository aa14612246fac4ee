"""The request budget's fixed windows: the weight, and the unfilled order counts.

binance's order count is of *unfilled* orders (faqs/order_count_decrement.md): each new
order adds one, and an order's first fill takes one off again, in every ORDERS window,
in the window current then, never below 0. So the count an answer reports
(`X-MBX-ORDER-COUNT-*`) may be lower than the creates we sent, and the budget follows
it down as well as up. It never sends more than the exchange would take: the count of
an answer is the exchange's when it handled that create, so the creates sent after it
and not answered yet are added to it, and so are creates the exchange may have counted
that no answer told us of (no answer, or one without the count). Several workers send
at once, each on its own connection: a create sent before another may reach the
exchange after it, so the creates still unanswered when one was sent are added to its
count too, even once answered (they may have been counted after it).
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
        """Move on to the window of `now`; never back: a wall clock stepped back (NTP)
        has not moved the exchange's, whose window and count go on."""
        index = self.index_at(now)
        if index > self.index:
            self.index, self.used, self.in_flight = index, 0, 0

    def carry(self, before: Window) -> None:
        """Take over the count of `before`, the window this one replaces (new limits)."""
        self.index, self.used, self.in_flight = before.index, before.used, before.in_flight

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
    as the exchange's count plus what it cannot have seen."""

    unsure: int = 0
    """Creates of this window whose answer told us nothing (none came, or one without
    the count): the exchange may count them whenever it got them, so they stay counted."""
    seen: dict[int, tuple[float, bool]] = field(default_factory=dict)
    """The counts of this window's creates answered while one they may have overtaken or
    been overtaken by is unanswered: number -> (count, taken early)."""

    def roll(self, now: float) -> None:
        if self.index_at(now) > self.index:
            self.unsure, self.seen = 0, {}
        Window.roll(self, now)

    def carry(self, before: Window) -> None:
        Window.carry(self, before)
        if isinstance(before, OrderWindow):
            self.unsure, self.seen = before.unsure, before.seen

    def counted(self, create: Answered, taken: float, now: float, count: float | None,
                creates: Creates) -> None:
        """The answer to `create`, taken at `taken`, came at `now` with the exchange's
        `count` (None: none); `creates` are those still unanswered. Taken in a window that
        is over, it tells nothing of this one."""
        self.roll(now)
        if self.index_at(taken) == self.index:
            self._count(create, taken, count, creates)
        keep = creates.relevant_from()
        self.seen = {n: seen for n, seen in self.seen.items() if n >= keep}

    def _count(self, create: Answered, taken: float, count: float | None,
               creates: Creates) -> None:
        """The last of our answered creates the exchange handled is this one or one it
        may have overtaken or been overtaken by (see `Creates`): the highest of their
        counts, plus the creates still unanswered and those that never told, bounds the
        exchange's count now, up or down. A count taken early in the window may be the
        window before's: it may then lower ours (it bounds this window's all the same)
        but never raise it. Not a create of ours, its count may only raise ours."""
        if count is None:
            self.unsure += 1
            return
        if create.number == 0:
            if not self.early(taken):
                self.used = max(self.used, count + self.unsure)
            return
        self.seen[create.number] = (count, self.early(taken))
        frontier = [seen for n, seen in self.seen.items()
                    if n >= create.number or n in create.overtaken]
        pending = sum(1 for when in creates.moments() if self.index_at(when) == self.index)
        bound = max(c for c, _ in frontier) + pending + self.unsure
        if any(early for _, early in frontier):
            self.used = min(self.used, bound)
        else:
            self.used = bound

    def read(self, count: float, started: float, now: float, uncounted: list[float]) -> bool:
        """The exchange's own count of this window, read by a request about to go out at
        `started` and answered at `now`; `uncounted`: when the creates it may lack were
        taken (unanswered now, or answered while it was out). As a create's count: only
        in the window it was surely counted in, and early in the window it may lower
        ours but not raise it. Whether it told this window's count."""
        self.roll(now)
        if self.index_at(started) != self.index:
            return False
        bound = count + self.unsure + sum(1 for when in uncounted
                                          if self.index_at(when) == self.index)
        self.used = min(self.used, bound) if self.early(started) else bound
        return True

    def lost(self, taken: float, now: float) -> None:
        """A create taken at `taken` got no answer: it may be counted whenever it lands."""
        self.roll(now)
        if self.index_at(taken) == self.index:
            self.unsure += 1


@dataclass(frozen=True, slots=True)
class Answered:
    """Which create an answer is to (see `OrderWindow.counted`)."""

    number: int = 0
    """0: not a create of ours (a budget made anew meanwhile)."""
    overtaken: frozenset[int] = frozenset()
    """The creates unanswered when it was sent."""


@dataclass
class Creates:
    """The new orders sent and not yet answered, oldest first, numbered as sent.

    Each worker sends on its own connection: a create sent before another may reach the
    exchange after it. So each remembers the creates unanswered when it was sent: those,
    and the ones sent after it, may have been counted before or after it."""

    sent: list[tuple[int, float, frozenset[int]]] = field(default_factory=list)
    """(number, when taken, the creates unanswered then) of each."""
    last: int = 0

    def add(self, now: float) -> float:
        """A create taken at `now`; the moment that names it: `now`, or just after the
        last one sent (the smallest step of the float), so that no two share one and
        its answer tells which of them it is."""
        last = self.sent[-1][1] if self.sent else now
        taken = now if now > last or not self.sent else math.nextafter(last, math.inf)
        self.last += 1
        self.sent.append((self.last, taken, frozenset(n for n, _, _ in self.sent)))
        return taken

    def answered(self, taken: float) -> Answered:
        """The create taken at `taken` is answered (or never will be)."""
        for i, (number, when, overtaken) in enumerate(self.sent):
            if when == taken:
                del self.sent[i]
                return Answered(number, overtaken)
        return Answered()

    def moments(self) -> list[float]:
        """When the unanswered ones were taken."""
        return [when for _, when, _ in self.sent]

    def relevant_from(self) -> int:
        """The oldest answered create an unanswered one may have overtaken or been
        overtaken by (the newer ones all may). Read off the oldest unanswered one alone,
        in time independent of how many are in flight: every older create a newer one's
        `overtaken` holds was unanswered when the oldest was sent, so it is in the
        oldest's too, and each newer one's holds the oldest itself."""
        if not self.sent:
            return self.last + 1
        number, _, overtaken = self.sent[0]
        if overtaken:
            return min(overtaken)
        return number if len(self.sent) > 1 else number + 1

    def __len__(self) -> int:
        return len(self.sent)
