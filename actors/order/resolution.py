"""Bookkeeping for orders whose exchange outcome is not known yet.

An order needs resolving when its create may or may not have landed (`unknown`,
or `pending_submit` found at start-up or with a lost request). It is looked up by
client id, repeatedly over a window. Found: the caller adopts the exchange's
state at once. Absent on `absent_needed` lookups spread over at least `window_s` (a
failed lookup is not "absent"), the last of them sent after the create can no
longer land: only then is it safe to send the create again with the same client id.
The spread is there for an exchange whose lookups lag behind its bookings; a lookup
sent `window_s` after the create could last land has given any booking that time
already, so then `absent_needed` lookups are enough (an order left by a run killed
long ago is proven absent in `absent_needed` intervals, not a whole window more).

A signed request stays valid on the exchange until its timestamp plus its
`recvWindow`: a create held in transit may be booked that late. So a create may
land until signed_at + recv window + clock skew + request timeout (`landing_deadline`);
the signing time is recorded with the intent in the ledger, so the deadline holds
across a restart. Pure logic on an injected clock; OrderActor acts on its answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOST_LOOKUP_S = 30.0
"""A lookup unanswered this long is taken as lost and sent again (the resolver waits
ten lookup intervals instead when that is longer)."""


@dataclass(frozen=True)
class ResolveSettings:
    """[resolution] of the configuration."""

    interval_s: float = 1.0
    """Time between lookups of one order."""
    window_s: float = 5.0
    """Lookups must span at least this long before absence is believed."""
    absent_needed: int = 3
    """Lookups that must find nothing before a re-send."""
    alert_after_s: float = 60.0
    """An order still unresolved after this long is logged and alerted."""
    max_lookups_per_tick: int = 100
    """Bound on lookups started per tick, so a big recovery does not flood the exchange."""
    clock_skew_s: float = 1.0
    """How far the exchange's clock may lag ours. binance refuses a request stamped more
    than 1 s ahead of its clock, so with a larger lead nothing would be booked at all."""

    def check(self) -> None:
        if self.interval_s <= 0 or self.window_s < 0 or self.alert_after_s <= 0:
            raise ValueError("interval_s: intervals must be positive")
        if self.absent_needed < 1 or self.max_lookups_per_tick < 1:
            raise ValueError("absent_needed: counts must be at least 1")
        if not 0 <= self.clock_skew_s <= 60:
            raise ValueError("clock_skew_s: must be from 0 to 60")


SEND_MARGIN_S = 0.25
"""A create is sent no later than this before its recvWindow ends, so that it arrives
in time (one that arrives late is refused by the exchange, and sent again)."""


@dataclass(frozen=True)
class SignedWindow:
    """How long after signing an exchange may still act on a request (ccxt drivers)."""

    recv_window_s: float
    """The exchange refuses the request once this long has passed since its timestamp."""
    request_timeout_s: float
    """The client's request timeout: an allowance for a request accepted in time and
    handed on inside the exchange."""

    @property
    def send_within_s(self) -> float:
        """How long after signing the create may still be sent."""
        return max(0.0, self.recv_window_s - SEND_MARGIN_S)


def landing_deadline(signed_at: float | None, window: SignedWindow | None, skew_s: float,
                     now: float) -> float:
    """Wall time after which a create signed at `signed_at` can no longer be booked.
    Without a window (the in-process paper venue books at once or never) that is now; a
    create whose signing time is not recorded (a ledger written before it was) is taken
    as signed now."""
    if window is None:
        return now
    signed = now if signed_at is None else signed_at
    return signed + window.recv_window_s + skew_s + window.request_timeout_s


@dataclass
class Case:
    """One order being resolved."""

    since: float
    next_at: float
    first_absent_at: float | None = None
    absent: int = 0
    in_flight: bool = False
    sent_at: float = 0.0
    alerted: bool = False
    absent_after: float = float("-inf")
    """Only a lookup sent from then on can prove absence: the create may land until then."""


@dataclass
class Resolver:
    """Which orders to look up now, and when absence is proven."""

    settings: ResolveSettings
    cases: dict[str, Case] = field(default_factory=dict)

    def add(self, client_order_id: str, now: float, absent_after: float | None = None) -> None:
        """Resolve the order from now on; `absent_after`: when its create can no longer
        land (default now)."""
        if client_order_id not in self.cases:
            after = now if absent_after is None else absent_after
            self.cases[client_order_id] = Case(since=now, next_at=now, absent_after=after)

    def add_signed(self, client_order_id: str, signed_at: float | None,
                   window: SignedWindow | None, now: float, wall: float) -> None:
        """Resolve an order whose latest create was signed at `signed_at` (wall time,
        `wall` now): absence counts only once that create can no longer land."""
        deadline = landing_deadline(signed_at, window, self.settings.clock_skew_s, wall)
        self.add(client_order_id, now, now + max(0.0, deadline - wall))

    def drop(self, client_order_id: str) -> None:
        self.cases.pop(client_order_id, None)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self.cases

    def due(self, now: float) -> list[str]:
        """Orders to look up now (each marked in flight). A lookup whose answer never
        came (a lost request) is offered again after LOST_LOOKUP_S, or ten intervals if
        that is longer."""
        due: list[str] = []
        lost_after = max(LOST_LOOKUP_S, 10 * self.settings.interval_s)
        for cid, case in self.cases.items():
            if len(due) >= self.settings.max_lookups_per_tick:
                break
            lost = case.in_flight and now - case.sent_at > lost_after
            if (not case.in_flight and case.next_at <= now) or lost:
                case.in_flight, case.sent_at = True, now
                due.append(cid)
        return due

    def looked_up(self, client_order_id: str, *, absent: bool, now: float) -> bool:
        """Record a lookup's answer; True when absence is now proven."""
        case = self.cases.get(client_order_id)
        if case is None:
            return False
        case.in_flight = False
        case.next_at = now + self.settings.interval_s
        if not absent:
            return False  # a failed lookup proves nothing
        if case.first_absent_at is None:
            case.first_absent_at = now
        case.absent += 1
        # "not found" before the create's deadline only says it has not landed yet
        proven = (case.absent >= self.settings.absent_needed
                  and case.sent_at >= case.absent_after
                  and (now - case.first_absent_at >= self.settings.window_s
                       or case.sent_at >= case.absent_after + self.settings.window_s))
        if proven:
            self.drop(client_order_id)
        return proven

    def overdue(self, now: float) -> list[tuple[str, float]]:
        """Orders unresolved past the alert limit, not yet alerted: (id, age)."""
        found = []
        for cid, case in self.cases.items():
            age = now - case.since
            if not case.alerted and age >= self.settings.alert_after_s:
                case.alerted = True
                found.append((cid, age))
        return found

    def oldest_age(self, now: float) -> float:
        return max((now - case.since for case in self.cases.values()), default=0.0)
