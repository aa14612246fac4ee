"""When the request budget reads the exchange's unfilled order counts.

binance's order count is of unfilled orders: an order's first fill takes one off the
current count of every ORDERS window. The budget learns of that from a create's
answer (`X-MBX-ORDER-COUNT-*`), but once a window is full no create goes out to bring
a lower count back, and new orders would wait for the window's end (for the day's
window, hours) while binance would take them. So when new orders are refused for the
order count and an order's first fill was seen since the counts were last read, the
counts are read (binance's `GET /api/v3/rateLimit/order`, weight 40): one read at a
time, at most one a second. `ReadPlan` decides when; the budget applies the answer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.exchange.limits import counts_of
from actors.exchange.windows import OrderWindow

READ_INTERVAL_S = 1.0
"""The least time between two reads: each weighs 40 (2,400 a minute at most)."""
FILL_LAG_S = 1.0
"""binance takes a fill off its count "a short delay" after it: a read sent this soon
after the last fill seen may not show it yet, so one more read may go."""
READ_LOST_S = 60.0
"""A read claimed this long ago and not answered is taken as lost (its worker was
restarted, say): another may go, as the fill it was to read is still unread."""


@dataclass(eq=False)
class CountRead:
    """One read of the order counts, from its claim to its answer."""

    claimed: float
    started: float | None = None
    """When it was about to go out (its window is that of this moment or a later one)."""
    answered: list[float] = field(default_factory=list)
    """When the creates answered while it was out were taken: the exchange may have
    handled them after the read, so its counts may lack them."""
    crossed: bool = False
    """It came back in a later window of ours than it went out in: that window's count
    was not told, which a read sent now would tell."""
    refused: bool = False
    """A create was refused for the order count while it was out: the exchange may have
    answered the read before the orders that filled the count (another program's)."""


class ReadPlan:
    """Whether a read is due, and the one under way. `fill_seen`, `sent` and `failed`
    take the budget's lock; the others are called with it held (by the budget)."""

    def __init__(self, lock: threading.Lock, clock: Callable[[], float]) -> None:
        self._lock, self._clock = lock, clock
        self.fill_unread = False
        """An order's first fill was seen since the last read was claimed."""
        self.current: CountRead | None = None
        """The read claimed and not yet answered, failed or taken as lost."""
        self.last_claimed = -math.inf
        """When the last read was claimed: the next waits READ_INTERVAL_S from it."""
        self.last_fill = -math.inf
        """When the last first fill was seen: a read this soon after may not show it."""
        self.rooms_read = 0
        """How many reads found room (and may end a hold): OrderActor sends the creates
        it kept back for the count when this moves (an int: read without the lock)."""

    def fill_seen(self) -> None:
        """An order of the entry filled for the first time: the exchange's count of
        unfilled orders went down by one."""
        with self._lock:
            self.fill_unread = True
            self.last_fill = self._clock()

    def claim(self, now: float) -> CountRead | None:
        """A new read, if a fill is unread and no read went within the interval and none
        is under way. The distances are taken both ways: a wall clock stepped back
        (NTP) does not put the last read in the future and stop reads for that long."""
        if self.current is not None and abs(now - self.current.claimed) >= READ_LOST_S:
            # lost: the fill it was to read was never read, and may be all there is
            self.current, self.fill_unread = None, True
        if self.current is not None or not self.fill_unread \
                or abs(now - self.last_claimed) < READ_INTERVAL_S:
            return None
        self.fill_unread, self.last_claimed = False, now
        self.current = CountRead(now)
        return self.current

    def sent(self, read: CountRead) -> None:
        """The read is about to go out (its worker had its turn)."""
        with self._lock:
            if read is self.current:
                read.started = self._clock()

    def create_answered(self, taken: float) -> None:
        """A create taken at `taken` was answered (one that never will be is the order
        windows' `unsure`, which the read's answer adds anyway)."""
        read = self.current
        if read is not None and read.started is not None:
            read.answered.append(taken)

    def refused(self) -> None:
        """A create was refused for the order count (new orders are held)."""
        read = self.current
        if read is not None and read.started is not None:
            read.refused = True

    def ends_hold(self, read: CountRead, room: bool) -> bool:
        """Whether the answer to `read`, which showed `room` in every window or not, may
        end a hold on new orders. One sent before a refusal for the count may not: its
        counts may be older than the refusal's, and a read sent since may end it, with
        no new fill."""
        if not room:
            self._no_room(read)
        elif read.refused:
            self.fill_unread = True
        else:
            self.rooms_read += 1
        return room and not read.refused

    def _no_room(self, read: CountRead) -> None:
        """The answer to `read` left a window full: if the read went out so soon after
        the last fill that binance may not have taken it off yet, the fill stays unread.
        Both ways: a clock stepped back puts the fill in the future, not just before.
        So does one that crossed the end of a window: the next read tells that one."""
        assert read.started is not None
        if read.crossed or abs(read.started - self.last_fill) < FILL_LAG_S:
            self.fill_unread = True

    def failed(self, read: CountRead, again: bool) -> None:
        """The read got no counts; `again`: for a reason that may pass (not sent for
        want of weight, no answer), so the fill is still unread and the next read may go
        after the interval."""
        with self._lock:
            if read is self.current:
                self.current = None
                self.fill_unread = self.fill_unread or again

    def answered(self, read: CountRead) -> bool:
        """Whether the answer is to the read under way (one taken as lost tells nothing:
        creates answered since were not noted for it)."""
        if read is not self.current or read.started is None:
            return False
        self.current = None
        return True


def read_counts(windows: list[OrderWindow], read: CountRead, rows: Any, now: float,
                unanswered: list[float]) -> bool:
    """Take the exchange's counts (`rows`, its answer to `read`, answered at `now`) into
    the order `windows`; `unanswered`: when the creates unanswered now were taken (they,
    and those answered while the read was out, may be missing from its counts). Whether
    every window with a limit was told its count and has room."""
    assert read.started is not None
    counts = counts_of(rows)
    uncounted = read.answered + unanswered
    room = True
    for window in windows:
        told = window.seconds in counts and window.read(counts[window.seconds],
                                                        read.started, now, uncounted)
        if window.limit is not None:
            room = room and told and window.total() < window.limit
            read.crossed = read.crossed or window.index_at(read.started) < window.index_at(now)
    return room
