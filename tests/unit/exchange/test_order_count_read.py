"""Reading binance's unfilled order counts (`GET /api/v3/rateLimit/order`) when the
budget holds new orders for the order count and an order's first fill was seen: the
exchange's own figures then lower the count before the window ends, with the same
care as a create's headers. On an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.count_reads import READ_INTERVAL_S, READ_LOST_S, CountRead
from actors.exchange.limits import BudgetConfig, Limits
from actors.exchange.windows import CLOCK_AHEAD_S
from tests.venue_support import FakeClock

MINUTE = 1_700_000_040.0
"""The first second of a calendar minute (and of a 10 s window)."""
NEW_ORDER = "POST /api/v3/order"
READ = "GET /api/v3/rateLimit/order"


def budget_of(clock: FakeClock, per_10s: int = 10, per_day: int | None = None,
              readable: bool = True) -> RequestBudget:
    orders = ((10, per_10s),) if per_day is None else ((10, per_10s), (86400, per_day))
    budget = RequestBudget("bx", BudgetConfig(), Limits(6000, 60, orders), clock)
    budget.count_reads = readable
    return budget


def create(budget: RequestBudget) -> float:
    return budget.take(1, True, True, NEW_ORDER)


def answer(budget: RequestBudget, taken: float, count: int | None,
           day: int | None = None) -> None:
    headers = {} if count is None else {"X-MBX-ORDER-COUNT-10S": str(count)}
    if day is not None:
        headers["X-MBX-ORDER-COUNT-1D"] = str(day)
    budget.answered(1, taken, True, 200, headers)


def fill(budget: RequestBudget, per_10s: int, day: int | None = None) -> None:
    """Creates up to the 10 s limit, each answered with its count (and the day's after
    `day`, with a day window)."""
    for count in range(1, per_10s + 1):
        answer(budget, create(budget), count, None if day is None else day + count)


def rows(per_10s: int | None, per_day: int | None = None,
         limits: tuple[int, int] = (10, 200_000)) -> list[dict[str, Any]]:
    """binance's answer to the read: a row per order window, its count."""
    found = []
    if per_10s is not None:
        found.append({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                      "limit": limits[0], "count": per_10s})
    if per_day is not None:
        found.append({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                      "limit": limits[1], "count": per_day})
    return found


def read(budget: RequestBudget, answered: list[dict[str, Any]]) -> CountRead:
    """A read claimed, sent (through the budget, as a lookup of weight 40) and answered."""
    claimed = budget.claim_read()
    assert claimed is not None, "no read was due"
    budget.reads.sent(claimed)
    taken = budget.take(40, False, False, READ)
    budget.answered(40, taken, False, 200, {"X-MBX-USED-WEIGHT-1M": "50"})
    budget.counts_read(claimed, answered)
    return claimed


def test_a_first_fill_seen_while_the_count_is_full_reads_it_and_a_create_goes() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    fill(budget, 10)
    assert budget.admit_order(0) is not None
    budget.reads.fill_seen()
    read(budget, rows(9))
    assert budget.view()["orders_10s"] == 9
    assert budget.admit_order(0) is None
    create(budget)
    with pytest.raises(NotSent) as held:
        create(budget)  # the exchange's count is full again
    assert held.value.reason == "order_count"
    assert budget.counts.requests[READ] == 1


def test_no_read_without_a_fill_with_room_or_without_the_route() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    fill(budget, 10)
    assert budget.claim_read() is None  # full, but nothing filled: the count is right
    room = budget_of(clock)
    fill(room, 5)
    room.reads.fill_seen()
    assert room.claim_read() is None  # a fill, but no order is refused
    paper = budget_of(clock, readable=False)
    fill(paper, 10)
    paper.reads.fill_seen()
    assert paper.claim_read() is None  # the driver has no such route


def test_one_read_at_a_time_and_at_most_one_a_second() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    fill(budget, 10)
    budget.reads.fill_seen()
    first = budget.claim_read()
    assert first is not None
    budget.reads.fill_seen()
    assert budget.claim_read() is None  # one is in flight
    budget.reads.sent(first)
    budget.counts_read(first, rows(10))  # the fill was not counted off yet
    assert budget.claim_read() is None  # the fill seen meanwhile: but within a second
    clock.advance(READ_INTERVAL_S)
    assert budget.claim_read() is not None
    assert budget.claim_read() is None  # that fill is being read


def test_a_read_not_sent_is_tried_again_a_second_later() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    fill(budget, 10)
    budget.reads.fill_seen()
    failed = budget.claim_read()
    assert failed is not None
    budget.reads.failed(failed, again=True)  # no weight for it: the fill is still unread
    clock.advance(READ_INTERVAL_S)
    read(budget, rows(8))
    assert budget.view()["orders_10s"] == 8


def test_creates_the_exchange_may_not_have_counted_when_it_answered_stay_counted() -> None:
    """8 creates answered; two more in flight fill the count. Meanwhile one order fills
    and the read goes: the first in-flight create is answered while the read is out
    (the exchange may have taken it after the read), the second is unanswered, one
    earlier create got no answer. The exchange's 6 (7 less the fill) plus those three."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    for count in range(1, 8):
        answer(budget, create(budget), count)
    lost = create(budget)
    budget.unanswered(1, lost, True)
    first, _second = create(budget), create(budget)
    assert budget.admit_order(0) is not None
    budget.reads.fill_seen()
    claimed = budget.claim_read()
    assert claimed is not None
    budget.reads.sent(claimed)
    answer(budget, first, 9)
    budget.counts_read(claimed, rows(6))
    assert budget.view()["orders_10s"] == 6 + 1 + 1 + 1


@pytest.mark.parametrize("answered", [False, True])
def test_a_create_that_told_no_count_while_the_read_is_out_is_counted_once(
        answered: bool) -> None:
    """9 creates answered, a tenth fills the count. One order fills and the read goes;
    the tenth then gets no answer (a timeout), or one without the count (a 503): it may
    land after the read, so it is added to the exchange's 8 once, and the one order
    binance would take gets in."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    fill(budget, 9)
    tenth = create(budget)
    assert budget.admit_order(0) is not None
    budget.reads.fill_seen()
    claimed = budget.claim_read()
    assert claimed is not None
    budget.reads.sent(claimed)
    if answered:
        budget.answered(1, tenth, True, 503, {})
    else:
        budget.unanswered(1, tenth, True)
    budget.counts_read(claimed, rows(8))
    assert budget.view()["orders_10s"] == 8 + 1
    assert budget.admit_order(0) is None


def test_a_read_counts_only_in_the_window_it_was_surely_counted_in() -> None:
    """Sent in the window before, it tells nothing of this one; sent in the first second
    of one (our clock may run ahead of the exchange's), it may lower the count but not
    raise it; a count of the exchange's above ours raises it (other programs' orders)."""
    clock = FakeClock(MINUTE + 9.5)
    budget = budget_of(clock, per_day=100)
    fill(budget, 10, day=0)
    budget.reads.fill_seen()
    claimed = budget.claim_read()
    assert claimed is not None
    budget.reads.sent(claimed)
    clock.now = MINUTE + 10 + CLOCK_AHEAD_S + 0.5  # answered in the next 10 s window
    budget.counts_read(claimed, rows(9, 2))
    assert (budget.view()["orders_10s"], budget.view()["orders_1d"]) == (0, 2)

    clock.now = MINUTE + 20.2
    fill(budget, 10, day=2)
    budget.reads.fill_seen()
    read(budget, rows(12, 30))  # maybe the last 10 s window's count
    assert (budget.view()["orders_10s"], budget.view()["orders_1d"]) == (10, 30)
    clock.advance(READ_INTERVAL_S)
    budget.reads.fill_seen()
    read(budget, rows(4, 30))
    assert budget.view()["orders_10s"] == 4


def test_a_wall_clock_stepped_back_neither_stops_reads_nor_undoes_the_window() -> None:
    """Stepped back (NTP) into the window before, the clock cannot tell which window a
    read was counted in: it is sent (the last read is not in the future) but changes
    nothing; the window is still the exchange's, full."""
    clock = FakeClock(MINUTE + 5)
    budget = budget_of(clock)
    fill(budget, 10)
    budget.reads.fill_seen()
    read(budget, rows(10))
    clock.now = MINUTE - 30
    budget.reads.fill_seen()
    read(budget, rows(9))
    assert budget.view()["orders_10s"] == 10
    clock.now = MINUTE + 7
    budget.reads.fill_seen()
    read(budget, rows(9))
    assert budget.view()["orders_10s"] == 9


def test_a_hold_without_retry_after_ends_when_a_read_shows_room() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock, per_day=100)
    answer(budget, create(budget), 1)
    taken = create(budget)  # another program filled the account's count: a 429
    budget.answered(1, taken, True, 429, {"X-MBX-ORDER-COUNT-10S": "10"}, code=-1015)
    assert budget.view()["orders_held_for_s"] == 8
    budget.reads.fill_seen()
    read(budget, rows(10, 11))
    assert budget.admit_order(0) is not None  # still full
    clock.advance(READ_INTERVAL_S)
    budget.reads.fill_seen()
    read(budget, rows(9, 11))
    assert budget.view()["orders_held_for_s"] == 0
    assert budget.admit_order(0) is None


def test_a_hold_with_retry_after_stays_until_then() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    taken = create(budget)
    budget.answered(1, taken, True, 429, {"Retry-After": "5"}, code=-1015)
    budget.reads.fill_seen()
    assert budget.claim_read() is None  # binance said when: a read cannot shorten it
    clock.advance(4.9)
    held = budget.admit_order(0)
    assert held is not None and held.reason == "order_count"
    clock.advance(0.1)
    assert budget.admit_order(0) is None


def test_a_hold_is_not_ended_by_a_read_without_every_window() -> None:
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock, per_day=100)
    budget.answered(1, create(budget), True, 429, {}, code=-1015)
    budget.reads.fill_seen()
    read(budget, rows(3))  # no day row: that window's count is not known
    assert budget.admit_order(0) is not None


def test_a_read_too_soon_after_a_fill_is_made_once_more() -> None:
    """binance lowers its count "a short delay" after a fill: a read sent right after
    the fill may still count the order. One more read may go a second later, with no
    new fill; a read long after the last fill that shows no room is not repeated."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    fill(budget, 10)
    assert budget.admit_order(0) is not None
    budget.reads.fill_seen()
    clock.advance(0.05)
    read(budget, rows(10))  # too soon: binance has not taken the fill off yet
    assert budget.admit_order(0) is not None
    clock.advance(READ_INTERVAL_S)
    read(budget, rows(9))  # the same fill, now counted down
    assert budget.admit_order(0) is None
    create(budget)
    assert budget.admit_order(0) is not None
    clock.advance(READ_INTERVAL_S)
    assert budget.claim_read() is None  # no fill since, and the last read was not soon


@pytest.mark.parametrize("went_out", [False, True], ids=["before_sending", "while_out"])
def test_a_read_lost_with_its_worker_is_made_again_without_a_new_fill(went_out: bool) -> None:
    """A read claimed and never answered (its worker restarted before it went out, or
    while it was out) is taken as lost after READ_LOST_S: the fill it was to read was
    never read, so another read goes; the day's count would else hold new orders until
    the day ends, or the next fill."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock, per_10s=100, per_day=10)
    for count in range(1, 11):
        answer(budget, create(budget), count, day=count)
    assert budget.admit_order(0) is not None
    budget.reads.fill_seen()
    lost = budget.claim_read()
    assert lost is not None
    if went_out:
        budget.reads.sent(lost)
    clock.advance(READ_LOST_S - 1)
    assert budget.claim_read() is None  # maybe still on its way
    clock.advance(1)
    read(budget, rows(0, 9, limits=(100, 10)))
    assert budget.admit_order(0) is None


def test_a_read_sent_before_a_refusal_for_the_count_does_not_end_its_hold() -> None:
    """The read goes out; then a create is refused -1015 without Retry-After (another
    program's orders filled the account's count). binance may have answered the read
    before those orders came: its count cannot end the hold, but a read sent after the
    refusal can, a second later, with no new fill."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    for count in range(1, 10):
        answer(budget, create(budget), count)
    last = create(budget)  # the tenth: full by our count
    budget.reads.fill_seen()
    claimed = budget.claim_read()
    assert claimed is not None
    budget.reads.sent(claimed)
    budget.answered(1, last, True, 429, {"X-MBX-ORDER-COUNT-10S": "10"}, code=-1015)
    budget.counts_read(claimed, rows(8))  # maybe handled before the other's orders
    assert budget.admit_order(0) is not None
    clock.advance(READ_INTERVAL_S)
    read(budget, rows(8))  # sent after the refusal: binance's count since
    assert budget.admit_order(0) is None


def test_a_wall_clock_stepped_back_after_a_fill_does_not_read_every_second() -> None:
    """A read that shows no room is made once more only if it went out within a second
    of the last fill seen; a clock stepped back (NTP) puts that fill in the future, which
    is not "soon after" it: else a read of weight 40 went every second, each telling
    nothing, until the clock caught up with the fill."""
    clock = FakeClock(MINUTE + 5)
    budget = budget_of(clock)
    fill(budget, 10)
    budget.reads.fill_seen()
    clock.advance(READ_INTERVAL_S + 0.5)
    clock.now -= 30  # stepped back
    read(budget, rows(10))
    for _ in range(5):
        clock.advance(READ_INTERVAL_S)
        assert budget.claim_read() is None  # no fill since


def test_a_read_that_came_back_in_the_next_window_is_made_again_for_a_hold() -> None:
    """A -1015 without Retry-After holds new orders until the full window ends, here the
    day's (another program filled it). The read that could end it went out at the end
    of a 10 s window and came back in the next: it told nothing of the 10 s window, so
    it cannot end the hold; but a read sent now would tell, so one goes a second later,
    with no new fill, and ends it (else orders waited for the day's end)."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock, per_day=100)
    answer(budget, create(budget), 1, day=1)
    budget.answered(1, create(budget), True, 429, {"X-MBX-ORDER-COUNT-1D": "100"},
                    code=-1015)
    assert budget.view()["orders_held_for_s"] > 3600
    budget.reads.fill_seen()
    clock.now = MINUTE + 9.5
    claimed = budget.claim_read()
    assert claimed is not None
    budget.reads.sent(claimed)
    clock.now = MINUTE + 10.3
    budget.counts_read(claimed, rows(0, 50))
    assert budget.admit_order(0) is not None  # the 10 s count is not known
    clock.advance(READ_INTERVAL_S)
    read(budget, rows(0, 50))
    assert budget.admit_order(0) is None


def test_only_a_read_that_may_end_a_hold_moves_the_count_of_reads_with_room() -> None:
    """OrderActor sends the creates kept back for the count when `rooms_read` moves: not
    for a read that showed no room, nor for one sent before a refusal for the count."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    for count in range(1, 10):
        answer(budget, create(budget), count)
    last = create(budget)
    budget.reads.fill_seen()
    read(budget, rows(10))  # too soon after the fill: no room yet
    assert budget.reads.rooms_read == 0
    clock.advance(READ_INTERVAL_S)
    claimed = budget.claim_read()
    assert claimed is not None
    budget.reads.sent(claimed)
    budget.answered(1, last, True, 429, {"X-MBX-ORDER-COUNT-10S": "10"}, code=-1015)
    budget.counts_read(claimed, rows(8))  # maybe handled before the other's orders
    assert budget.reads.rooms_read == 0
    clock.advance(READ_INTERVAL_S)
    read(budget, rows(8))
    assert budget.reads.rooms_read == 1
    assert budget.admit_order(0) is None
