"""The request budget of one exchange entry, shared by all its workers.

binance counts request weight per client address in calendar minutes and new
orders per account in 10-second windows and UTC days; over a limit it answers
429 with Retry-After, and a client that sends again before that time is up is
banned (418). Over an order count it refuses only new orders (-1015): cancels
and lookups still go. The budget spends weight as the exchange counts it:

- before a request goes out its weight is taken (`take`); lookups may use the
  weight below `1 - reserve - headroom` of the limit, creates and cancels the
  weight below `1 - headroom`, so an order never waits behind a lookup;
- after each answer the used weight becomes the exchange's own figure
  (`X-MBX-USED-WEIGHT-1M`, which counts every process on the address) plus what
  is still in flight, and the order counts follow `X-MBX-ORDER-COUNT-*`, down too
  (binance's count is of unfilled orders: a first fill takes one off) with the creates
  sent after that one still counted: each figure only in the window the request was
  surely counted in (see `Window.settle`, `OrderWindow.counted`);
- a 429 pauses every request for Retry-After, a 418 stops them until the ban ends;
  a 429 for the order count holds only new orders, until Retry-After or the end of
  the order window that is full;
- while new orders are refused for the order count and a first fill was seen, the
  exchange's counts are read (see count_reads) and taken as a create's headers are,
  which may end a hold without Retry-After before the window does.

Windows are fixed (calendar) ones on the injected wall clock, as binance's are; a
clock stepped back does not go back a window.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ccxt.base.errors import RateLimitExceeded

from actors.exchange.count_reads import CountRead, ReadPlan, read_counts
from actors.exchange.limits import NO_LIMITS, BudgetConfig, Limits, number, span
from actors.exchange.windows import Answered, Creates, OrderWindow, Window
from actors.orders import rfc3339

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-"
ORDER_HEADER = "X-MBX-ORDER-COUNT-"
FIRST_BAN_S = 120.0
"""How long a 418 without Retry-After stops requests (binance's shortest ban)."""
TOO_MANY_ORDERS = -1015
"""binance's error code for a new order over an order count (errors.md)."""
KEY_REFUSED = -2015
"""binance's "Invalid API-key, IP, or permissions for action" (HTTP 401). Once the key
has worked, binance also answers it while the key is disabled for a ban (ccxt raises
DDoSProtection for it then): it pauses as a ban does. A key revoked for good is then
tried once a pause, and the ban's alert says so meanwhile."""
WAIT_REASONS = ("lookup_weight", "order_weight", "order_count", "paused")
"""Why a request was held back or not sent (the budget-waits metric's label)."""
MAX_PACE = 20.0
"""The most tracking is slowed down (a factor on its intervals)."""
EARLY_SHARE = 0.25
"""The share of the lookups' weight that may go in the first quarter of a window
before tracking slows down: start-up and a burst of new orders need some at once."""


class NotSent(RateLimitExceeded):  # type: ignore[misc]
    """A request the budget kept from going out; nothing reached the exchange."""

    def __init__(self, message: str, retry_after_s: float, reason: str) -> None:
        super().__init__(message)
        self.retry_after_s = max(0.001, retry_after_s)
        self.reason = reason
        """One of WAIT_REASONS."""


@dataclass
class Counts:
    """What the budget saw, for metrics (read at scrape)."""

    requests: dict[str, int] = field(default_factory=dict)
    """Requests sent, by endpoint (`GET /api/v3/order`)."""
    waits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WAIT_REASONS, 0))
    weight_spent: float = 0
    """Weight of the requests this process sent."""
    http_429: int = 0
    http_418: int = 0


class RequestBudget:
    """The weight and order counts of one exchange entry. Thread-safe."""

    def __init__(self, exchange: str, config: BudgetConfig | None = None,
                 limits: Limits = NO_LIMITS, clock: Callable[[], float] = time.time) -> None:
        self.exchange = exchange
        self.config = config or BudgetConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self.counts = Counts()
        self._creates = Creates()
        """New orders sent and not yet answered (also queued for OrderActor's backlog)."""
        self.paused_until = 0.0
        """Wall time before which no request goes out (a 429's or 418's Retry-After)."""
        self.orders_held_until = 0.0
        """Wall time before which no new order goes out (a 429 for the order count)."""
        self._orders_told_until = 0.0
        """The part of that hold the exchange set with Retry-After: a read leaves it."""
        self.count_reads = False
        """Whether the driver can read the exchange's order counts (its workers say)."""
        self.reads = ReadPlan(self._lock, clock)
        """When the counts are read: told of fills, and of a read's way (count_reads)."""
        self.banned = False
        """Whether the pause is a ban (418)."""
        self.on_ban: Callable[[float], None] | None = None
        """Told the ban's length in seconds when the exchange bans the address."""
        self.set_limits(limits)

    def set_limits(self, limits: Limits) -> None:
        """The exchange's limits (capped by the config); counts in windows that stay."""
        limits = limits.capped(self.config)
        weight = Window(limits.weight_window_s, limits.weight,
                        WEIGHT_HEADER + span(limits.weight_window_s))
        orders = [OrderWindow(s, n, ORDER_HEADER + span(s)) for s, n in limits.orders]
        with self._lock:
            old = [getattr(self, "_weight", None), *getattr(self, "_orders", ())]
            kept = {w.seconds: w for w in old if w is not None}
            for window in (weight, *orders):
                before = kept.get(window.seconds)
                if before is not None and type(before) is type(window):
                    window.carry(before)
            self.limits = limits
            self._weight, self._orders = weight, orders
            share = 1 - self.config.headroom
            self._order_cap = _share(limits.weight, share)
            self._lookup_cap = _share(limits.weight, share - self.config.reserve)

    # --- a request's way: take, then answered (or unanswered) ---------------------------

    def take(self, weight: float, for_orders: bool, new_order: bool, endpoint: str) -> float:
        """Take `weight` for a request about to go out (and a new order's place in the
        order windows when `new_order`); the time it was taken, which says the windows it
        counts in, to hand back with the answer (a create's is its own, see `Creates`).
        NotSent says how long until it could go."""
        now = self._clock()
        if now < self.paused_until:
            raise NotSent(f"{self.exchange}: not sent, the exchange asked us to wait "
                          f"({'banned' if self.banned else '429'})",
                          self.paused_until - now, "paused")
        with self._lock:
            window = self._weight
            window.roll(now)
            cap = self._order_cap if for_orders else self._lookup_cap
            if cap is not None and window.total() + weight > cap and window.total() > 0:
                kind = "order" if for_orders else "lookup"
                raise NotSent(f"{self.exchange}: not sent, the {kind} share of the request "
                              f"weight ({cap:g} of {self.limits.weight} per "
                              f"{span(self.limits.weight_window_s)}) is spent",
                              window.ends_in(now), f"{kind}_weight")
            taken = now
            if new_order:
                self._place(now)
                taken = self._creates.add(now)
            window.in_flight += weight
            requests = self.counts.requests
            requests[endpoint] = requests.get(endpoint, 0) + 1
            self.counts.weight_spent += weight
            return taken

    def _place(self, now: float) -> None:
        """Count a new order in every order window, or NotSent if one is full."""
        held = self._orders_held(now)
        if held is not None:
            raise held
        for window in self._orders:
            window.roll(now)
            if window.limit is not None and window.total() >= window.limit:
                raise NotSent(f"{self.exchange}: not sent, {window.limit} new orders per "
                              f"{span(window.seconds)} reached", window.ends_in(now),
                              "order_count")
        for window in self._orders:
            window.used += 1

    def answered(self, weight: float, taken: float, new_order: bool, status: int,
                 headers: Mapping[str, str], code: int | None = None) -> None:
        """The answer to a request taken at `taken` (what `take` returned), with the error
        `code` of its body if it has one: the exchange's counts replace ours, a 429 pauses
        every request (a new order's for the order count only new orders), a 418 stops
        them for the ban."""
        now = self._clock()
        with self._lock:
            self._weight.settle(taken, now, weight,
                                number(headers.get(self._weight.header)) if headers else None)
            counts = [number(headers.get(w.header)) if headers else None for w in self._orders]
            create = self._creates.answered(taken) if new_order else Answered()
            if new_order and any(c is not None for c in counts):  # else `unsure` in all
                self.reads.create_answered(taken)
            for window, count in zip(self._orders, counts, strict=True):
                if new_order:
                    window.counted(create, taken, now, count, self._creates)
                else:  # not a create of ours: its count may only raise ours
                    window.settle(taken, now, 0, count)
            banned = status == 418 or (status == 401 and code == KEY_REFUSED)
            if status == 429 and new_order and self._over_order_count(code, headers):
                self._hold_orders(headers, now)
            elif status == 429 or banned:
                self._refused(status, banned, headers, now)
        if banned and self.on_ban is not None:
            self.on_ban(self.paused_until - now)

    def unanswered(self, weight: float, taken: float, new_order: bool) -> None:
        """No answer came (a timeout, a dropped connection): the exchange may have counted
        the request, so it stays spent (a create in `unsure`, which a read of the counts
        adds: not again as answered while the read was out, as one told no count)."""
        with self._lock:
            now = self._clock()
            self._weight.settle(taken, now, weight, None)
            if new_order:
                self._creates.answered(taken)
                for window in self._orders:
                    window.lost(taken, now)

    def _refused(self, status: int, banned: bool, headers: Mapping[str, str],
                 now: float) -> None:
        wait = number(headers.get("Retry-After"))
        if wait is None:
            wait = FIRST_BAN_S if banned else self._weight.ends_in(now)
        if banned:
            self.counts.http_418 += status == 418
            self.banned = True
        else:
            self.counts.http_429 += 1
            self.banned = self.banned and now < self.paused_until
        self.paused_until = max(self.paused_until, now + wait)

    def _over_order_count(self, code: int | None, headers: Mapping[str, str]) -> bool:
        """Whether a new order's 429 is for the order count: its error code says so, or
        without one, an order count header at its limit while the weight's is not."""
        if code is not None:
            return code == TOO_MANY_ORDERS
        full = [w for w in (self._weight, *self._orders)
                if w.limit is not None and (number(headers.get(w.header)) or 0) >= w.limit]
        return bool(full) and self._weight not in full

    def _hold_orders(self, headers: Mapping[str, str], now: float) -> None:
        """Hold new orders only (binance's order count is of new orders; a cancel or a
        lookup sent meanwhile is not refused), for Retry-After if the answer has one,
        else until the order windows that are full end (the shortest window if none
        looks full: the exchange counted orders we did not see)."""
        self.counts.http_429 += 1
        self.reads.refused()
        wait = number(headers.get("Retry-After"))
        if wait is None:
            full = [w.ends_in(now) for w in self._orders
                    if w.limit is not None and w.total() >= w.limit]
            first = self._orders[0] if self._orders else self._weight
            wait = max(full) if full else first.ends_in(now)
        else:
            self._orders_told_until = max(self._orders_told_until, now + wait)
        self.orders_held_until = max(self.orders_held_until, now + wait)

    def _orders_held(self, now: float) -> NotSent | None:
        if now >= self.orders_held_until:
            return None
        return NotSent(f"{self.exchange} refused a new order over its order count; new "
                       "orders wait for the window to end", self.orders_held_until - now,
                       "order_count")

    # --- reading the exchange's order counts (see count_reads) --------------------------

    def claim_read(self) -> CountRead | None:
        """A read of the order counts to send now, if one is due (see count_reads)."""
        if not self.count_reads:  # no lock taken on the order path of other drivers
            return None
        now = self._clock()
        with self._lock:
            return self.reads.claim(now) if self._refused_for_count(now) else None

    def _refused_for_count(self, now: float) -> bool:
        """Whether new orders are refused for the order count in a way a read may end:
        a hold until the window's end, or a full window (not a hold binance timed)."""
        if now < self._orders_told_until:
            return False
        for window in self._orders:
            window.roll(now)
        return now < self.orders_held_until or any(
            w.limit is not None and w.total() >= w.limit for w in self._orders)

    def counts_read(self, read: CountRead, rows: Any) -> None:
        """The exchange's answer to `read` (see `read_counts`); a hold without
        Retry-After ends once every order window has room."""
        now = self._clock()
        with self._lock:
            if not self.reads.answered(read):
                return
            room = read_counts(self._orders, read, rows, now, self._creates.moments())
            if self.reads.ends_hold(read, room) and now >= self._orders_told_until:
                self.orders_held_until = min(self.orders_held_until, now)

    # --- what the order path and the operator ask ---------------------------------------

    def paused_for(self, new_orders: bool = False) -> float | None:
        """Seconds until requests may go out again (with `new_orders`: new orders, which
        an order count's 429 also holds), None when they may now."""
        until = self.paused_until
        if new_orders:
            until = max(until, self.orders_held_until)
        left = until - self._clock()
        return left if left > 0 else None

    def waited(self, reason: str) -> None:
        """A request was held back or not sent for `reason` (counted once per request)."""
        with self._lock:
            self.counts.waits[reason] = self.counts.waits.get(reason, 0) + 1

    def admit_order(self, queued: int) -> NotSent | None:
        """Whether a new order may be accepted now, with `queued` creates on their way
        (not yet answered): None, or why not and for how long (the order is then not
        recorded). Those already sent are in the order counts: not counted twice."""
        now = self._clock()
        if now < self.paused_until:
            return NotSent(f"{self.exchange} asked us to wait "
                           f"({'banned' if self.banned else '429'}); submit again later",
                           self.paused_until - now, "paused")
        held = self._orders_held(now)
        if held is not None:
            return held
        with self._lock:
            window = self._weight
            window.roll(now)
            if self._order_cap is not None and window.total() + 1 > self._order_cap:
                return NotSent(f"the request weight of {self.exchange} for this minute is "
                               "spent; submit again later", window.ends_in(now), "order_weight")
            waiting = max(0, queued - len(self._creates))
            for orders in self._orders:
                orders.roll(now)
                if orders.limit is not None and orders.total() + waiting >= orders.limit:
                    return NotSent(f"{orders.limit} new orders per {span(orders.seconds)} "
                                   f"on {self.exchange} reached; submit again later",
                                   orders.ends_in(now), "order_count")
        return None

    def pace(self) -> float:
        """A factor on tracking's intervals: 1 while lookups spend their share no faster
        than the window passes, else as much more as they are ahead of it (at most
        MAX_PACE), so that the share lasts the window and tracking never stops."""
        cap = self._lookup_cap
        if not cap:
            return 1.0
        now = self._clock()
        with self._lock:
            window = self._weight
            window.roll(now)
            spent = window.total() / cap
            passed = max(EARLY_SHARE, 1 - window.ends_in(now) / window.seconds)
        return min(MAX_PACE, max(1.0, spent / passed))

    def view(self) -> dict[str, Any]:
        """The budget as `health` shows it."""
        now = self._clock()
        with self._lock:
            window = self._weight
            window.roll(now)
            view: dict[str, Any] = {
                "weight_used": _plain(window.total()), "weight_limit": window.limit,
                "lookup_limit": (None if self._lookup_cap is None
                                 else math.floor(self._lookup_cap)),
                "paused_until": (rfc3339(self.paused_until) if self.paused_until > now
                                 else None),
                "paused_for_s": _plain(max(0.0, self.paused_until - now)),
                "orders_held_for_s": _plain(max(0.0, self.orders_held_until - now)),
                "banned": self.banned and now < self.paused_until,
                "http_429": self.counts.http_429, "http_418": self.counts.http_418,
            }
            for orders in self._orders:
                orders.roll(now)
                name = span(orders.seconds).lower()
                view[f"orders_{name}"] = int(orders.total())
                view[f"orders_{name}_limit"] = orders.limit
        return view

    def gauges(self) -> tuple[float, float | None, list[tuple[str, float, int | None]]]:
        """(weight used, weight limit, [(window, orders used, limit)]) for metrics."""
        now = self._clock()
        with self._lock:
            self._weight.roll(now)
            orders = []
            for window in self._orders:
                window.roll(now)
                orders.append((span(window.seconds).lower(), window.total(), window.limit))
            return self._weight.total(), self._weight.limit, orders


def _plain(value: float) -> float | int:
    """A figure as people read it: 412, not 412.0; 2.5 to the millisecond."""
    value = round(float(value), 3)
    return int(value) if value.is_integer() else value


def _share(limit: int | None, share: float) -> float | None:
    """`share` of `limit`, without float noise (1200 x 0.65 is 780, not 779.99...)."""
    return None if limit is None else round(limit * share, 6)

