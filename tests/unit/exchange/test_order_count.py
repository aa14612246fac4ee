"""binance's unfilled order count through the request budget, on an injected clock:
an order's first fill takes it off the count, so the budget follows the exchange's
count down as well as up, and still never sends a create the exchange would refuse."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.limits import BudgetConfig, Limits
from actors.exchange.windows import CLOCK_AHEAD_S
from tests.venue_support import FakeClock

MINUTE = 1_700_000_040.0
"""The first second of a calendar minute (and of a 10 s window)."""
NEW_ORDER = "POST /api/v3/order"


def budget_of(clock: FakeClock, per_10s: int = 10) -> RequestBudget:
    return RequestBudget("bx", BudgetConfig(), Limits(6000, 60, ((10, per_10s),)), clock)


def create(budget: RequestBudget) -> float:
    return budget.take(1, True, True, NEW_ORDER)


def answer(budget: RequestBudget, taken: float, count: int | None) -> None:
    headers = {} if count is None else {"X-MBX-ORDER-COUNT-10S": str(count)}
    budget.answered(1, taken, True, 200, headers)


def test_a_lower_count_is_followed_creates_sent_after_it_still_count() -> None:
    """Six creates counted; four of them fill (the exchange's count: 2 plus the next
    one). Its answer comes while two more are in flight: 3 + 2, not 9. The budget then
    sends as many as the exchange takes (10 in all), and not one more."""
    clock = FakeClock(MINUTE + CLOCK_AHEAD_S)
    budget = budget_of(clock)
    for count in range(1, 7):
        answer(budget, create(budget), count)
    assert budget.view()["orders_10s"] == 6
    first, *_later = [create(budget) for _ in range(3)]
    answer(budget, first, 3)  # 2 unfilled, and this one: the two after it not yet seen
    assert budget.view()["orders_10s"] == 5
    assert budget.admit_order(queued=2 + 4) is None
    for _ in range(5):
        create(budget)
    with pytest.raises(NotSent) as held:
        create(budget)
    assert held.value.reason == "order_count"


def test_an_older_answer_coming_late_does_not_lower_the_count() -> None:
    """Two creates in flight; the later one's answer (count 4) comes first. The earlier
    one's answer (count 1, before orders filled and the later create was counted) may
    raise the count but not lower it: the later create would be lost."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    earlier, later = create(budget), create(budget)
    clock.advance(0.001)
    answer(budget, later, 4)
    answer(budget, earlier, 1)
    assert budget.view()["orders_10s"] == 4
    answer(budget, create(budget), 1)  # a newer answer: the fills are seen
    assert budget.view()["orders_10s"] == 1


def test_a_create_without_a_count_stays_counted_under_a_lower_count() -> None:
    """A create timed out, another got an answer without the count (a 5xx): the
    exchange may count either whenever it gets it, so both stay on top of its count."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock)
    for count in (1, 2, 3):
        answer(budget, create(budget), count)
    budget.unanswered(1, create(budget), True)
    budget.answered(1, create(budget), True, 503, {})
    answer(budget, create(budget), 1)
    assert budget.view()["orders_10s"] == 1 + 2


def test_early_in_a_window_a_count_may_lower_ours_but_not_raise_it() -> None:
    """Within CLOCK_AHEAD_S of a window's start the count may be the window before's:
    a high one is not kept (it would hold the window to its end), a low one still
    bounds what this window counted."""
    clock = FakeClock(MINUTE + 10.2)
    budget = budget_of(clock)
    answer(budget, create(budget), 10)  # the last window's count, at its limit
    assert budget.view()["orders_10s"] == 1
    for count in (2, 3):
        answer(budget, create(budget), count)
    answer(budget, create(budget), 1)  # the orders before it filled
    assert budget.view()["orders_10s"] == 1
    clock.advance(CLOCK_AHEAD_S)  # surely this window's counts from now on
    answer(budget, create(budget), 9)  # another process placed orders
    assert budget.view()["orders_10s"] == 9


def test_orders_that_fill_at_once_go_on_far_beyond_the_limit() -> None:
    """Market orders at 30 a second, three in flight at a time, each filled by the
    exchange as it is handled: its count never passes 3, and the budget (10 per 10 s)
    never holds one back, where it used to stop at 10 in each window."""
    clock = FakeClock(MINUTE)
    budget = budget_of(clock)
    exchange = {"window": -1, "count": 0}
    in_flight: list[tuple[float, int]] = []
    held = 0
    for step in range(30 * 60):
        clock.now = MINUTE + 0.01 + step / 30
        try:
            taken = create(budget)
        except NotSent:
            held += 1
            continue
        window = int(clock.now // 10)
        if window != exchange["window"]:
            exchange.update(window=window, count=0)
        exchange["count"] += 1
        in_flight.append((taken, exchange["count"]))
        exchange["count"] -= 1  # its fill, after its answer was written
        if len(in_flight) == 3:
            answer(budget, *in_flight.pop(0))
    assert held == 0, f"{held} of 1800 held; the exchange took every one"


@pytest.mark.parametrize(("in_order", "seed", "reads"),
                         [(True, 7, False), (False, 9, False), (True, 6, True),
                          (False, 0, True), (False, 19, True)],
                         ids=["in_order", "overtaking", "in_order_reads", "overtaking_reads",
                              "overtaking_reads_2"])
def test_the_budget_never_sends_what_the_exchange_would_refuse(in_order: bool, seed: int,
                                                               reads: bool) -> None:
    """Creates (most fill at once, the rest rest and fill later), answers in any order
    and timeouts at random: the exchange (which handles creates in the order they are
    sent, or, sent by several workers, in any order) never has to refuse one, and the
    budget's count is never below the exchange's. Once it is at the limit it holds new
    orders: only a create's answer tells it of fills, or with `reads` a read of the
    exchange's counts after a first fill, handled by the exchange at any moment between
    its sending and its answer (some are lost or not sent)."""
    rng = random.Random(seed)
    clock = FakeClock(MINUTE + 1.5)
    limit = 10
    budget = budget_of(clock, limit)
    budget.count_reads = reads
    count = 0  # the exchange's unfilled orders this window
    unfilled = 0  # its resting orders that have not filled yet (of any window)
    sent: list[float] = []  # taken, not handled by the exchange yet
    handled: list[tuple[float, int]] = []  # (taken, its count), not answered yet
    reading: list[Any] = []  # [the read under way, the count it was handled at or None]
    refused = placed = answered_reads = 0
    for _ in range(3000):
        clock.advance(0.002)
        action = rng.random()
        if action < 0.35:
            try:
                sent.append(create(budget))
                placed += 1
            except NotSent:
                refused += 1
        elif action < 0.6 and sent:
            assert count < limit, "the exchange had to refuse a create the budget sent"
            handled.append((sent.pop(0 if in_order else rng.randrange(len(sent))), count + 1))
            if rng.random() < 0.8:  # it fills at once (its answer shows it counted)
                continue
            count, unfilled = count + 1, unfilled + 1
        elif action < 0.8 and handled:
            taken, seen = handled.pop(rng.randrange(len(handled)))
            if rng.random() < 0.05:
                budget.unanswered(1, taken, True)
            else:
                answer(budget, taken, seen)
        elif action < 0.87:
            answered_reads += read_step(budget, reading, count, rng)
        elif unfilled:
            unfilled -= 1
            count = max(0, count - 1)  # a first fill, seen at once
            budget.reads.fill_seen()
        assert budget.view()["orders_10s"] >= count
    assert clock.now < MINUTE + 10, "the run left its window"
    assert refused > 0 and placed > 5 * limit, (refused, placed)  # fills made room
    assert (answered_reads > 0) == reads


def read_step(budget: RequestBudget, reading: list[Any], count: int,
              rng: random.Random) -> int:
    """The next step of a read of the counts: claimed and sent (or not sent), handled by
    the exchange (at its count then), answered (or lost); 1 when one was answered."""
    if not reading:
        claimed = budget.claim_read()
        if claimed is not None and rng.random() < 0.1:
            budget.reads.failed(claimed, again=True)  # no weight for it
        elif claimed is not None:
            budget.reads.sent(claimed)
            reading[:] = [claimed, None]
    elif reading[1] is None:
        reading[1] = count
    elif rng.random() < 0.1:
        budget.reads.failed(reading[0], again=False)  # no answer
        reading.clear()
    else:
        budget.counts_read(reading[0], [{"rateLimitType": "ORDERS", "interval": "SECOND",
                                         "intervalNum": 10, "limit": 10,
                                         "count": reading[1]}])
        reading.clear()
        return 1
    return 0


def test_a_wall_clock_stepped_back_across_a_window_start_keeps_the_count() -> None:
    """The count is full at 2 s into a window; the wall clock is stepped back 3 s (NTP),
    into the window before, and forward again. binance's clock did not move: the window
    is still full there, so no create goes out until it ends."""
    clock = FakeClock(MINUTE + 2)
    budget = budget_of(clock, per_10s=3)
    for count in (1, 2, 3):
        answer(budget, create(budget), count)
    for now in (MINUTE - 1, MINUTE + 2.5):
        clock.now = now
        with pytest.raises(NotSent) as held:
            create(budget)
        assert held.value.reason == "order_count"
    assert budget.view()["orders_10s"] == 3
    clock.now = MINUTE + 10
    answer(budget, create(budget), 1)
